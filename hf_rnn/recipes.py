"""YAML recipes: one file describes a whole experiment (model, tokenizer, data, training), validated before any data
or model is touched.

A recipe has the top-level sections `model`, `tokenizer`, `data`, `training` and `hub`, plus `name`, `description`
and `extends` (a recipe it builds on, merged key by key). `model` is either the name of a file in `configs/models/`
or a mapping of config fields, optionally with `base:` naming such a file, checked by the config class itself.
`training` is `transformers.TrainingArguments` with hf-rnn's defaults and keys (see `hf_rnn.training_spec`). Every
key anywhere is checked: an unknown key is an error naming its place in the file and the closest valid key.

Example:

```python
>>> from hf_rnn.recipes import load_recipe
>>> recipe = load_recipe("imdb_bilstm", overrides=["training.num_train_epochs=1"])
>>> recipe.training.learning_rate
0.001
```
"""

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassError
from transformers import CONFIG_MAPPING, PreTrainedConfig

from .configuration_rnn import RecurrentConfig, RNNConfig
from .data import _LOCAL_BUILDERS, EMBEDDED_DATASETS, DataSpec
from .frontends import WORD_VECTOR_ALIASES, frontend_config_for, frontend_is_cacheable, resolve_frontend
from .recipe_yaml import (
    _YAML11_BOOLEANS,
    CONFIGS_DIR,  # noqa: F401 (re-exported)
    MODELS_DIR,
    RECIPES_DIR,
    RecipeError,
    _apply_override,
    _load_with_extends,
    _merge,
    _read_yaml,
    _resolve_file,
    _Where,
)
from .registry import get_family, head_class, tasks
from .registry import list_models as _list_models
from .sizing import check_size, describe
from .tokenization import TokenizerSpec
from .training_spec import (
    METRIC_KEYS,
    OWN_KEYS,
    RNN_DEFAULTS,
    OwnKeys,
    TrainingSpec,
    steps_fields,
    training_field_hints,
)
from .utils import one_line

__all__ = ["METRIC_KEYS", "Recipe", "RecipeError", "TrainingSpec", "load_recipe", "recipe_from_dict"]


def strict_error_message(error: Exception) -> str:
    """The cause of a config validation error in one line (strict errors span lines: "...:\n    ValueError: ...")."""
    return re.sub(r"^\w+Error: ", "", str(error).strip().splitlines()[-1].strip())


DEFAULT_RECIPE = "quickstart"
# the metrics hf_rnn ships for offline use (training.load_metric reads them from here)
METRICS_DIR = Path(__file__).parent / "metrics"

# the short model names of recipes -> transformers model types
MODEL_TYPES = {"rnn": "hf_rnn", "lstm": "hf_lstm", "gru": "hf_gru"}
# the tasks `hf-rnn train` trains (model.task); every other registered head is refused at validation
TRAINABLE_TASKS = {
    "sequence_classification": "text classification and regression",
    "causal_lm": "language models",
}
# config fields a recipe does not set: they follow from the tokenizer and the data
_DERIVED_FIELDS = {"vocab_size", "pad_token_id", "bos_token_id", "eos_token_id"}
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _config_fields() -> dict[str, Any]:
    """Architecture fields of the hf_rnn configs (not the generic PreTrainedConfig ones), with their types."""
    # the configuration module has no `from __future__ import annotations`, so these are real types
    hints = {**RecurrentConfig.__annotations__, **RNNConfig.__annotations__}
    return {name: hint for name, hint in hints.items() if name not in _DERIVED_FIELDS}


@dataclass
class ModelSpec:
    """The `model` section: a cell type, a task, how pretrained inputs are loaded, and config fields.

    Args:
        type (`str`, *optional*, defaults to `"lstm"`): `"rnn"`, `"lstm"` or `"gru"`.
        task (`str`, *optional*, defaults to `"sequence_classification"`): a task head of the registry
            (`hf_rnn.registry.tasks()`); recipes train the tasks in `TRAINABLE_TASKS`: `"sequence_classification"`,
            and `"causal_lm"` for a language model (`*ForCausalLM`, see `hf_rnn/language_modeling.py`).
        frontend_pretrained (`str`, *optional*): encoder weights to load into a `frontend: bert` model (a Hub name,
            a local folder, or `minilm` for the offline all-MiniLM-L6-v2); the encoder's config and tokenizer come
            with it, and it implies `frontend: bert`.
        cache_frontend (`bool`, *optional*): compute a frozen frontend's outputs once and cache them on disk, so
            later epochs run only the recurrent layers. Defaults to on when possible: a pretrained encoder with
            `freeze_frontend: all` and `frontend_output` `sequence` or `pooled` (layer_mix and trainable encoders run
            the encoder at every step).
        frontend_bf16 (`bool`, *optional*, defaults to `False`): compute the cached frontend outputs under bfloat16
            autocast (faster on CPUs with bf16 support). For an encoder run at every step use `training.bf16`.
        embedding_init (`str`, *optional*): GloVe / word2vec text vectors (`.txt`, `.bz2`, `.gz`, or
            `glove-6b-50d` for the offline GloVe 6B 50d) loaded into the embedding table for the trained vocabulary;
            `embedding_dim` must match their width.
        freeze_embeddings (`bool`, *optional*, defaults to `False`): keep the loaded word vectors fixed in training.
        config (`dict`): the remaining fields, passed to the config class.
    """

    type: Literal["rnn", "lstm", "gru"] = "lstm"
    task: str = "sequence_classification"
    frontend_pretrained: str | None = None
    cache_frontend: bool | None = None
    frontend_bf16: bool = False
    embedding_init: str | None = None
    freeze_embeddings: bool = False
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def model_type(self) -> str:
        return MODEL_TYPES[self.type]

    def build_config(self, **derived) -> RecurrentConfig:
        """The transformers config: the recipe's fields plus derived ones (vocab_size, pad_token_id, id2label), and
        the encoder's config when `frontend_pretrained` names one."""
        config_class = get_family(self.model_type).config_class
        fields = {**self.config, **derived}
        if self.frontend_pretrained is not None:
            fields.setdefault("frontend", "bert")
            if "frontend_config" not in fields:
                fields["frontend_config"] = frontend_config_for(self.frontend_pretrained)
        return config_class(**fields)

    def caches_frontend(self, config: RecurrentConfig) -> bool:
        """Whether training caches the frontend's outputs (see `cache_frontend`) for a model of this config."""
        if self.cache_frontend is False or self.frontend_pretrained is None:
            return False
        return frontend_is_cacheable(config)


@dataclass
class HubSpec:
    """The `hub` section: push the trained model to the Hugging Face Hub at the end of `hf-rnn train`.

    Args:
        push_to_hub (`bool`, *optional*, defaults to `False`)
        repo_id (`str`, *optional*): `user/name`; required when pushing.
        private (`bool`, *optional*, defaults to `False`)
        revision (`str`, *optional*): a branch to push to.
        license (`str`, *optional*, defaults to `"apache-2.0"`): shown on the model card.
        language (`str`, *optional*, defaults to `"en"`): shown on the model card.
    """

    push_to_hub: bool = False
    repo_id: str | None = None
    private: bool = False
    revision: str | None = None
    license: str = "apache-2.0"
    language: str = "en"

    def __post_init__(self):
        if self.push_to_hub and not self.repo_id:
            raise ValueError("push_to_hub is true but repo_id is not set; add hub.repo_id: user/model-name.")


@dataclass
class ReferenceSpec:
    """The `reference` section: a published figure the recipe reproduces, shown beside its own result by
    `hf-rnn reproduce`.

    Args:
        metric (`str`, *optional*, defaults to `"accuracy"`): a test metric the recipe computes (`training.metrics`).
        value (`float`): the published figure as a fraction (76.7% is 0.767).
        source (`str`): where the figure comes from, in a few words.
    """

    metric: str = "accuracy"
    value: float | None = None
    source: str = ""

    def __post_init__(self):
        if self.value is None or not 0 <= self.value <= 1:
            raise ValueError(
                f"value must be the published figure as a fraction in [0, 1] (76.7% is 0.767), got {self.value}."
            )
        if not self.source.strip():
            raise ValueError("source must say where the figure comes from, e.g. 'Keras SimpleRNN tutorial, IMDB'.")

    @property
    def key(self) -> str:
        """The key of the metric in test results (`f1` -> `f1_macro`)."""
        return METRIC_KEYS.get(self.metric, self.metric)


@dataclass
class Recipe:
    """A validated recipe. `source` is the file it came from (None for a dict)."""

    name: str
    description: str = ""
    model: ModelSpec = field(default_factory=ModelSpec)
    tokenizer: TokenizerSpec = field(default_factory=TokenizerSpec)
    data: DataSpec = field(default_factory=DataSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    hub: HubSpec = field(default_factory=HubSpec)
    # optional sections: a published figure to compare with, and a search space (hf_rnn/search_space.py)
    reference: ReferenceSpec | None = None
    search: Any = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe (after `extends`, `base` and overrides), as saved beside the model."""
        model = {"type": self.model.type, "task": self.model.task, **self.model.config}
        for spec_field in dataclasses.fields(ModelSpec):
            value = getattr(self.model, spec_field.name)
            if spec_field.name not in model and spec_field.name != "config" and value != spec_field.default:
                model[spec_field.name] = value
        resolved = {
            "name": self.name,
            "description": self.description,
            "model": model,
            "tokenizer": dataclasses.asdict(self.tokenizer),
            "data": dataclasses.asdict(self.data),
            "training": self.training.to_dict(),
            "hub": dataclasses.asdict(self.hub),
        }
        if self.reference is not None:
            resolved["reference"] = dataclasses.asdict(self.reference)
        if self.search is not None:
            resolved["search"] = self.search.to_dict()
        return resolved

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


_SECTIONS = {"tokenizer": TokenizerSpec, "data": DataSpec, "hub": HubSpec}
_TOP_LEVEL = {"name", "description", "extends", "model", "training", "reference", "search", *_SECTIONS}


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


def _build_training(values: Any, where: _Where) -> TrainingSpec:
    """The `training` section: `TrainingArguments` fields typed as transformers declares them, hf-rnn's own keys,
    and a trial `TrainingArguments` so that its own checks fail here, before any data is read."""
    from .training_spec import build_training_arguments

    hints = training_field_hints()
    own_hints = {name: typing.get_type_hints(OwnKeys)[name] for name in OWN_KEYS}
    # hf-rnn's defaults are valid values too (save_steps: null, as recipe.yaml writes it)
    for name, default in RNN_DEFAULTS.items():
        hints[name] = hints[name] | Literal[default] if default is None else hints[name]
    listing = f"the fields of transformers.TrainingArguments and hf-rnn's {', '.join(sorted(OWN_KEYS))}"
    values = values if values is not None else {}
    if isinstance(values, dict):
        for key in values:
            if str(key) not in hints and str(key) not in own_hints:
                place = where.of(("training", str(key)))
                raise _unknown_key(str(key), {*hints, *own_hints}, place, "training", listing)
    checked = _check_fields(values, {**hints, **own_hints}, "training", where)
    for key in steps_fields():
        if type(values.get(key)) is int:
            # a number of steps stays an int (`logging_steps: 50`, not 50.0); fractions of training are floats
            checked[key] = values[key]
    own = {name: checked.pop(name) for name in list(checked) if name in own_hints}
    try:
        spec = TrainingSpec(checked, **own)
        build_training_arguments(spec, "checkpoints")
    except (ValueError, TypeError) as error:
        # hf-rnn's checks name their field (`error.field`); TrainingArguments' own point at the section
        field_name = getattr(error, "field", None)
        place = where.of(("training", field_name) if field_name in values else ("training",))
        if not place.startswith("--set"):
            # a `--set` value the message names is the newest change, so the likeliest cause: point at it
            named = _error_place(str(error), values, "training", where)
            place = named if named.startswith("--set") else place
        raise RecipeError(f"{place}: training: {one_line(error)}") from None
    return spec


def _build_section(cls: type, values: Any, section: str, where: _Where):
    hints = {f.name: typing.get_type_hints(cls)[f.name] for f in dataclasses.fields(cls)}
    checked = _check_fields(values if values is not None else {}, hints, section, where)
    try:
        return cls(**checked)
    except ValueError as error:
        raise RecipeError(f"{_error_place(str(error), checked, section, where)}: {section}: {error}") from None


def _error_place(message: str, keys: dict, section: str, where: _Where) -> str:
    """The place of the key a validation message names (a `--set` one first: it is the newest change), else the
    section's."""
    named = [key for key in keys if re.search(rf"\b{re.escape(key)}\b", message)]
    named.sort(key=lambda key: (not where.of((section, key)).startswith("--set"), message.find(key)))
    return where.of((section, named[0]) if named else (section,))


def _check_metric_names(training: Any, where: _Where) -> None:
    """Each `training.metrics` name is one hf_rnn ships or one `evaluate` loads, checked before any data is read; a
    near miss of a shipped name is a typo, not a Hub metric."""
    names = training.get("metrics") if isinstance(training, dict) else None
    if not isinstance(names, list):
        return
    offline = sorted(path.name for path in METRICS_DIR.iterdir() if path.is_dir())
    for name in names:
        if not isinstance(name, str) or name in offline:
            continue
        place = f"{where.of(('training', 'metrics'))}: training.metrics"
        close = difflib.get_close_matches(name, offline, n=1)
        if close or not name.strip():
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RecipeError(
                f"{place}: unknown metric {name!r}.{hint} hf_rnn ships {', '.join(offline)}; other `evaluate` metric "
                "names load from the Hub."
            )
        import evaluate  # only for names hf_rnn does not ship: slow to import

        try:
            evaluate.load(name)
        except Exception as error:  # a missing module, no network: all mean the name cannot be used
            raise RecipeError(
                f"{place}: unknown metric {name!r}: not one of hf_rnn's ({', '.join(offline)}) and `evaluate` could "
                f"not load it ({type(error).__name__}: {one_line(error, first_only=True)})."
            ) from None


def _build_model(values: Any, where: _Where, source: Path | None) -> ModelSpec:
    if values is None:
        values = {}
    if isinstance(values, str):
        values = {"base": values}
    if not isinstance(values, dict):
        raise RecipeError(f"{where.of(('model',))}: model must be a model name or a mapping, got {values!r}.")
    values = dict(values)
    base = values.pop("base", None)
    if base is not None:
        base_where = _Where()
        base_path = _resolve_file(str(base), MODELS_DIR, source, "model")
        base_data = _read_yaml(base_path, base_where, prefix=("model",))
        # a model file's one-line description is for `hf-rnn list`, not a config field
        base_data.pop("description", None)
        if "base" in base_data:
            raise RecipeError(
                f"{base_where.of(('model', 'base'))}: a model file cannot name another base; copy its fields instead."
            )
        where.places = {**base_where.places, **where.places}
        values = _merge(base_data, values)
    spec_hints = {name: hint for name, hint in typing.get_type_hints(ModelSpec).items() if name != "config"}
    allowed = {*spec_hints, *_config_fields()}
    for key in values:
        if str(key) not in allowed:
            raise _unknown_key(str(key), allowed, where.of(("model", str(key))), "model")
    spec_values = _check_fields({k: v for k, v in values.items() if k in spec_hints}, spec_hints, "model", where)
    spec = ModelSpec(**spec_values, config={k: v for k, v in values.items() if k not in spec_hints})
    if spec.task not in tasks():
        close = difflib.get_close_matches(spec.task, tasks(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RecipeError(
            f"{where.of(('model', 'task'))}: model.task {spec.task!r} is not a task of hf_rnn's models.{hint} "
            f"Tasks: {', '.join(tasks())}."
        )
    if spec.type != "rnn" and "nonlinearity" in spec.config:
        raise RecipeError(f"{where.of(('model', 'nonlinearity'))}: model.nonlinearity applies to type 'rnn' only.")
    _check_config_values(spec, where)
    _check_pretrained_inputs(spec, where)
    _check_frontend_config_keys(spec, where)
    try:
        # the config class validates the architecture now, before any data is read; vocab_size and labels follow
        config = spec.build_config()
    except StrictDataclassClassValidationError as error:
        # validate_architecture raises errors that name their field (`error.field`): point at its line
        cause = error.__cause__
        field_name = getattr(cause, "field", None)
        place = where.of(("model", field_name) if field_name in spec.config else ("model",))
        raise RecipeError(f"{place}: model: {one_line(cause or error)}") from None
    except (ValueError, StrictDataclassError) as error:
        raise RecipeError(f"{where.of(('model',))}: model: {strict_error_message(error)}") from None
    _check_frontend_cache(spec, config, where)
    return spec


def _check_config_values(spec: ModelSpec, where: _Where) -> None:
    """Each config field's value, checked by the config class's own field validators (the strict dataclass's)."""
    config_class = get_family(spec.model_type).config_class
    hints = _config_fields()
    for key, value in spec.config.items():
        numeric = float in typing.get_args(hints.get(key))
        if isinstance(value, str) and numeric and _FLOAT_TEXT.fullmatch(value.strip()):
            # YAML 1.1 reads `5e-1` (no dot) as a string; a float field takes what Python reads as a number
            spec.config[key] = value = float(value)
        if isinstance(value, str) and hints.get(key) is bool and value.lower() in _YAML11_BOOLEANS:
            # `bidirectional: on` (YAML 1.1) means true where the field is a boolean
            spec.config[key] = value = _YAML11_BOOLEANS[value.lower()]
        for validator in config_class.__validators__.get(key, []):
            try:
                validator(value)
            except (TypeError, ValueError) as error:
                raise RecipeError(f"{where.of(('model', key))}: model.{key}: {one_line(error)}") from None


def build_model_spec(values: dict) -> ModelSpec:
    """A validated `model` section from a dict (`{"base": "bilstm", "hidden_size": 32}`), as `create_model` takes."""
    return _build_model(values, _Where(), None)


def _check_frontend_config_keys(spec: ModelSpec, where: _Where) -> None:
    """Every key of an inline `frontend_config` must be a field of the encoder's config class: transformers configs
    keep unknown keys as attributes, so a typo (`hiden_dropout_prob`) would silently change nothing."""
    encoder = spec.config.get("frontend_config")
    if not isinstance(encoder, dict):
        return
    model_type = encoder.get("model_type", "bert")
    if model_type not in CONFIG_MAPPING:
        raise RecipeError(
            f"{where.of(('model', 'frontend_config', 'model_type'))}: model.frontend_config.model_type: unknown "
            f"encoder type {model_type!r}; use a transformers model type such as 'bert'."
        )
    allowed = set(CONFIG_MAPPING[model_type]().to_dict()) | {"model_type"}
    for key in encoder:
        if key not in allowed:
            place = where.of(("model", "frontend_config", key))
            raise _unknown_key(key, allowed, place, f"model.frontend_config ({model_type})")


def _check_pretrained_inputs(spec: ModelSpec, where: _Where) -> None:
    """`frontend_pretrained` and `embedding_init` each go with one kind of model; say which."""

    def fail(key: str, message: str):
        raise RecipeError(f"{where.of(('model', key))}: model.{key}: {message}")

    frontend = spec.config.get("frontend", "bert" if spec.frontend_pretrained is not None else "none")
    if spec.frontend_pretrained is not None:
        if frontend != "bert":
            fail("frontend_pretrained", f"loads an encoder, but frontend is {frontend!r}; set frontend: bert.")
        if "frontend_config" in spec.config:
            fail(
                "frontend_pretrained",
                "the encoder's config comes with its weights; remove frontend_config, or frontend_pretrained to "
                "train a randomly initialised encoder.",
            )
        try:
            # reads config.json only: an unknown name or a missing offline copy is reported before any data is read
            frontend_config_for(spec.frontend_pretrained)
        except ValueError as error:
            fail("frontend_pretrained", str(error))
    if spec.embedding_init is not None:
        if frontend != "none":
            fail("embedding_init", "loads word vectors into the embedding table; a frontend model has none.")
        if spec.embedding_init not in WORD_VECTOR_ALIASES and not Path(spec.embedding_init).expanduser().is_file():
            fail(
                "embedding_init",
                f"{spec.embedding_init!r} is not a file; give a GloVe / word2vec text file (.txt, .bz2, .gz) or one "
                f"of {', '.join(WORD_VECTOR_ALIASES)}.",
            )
    if spec.freeze_embeddings and spec.embedding_init is None:
        fail("freeze_embeddings", "freezes pretrained word vectors; set embedding_init too.")


def _check_frontend_cache(spec: ModelSpec, config: RecurrentConfig, where: _Where) -> None:
    """An explicit `cache_frontend: true` must be possible, and `frontend_bf16` needs the cache."""
    if spec.cache_frontend and not spec.caches_frontend(config):
        if spec.frontend_pretrained is None:
            reason = "it needs a pretrained encoder (frontend_pretrained)"
        elif config.freeze_frontend != "all":
            reason = f"the encoder changes during training (freeze_frontend {config.freeze_frontend!r})"
        else:
            reason = "layer_mix weights every hidden layer, so the encoder runs at every step"
        raise RecipeError(
            f"{where.of(('model', 'cache_frontend'))}: model.cache_frontend: the frontend outputs cannot be cached: "
            f"{reason}. Caching needs freeze_frontend: all and frontend_output sequence or pooled."
        )
    if spec.frontend_bf16 and not spec.caches_frontend(config):
        raise RecipeError(
            f"{where.of(('model', 'frontend_bf16'))}: model.frontend_bf16 applies to the cached frontend outputs, "
            "and this recipe runs the encoder at every step; use training.bf16 instead."
        )


def recipe_from_dict(data: dict, name: str = "recipe", where: _Where | None = None, source: Path | None = None):
    """Validates a recipe given as a dict (what a YAML file holds, after `extends`) and returns a [`Recipe`]."""
    where = where or _Where()
    if not isinstance(data, dict):
        raise RecipeError(f"a recipe must be a mapping of sections, got {type(data).__name__}.")
    for key in data:
        if key not in _TOP_LEVEL:
            raise _unknown_key(str(key), _TOP_LEVEL, where.of((str(key),)), "the recipe")
    _check_metric_names(data.get("training"), where)
    recipe = Recipe(
        name=str(data.get("name", name)),
        description=str(data.get("description", "")),
        model=_build_model(data.get("model"), where, source),
        training=_build_training(data.get("training"), where),
        source=str(source) if source else None,
        **{section: _build_section(cls, data.get(section), section, where) for section, cls in _SECTIONS.items()},
    )
    check_task(recipe.model, where)
    if data.get("reference") is not None:
        recipe.reference = _build_section(ReferenceSpec, data["reference"], "reference", where)
        if recipe.reference.metric not in recipe.training.metrics:
            raise RecipeError(
                f"{where.of(('reference', 'metric'))}: reference.metric {recipe.reference.metric!r} is not computed; "
                f"use one of training.metrics ({', '.join(recipe.training.metrics)})."
            )
    if data.get("search") is not None:
        # imported here: search_space builds on this module's validation helpers
        from .search_space import build_search_spec

        recipe.search = build_search_spec(data, recipe, where)
    if recipe.model.task == "causal_lm":
        _check_causal_lm(recipe, where)
    _check_size(recipe, where)
    return recipe


def _check_causal_lm(recipe: Recipe, where: _Where) -> None:
    """What a language-model recipe (`model.task: causal_lm`) must say differently from a classifier's."""
    config = recipe.model.config
    if config.get("bidirectional"):
        raise RecipeError(
            f"{where.of(('model', 'bidirectional'))}: model.bidirectional: a causal language model reads left to "
            "right; set it to false."
        )
    if recipe.model.frontend_pretrained is not None or config.get("frontend", "none") != "none":
        raise RecipeError(
            f"{where.of(('model', 'frontend'))}: model.frontend: a language model embeds its own tokens (an encoder "
            "frontend sees the tokens to predict); remove the frontend keys."
        )
    if recipe.tokenizer.pretrained is not None or recipe.tokenizer.max_length is None:
        raise RecipeError(
            f"{where.of(('tokenizer',))}: tokenizer: a language model trains its own tokenizer on blocks of "
            "max_length tokens; set max_length and remove pretrained."
        )
    training = recipe.training
    if training.eval_strategy != "no" and training.metric_for_best_model != "loss":
        raise RecipeError(
            f"{where.of(('training', 'metric_for_best_model'))}: training.metric_for_best_model "
            f"{training.metric_for_best_model!r}: a language model is selected on its validation loss; set "
            "training.metric_for_best_model: loss."
        )


def check_task(spec: ModelSpec, where: _Where | None = None) -> None:
    """Recipes train the tasks of `TRAINABLE_TASKS` only: another head is refused at validation, not after data
    loading (training checks again for a `Recipe` built in Python)."""
    if spec.task not in TRAINABLE_TASKS:
        place = where.of(("model", "task")) if where is not None else "recipe"
        raise RecipeError(
            f"{place}: model.task {spec.task!r}: recipes train "
            f"{', '.join(f'{task} ({what})' for task, what in TRAINABLE_TASKS.items())}; build a {spec.task} model "
            "with hf_rnn.create_model(name, task=...) and train it with your own Trainer."
        )


def _check_size(recipe: Recipe, where: _Where) -> None:
    """Refuses a model too big to train on this machine now, naming the key that makes it so (see sizing.py)."""
    oversized = check_size(recipe.model, recipe.tokenizer.max_tokens)
    if oversized is None:
        return
    if oversized.key is None:
        raise RecipeError(f"{where.of(('model',))}: model: {describe(oversized)}; make the model smaller.")
    section, key = oversized.key.split(".")
    value = recipe.tokenizer.max_tokens if section == "tokenizer" else recipe.model.config[key]
    raise RecipeError(
        f"{where.of((section, key))}: {oversized.key}: {describe(oversized)}; lower {oversized.key} (now {value!r})."
    )


def load_recipe(name_or_path: str | Path | None = None, overrides: list[str] | None = None) -> Recipe:
    """Loads, merges (`extends`, `model.base`, `--set` overrides) and validates a recipe.

    Args:
        name_or_path (`str` or `Path`, *optional*): a YAML file, or the name of a recipe in `configs/recipes/`
            (see `hf-rnn list`); defaults to the quickstart recipe.
        overrides (`list[str]`, *optional*): `section.key=value` strings, validated like the file.

    Raises:
        [`RecipeError`]: one line naming the file, line and key that is wrong, and what is allowed.
    """
    path = _resolve_file(str(name_or_path or DEFAULT_RECIPE), RECIPES_DIR, None, "recipe")
    where = _Where()
    data = _load_with_extends(path, where)
    for override in overrides or []:
        data = _apply_override(data, override, where)
    return recipe_from_dict(data, name=path.stem, where=where, source=path)


def list_recipes() -> list[str]:
    """Names of the recipes shipped in `configs/recipes/`."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def list_models() -> list[str]:
    """Names of the model definitions shipped in `configs/models/` (see `hf_rnn.list_models` for patterns)."""
    return _list_models()


def build_untrained_model(name_or_path: str):
    """A randomly initialised model for `hf-rnn summary`, from a saved model directory, a recipe or a model file.

    Recipes size the vocabulary from `tokenizer.max_tokens`; a bare model file uses the config default (20,000).
    """
    path = Path(name_or_path)
    if path.is_dir():
        from .model_dir import model_class, read_config  # model_dir imports this module

        config = read_config(path)
        return model_class(config)(config)
    is_recipe = name_or_path in list_recipes() or (path.is_file() and "model" in _read_yaml(path, _Where()))
    if is_recipe:
        recipe = load_recipe(name_or_path)
        spec, derived = recipe.model, {"vocab_size": recipe.tokenizer.max_tokens}
    else:
        spec, derived = _build_model({"base": name_or_path}, _Where(), None), {}
    return head_class(spec.model_type, spec.task)(spec.build_config(**derived))


def load_data_spec(path: str | Path) -> DataSpec:
    """Only the `data` section of a saved recipe (as `hf-rnn eval` needs), without validating model or training
    keys that may refer to files or encoders this machine lacks."""
    where = _Where()
    data = _read_yaml(Path(path), where)
    return _build_section(DataSpec, data.get("data"), "data", where)


def network_sources(recipe: Recipe) -> list[str]:
    """What a recipe reads from the Hugging Face Hub (a dataset, an encoder, a tokenizer), derived from its data and
    model sections: an embedded dataset, a local file or folder and an encoder with an offline copy need no network.
    Empty when the recipe runs offline; `hf-rnn list` marks the others."""
    sources = []
    dataset = recipe.data.dataset
    is_local = Path(dataset).suffix.lower() in _LOCAL_BUILDERS or Path(dataset).exists()
    if dataset not in EMBEDDED_DATASETS and not is_local:
        sources.append(f"Hub dataset {dataset!r}")
    if (
        recipe.model.frontend_pretrained is not None
        and not Path(resolve_frontend(recipe.model.frontend_pretrained)).is_dir()
    ):
        sources.append(f"Hub encoder {recipe.model.frontend_pretrained!r}")
    if recipe.tokenizer.pretrained is not None and not Path(recipe.tokenizer.pretrained).exists():
        sources.append(f"Hub tokenizer {recipe.tokenizer.pretrained!r}")
    return sources


def recipe_description(name: str) -> str:
    """A shipped recipe's description, read without validating it (for `hf-rnn list`)."""
    data = yaml.safe_load((RECIPES_DIR / f"{name}.yaml").read_text(encoding="utf-8")) or {}
    return str(data.get("description", ""))
