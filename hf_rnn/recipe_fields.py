"""Checking the keys and values of a recipe section against typed fields: unknown keys with did-you-mean and
Keras aliases, types with YAML 1.1 leniency, choices; every error names its `file:line` or `--set KEY`.
"""

import difflib
import re
import types
import typing
from typing import Any, Literal

from transformers import PreTrainedConfig

from .recipe_yaml import (
    _YAML11_BOOLEANS,
    RecipeError,
    _Where,
)

_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def strict_error_message(error: Exception) -> str:
    """The cause of a config validation error in one line (strict errors span lines: "...:\n    ValueError: ...")."""
    return re.sub(r"^\w+Error: ", "", str(error).strip().splitlines()[-1].strip())


# --- validation -----------------------------------------------------------------------------------------------


# names Keras users reach for first, and the recipe key that means the same
_ALIASES = {
    "epochs": "num_train_epochs",
    "batch_size": "per_device_train_batch_size",
    "lr": "learning_rate",
    "clipnorm": "max_grad_norm",
    "patience": "early_stopping_patience",
    "units": "hidden_size",
    "output_dim": "embedding_dim",
    "output_sequence_length": "max_length",
}


def _unknown_key(key: str, allowed: set[str], place: str, section: str, listing: str | None = None) -> RecipeError:
    close = [_ALIASES[key]] if _ALIASES.get(key) in allowed else difflib.get_close_matches(key, sorted(allowed), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return RecipeError(
        f"{place}: unknown key {key!r} in {section}.{hint} Allowed: {listing or ', '.join(sorted(allowed))}."
    )


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return f"a list of {_type_name(typing.get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint)).replace("NoneType", "null")


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    """Checks a YAML value against a type hint; ints are accepted (and converted) where floats are expected."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True, value
    if origin is Literal:
        return value in typing.get_args(hint), value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            ok, converted = _coerce(value, option)
            if ok:
                return True, converted
        return False, value
    if origin is list:
        if not isinstance(value, list):
            return False, value
        items = [_coerce(item, typing.get_args(hint)[0]) for item in value]
        return all(ok for ok, _ in items), [converted for _, converted in items]
    if origin is dict or hint is dict:
        return isinstance(value, dict), value
    if hint is type(None):
        return value is None, value
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        # YAML 1.1 reads `3e-4` (no dot) as a string; accept what Python reads as a number
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            return True, float(value)
        return False, value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is bool:
        if isinstance(value, str) and value.lower() in _YAML11_BOOLEANS:
            return True, _YAML11_BOOLEANS[value.lower()]
        return isinstance(value, bool), value
    if hint is str:
        return isinstance(value, str), value
    if isinstance(hint, type) and issubclass(hint, PreTrainedConfig):
        return isinstance(value, dict), value
    return isinstance(value, hint), value


def _check_fields(values: dict, hints: dict[str, Any], section: str, where: _Where) -> dict:
    """Rejects unknown keys and values of the wrong type, naming the key's place in the file."""
    if not isinstance(values, dict):
        raise RecipeError(f"{where.of((section,))}: {section} must be a mapping of keys, got {values!r}.")
    checked = {}
    for key, value in values.items():
        key = str(key)
        place = where.of((*section.split("."), key))
        if key not in hints:
            raise _unknown_key(key, set(hints), place, section)
        ok, converted = _coerce(value, hints[key])
        if not ok:
            close = difflib.get_close_matches(value, _choices(hints[key]), n=1) if isinstance(value, str) else []
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RecipeError(f"{place}: {section}.{key} must be {_type_name(hints[key])}, got {value!r}.{hint}")
        checked[key] = converted
    return checked


def _choices(hint: Any) -> list[str]:
    """The string values a hint allows by name (its `Literal`s, also inside unions and lists)."""
    if typing.get_origin(hint) is Literal:
        return [a for a in typing.get_args(hint) if isinstance(a, str)]
    return [choice for arg in typing.get_args(hint) for choice in _choices(arg)]
