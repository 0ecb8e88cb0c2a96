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
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .data import _LOCAL_BUILDERS, EMBEDDED_DATASETS, DataSpec
from .frontends import resolve_frontend
from .recipe_fields import (  # noqa: F401 (re-exported)
    _ALIASES,
    _FLOAT_TEXT,
    _check_fields,
    _choices,
    _coerce,
    _type_name,
    _unknown_key,
    strict_error_message,
)
from .recipe_model import (  # noqa: F401 (re-exported: the model section lived here)
    _DERIVED_FIELDS,
    MODEL_TYPES,
    ModelSpec,
    _build_model,
    _config_fields,
    build_model_spec,
)
from .recipe_yaml import (
    CONFIGS_DIR,  # noqa: F401 (re-exported)
    RECIPES_DIR,
    RecipeError,
    _apply_override,
    _load_with_extends,
    _read_yaml,
    _resolve_file,
    _Where,
)
from .registry import head_class
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


DEFAULT_RECIPE = "quickstart"
# the metrics hf_rnn ships for offline use (training.load_metric reads them from here)
METRICS_DIR = Path(__file__).parent / "metrics"

# the tasks `hf-rnn train` trains (model.task); every other registered head is refused at validation
TRAINABLE_TASKS = {
    "sequence_classification": "text classification and regression",
    "causal_lm": "language models",
}


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
