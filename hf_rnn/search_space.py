"""The `search:` section of a recipe: the hyperparameter space that `hf-rnn search` explores (see hf_rnn/search.py).

```yaml
search:
  metric: accuracy      # a validation metric (`eval_` prefix optional); default: training.metric_for_best_model
  direction: maximize   # default: minimize for loss, maximize otherwise
  pruner: median        # stop trials that fall below the median of earlier ones at the same step; or none
  params:               # recipe keys, section.key, and the values to try
    training.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    model.hidden_size: {type: categorical, choices: [32, 64, 128]}
    model.num_layers: {type: int, low: 1, high: 3}
```

Validated with the rest of the recipe: unknown keys (with a did-you-mean), bad ranges, keys that cannot be searched,
and every bound and choice is tried in the recipe, so a value the recipe would refuse fails now, not in trial 17.
"""

import copy
import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .recipes import (
    METRIC_KEYS,
    ModelSpec,
    Recipe,
    RecipeError,
    _coerce,
    _config_fields,
    _type_name,
    _unknown_key,
    _Where,
    recipe_from_dict,
)
from .training_spec import OWN_KEYS, training_field_hints

# the tokenizer, the data, the metrics and the callbacks are built once per search; a frontend's cached outputs too.
# Evaluation and checkpoint timing stay fixed as well: trials are compared (and pruned) at the same steps.
_FIXED_TRAINING_KEYS = {
    "output_dir",
    "metrics",
    "metric_for_best_model",
    "early_stopping_patience",
    "eval_strategy",
    "eval_steps",
    "save_strategy",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "per_device_eval_batch_size",
    "dataloader_num_workers",
    "flush_denormal",
    "adaptive_threads",
}
_FIXED_MODEL_KEYS = {"task", "frontend_pretrained", "cache_frontend", "frontend_bf16", "embedding_init"}
_FIXED_MODEL_PREFIXES = ("frontend", "freeze_frontend")


def searchable_keys(section: str) -> set[str]:
    """The keys of a recipe section that a search may vary: each trial builds its model (`model_init`) and its
    `TrainingArguments` from its own recipe, while the tokenized data stays the same."""
    if section == "training":
        # every TrainingArguments field and hf-rnn's own training keys (see hf_rnn.training_spec)
        return {*training_field_hints(), *OWN_KEYS} - _FIXED_TRAINING_KEYS
    spec_keys = {f.name for f in dataclasses.fields(ModelSpec)} - {"config"} - _FIXED_MODEL_KEYS
    config_keys = {key for key in _config_fields() if not key.startswith(_FIXED_MODEL_PREFIXES)}
    return spec_keys | config_keys


@dataclass
class ParamSpec:
    """One searched key: a float or int range (optionally log-scaled or stepped) or a list of choices.

    Args:
        type (`str`): `"float"`, `"int"` or `"categorical"`.
        low, high (`float` or `int`): the range, both ends included (float and int).
        log (`bool`, *optional*, defaults to `False`): sample on a log scale (needs low > 0).
        step (`float` or `int`, *optional*): sample on a grid of this spacing from low.
        choices (`list`): the values to pick from (categorical); lists such as `[[64], [128, 64]]` work too.
    """

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list | None = None

    def __post_init__(self):
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty list of choices.")
            extra = [name for name in ("low", "high", "step") if getattr(self, name) is not None] + (
                ["log"] * self.log
            )
            if extra:
                raise ValueError(f"{', '.join(extra)} apply to float and int ranges, not to categorical choices.")
            return
        if self.choices is not None:
            raise ValueError(f"choices apply to categorical parameters; a {self.type} range takes low and high.")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} range needs low and high.")
        if self.type == "int":
            for name in ("low", "high", "step"):
                value = getattr(self, name)
                if value is not None and value != int(value):
                    raise ValueError(f"{name} of an int range must be a whole number, got {value}.")
                if value is not None:
                    setattr(self, name, int(value))
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high}).")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}.")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined; drop one.")
        if self.step is not None and not 0 < self.step <= self.high - self.low:
            raise ValueError(f"step must be positive and at most high - low, got {self.step}.")

    def bounds(self) -> list:
        """The values whose validity stands for the whole space: the choices, or both ends of the range."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]

    def to_dict(self) -> dict[str, Any]:
        return {
            key: value for key, value in dataclasses.asdict(self).items() if value is not None and value is not False
        }


@dataclass
class SearchSpec:
    """The `search` section (see the module docstring). `metric` is stored as the validation key (`eval_accuracy`)."""

    metric: str
    direction: Literal["maximize", "minimize"]
    pruner: Literal["median", "none"] = "median"
    params: dict[str, ParamSpec] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "pruner": self.pruner,
            "params": {name: spec.to_dict() for name, spec in self.params.items()},
        }


_SEARCH_HINTS = {
    "metric": str | None,
    "direction": Literal["maximize", "minimize"] | None,
    "pruner": Literal["median", "none"],
    "params": dict,
}
_PARAM_HINTS = {f.name: typing.get_type_hints(ParamSpec)[f.name] for f in dataclasses.fields(ParamSpec)}


def set_key(data: dict, target: str, value: Any) -> dict:
    """A copy of a recipe dict with `section.key` set to `value`."""
    data = copy.deepcopy(data)
    section, key = target.split(".", 1)
    if not isinstance(data.get(section), dict):
        data[section] = {}
    data[section][key] = value
    return data


def build_search_spec(data: dict, recipe: Recipe, where: _Where) -> SearchSpec:
    """Validates the `search` section of a recipe dict whose other sections built `recipe`."""
    values = data["search"]
    place = where.of(("search",))
    if not isinstance(values, dict):
        raise RecipeError(f"{place}: search must be a mapping with params (and metric, direction, pruner).")
    checked = {}
    for key, value in values.items():
        if key not in _SEARCH_HINTS:
            raise _unknown_key(str(key), set(_SEARCH_HINTS), where.of(("search", str(key))), "search")
        if value is None and key in ("metric", "direction"):
            continue
        ok, checked[key] = _coerce(value, _SEARCH_HINTS[key])
        if not ok:
            raise RecipeError(
                f"{where.of(('search', key))}: search.{key} must be {_type_name(_SEARCH_HINTS[key])}, got {value!r}."
            )
    metric = _check_metric(checked.get("metric"), recipe, where)
    direction = checked.get("direction") or ("minimize" if metric == "eval_loss" else "maximize")
    if not checked.get("params"):
        raise RecipeError(
            f"{place}: search.params is missing or empty; name the keys to vary, e.g. "
            "training.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}."
        )
    base = {key: value for key, value in data.items() if key != "search"}
    source = Path(recipe.source) if recipe.source else None
    params = {
        str(target): _build_param(str(target), raw, base, source, where) for target, raw in checked["params"].items()
    }
    return SearchSpec(metric=metric, direction=direction, pruner=checked.get("pruner", "median"), params=params)


def _check_metric(metric: str | None, recipe: Recipe, where: _Where) -> str:
    training = recipe.training
    if training.eval_strategy == "no":
        raise RecipeError(
            f"{where.of(('training', 'eval_strategy'))}: a search compares trials on validation metrics; set "
            "training.eval_strategy to epoch or steps."
        )
    produced = {"loss", *(METRIC_KEYS.get(name, name) for name in training.metrics)}
    name = (metric or training.metric_for_best_model).removeprefix("eval_")
    if name not in produced:
        raise RecipeError(
            f"{where.of(('search', 'metric'))}: search.metric {metric!r} is not computed; with training.metrics "
            f"{training.metrics} it can be one of {', '.join(sorted(produced))}."
        )
    return f"eval_{name}"


def _build_param(target: str, raw: Any, base: dict, source: Path | None, where: _Where) -> ParamSpec:
    place = where.of(("search", "params", target))
    name = f"search.params.{target}"
    section, _, key = target.partition(".")
    if section not in ("model", "training") or not key:
        raise RecipeError(
            f"{place}: {name}: only model.KEY and training.KEY can be searched (the tokenizer and the data are "
            "prepared once per search); write the key as section.key."
        )
    allowed = searchable_keys(section)
    if key not in allowed:
        raise _unknown_key(key, allowed, place, f"the searchable keys of {section}")
    if not isinstance(raw, dict):
        raise RecipeError(f"{place}: {name} must be a mapping such as {{type: float, low: 0.0001, high: 0.01}}.")
    checked = {}
    for option, value in raw.items():
        if option not in _PARAM_HINTS:
            raise _unknown_key(
                str(option), set(_PARAM_HINTS), where.of(("search", "params", target, str(option))), name
            )
        ok, checked[option] = _coerce(value, _PARAM_HINTS[option])
        if not ok:
            raise RecipeError(f"{place}: {name}.{option} must be {_type_name(_PARAM_HINTS[option])}, got {value!r}.")
    if "type" not in checked:
        raise RecipeError(f"{place}: {name} needs a type: float, int or categorical.")
    try:
        spec = ParamSpec(**checked)
    except ValueError as error:
        raise RecipeError(f"{place}: {name}: {error}") from None
    for value in spec.bounds():
        try:
            recipe_from_dict(set_key(base, target, value), where=_Where(), source=source)
        except RecipeError as error:
            # the inner place points into the recipe as merged for the check; the outer one says where to fix it
            cause = re.sub(r"^(recipe|\S+:\d+): ", "", str(error))
            raise RecipeError(f"{place}: {name}: the recipe refuses {value!r}: {cause}") from None
    return spec
