"""The `model` section of a recipe: `ModelSpec`, and its validation by the config class itself (field validators,
`validate_architecture`), the frontend and pretrained-input checks, each error at its `file:line`.
"""

import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassError
from transformers import CONFIG_MAPPING

from .configuration_rnn import RecurrentConfig, RNNConfig
from .frontends import WORD_VECTOR_ALIASES, frontend_config_for, frontend_is_cacheable
from .recipe_fields import _FLOAT_TEXT, _check_fields, _unknown_key, strict_error_message
from .recipe_yaml import (
    _YAML11_BOOLEANS,
    MODELS_DIR,
    RecipeError,
    _merge,
    _read_yaml,
    _resolve_file,
    _Where,
)
from .registry import get_family, tasks
from .utils import one_line

# the short model names of recipes -> transformers model types
MODEL_TYPES = {"rnn": "hf_rnn", "lstm": "hf_lstm", "gru": "hf_gru"}
# config fields a recipe does not set: they follow from the tokenizer and the data
_DERIVED_FIELDS = {"vocab_size", "pad_token_id", "bos_token_id", "eos_token_id"}


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
