"""The recipe's `training` section is `transformers.TrainingArguments`: every field is a valid key, typed as the
dataclass declares it, with hf-rnn's defaults laid over it; shipped recipes give the same arguments as before."""

import dataclasses
import json
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from transformers import TrainingArguments
from transformers.trainer_utils import SchedulerType

from hf_rnn.recipes import RecipeError, _check_fields, _Where, list_recipes, load_recipe, recipe_from_dict
from hf_rnn.training import train, training_arguments
from hf_rnn.training_spec import OWN_KEYS, RNN_DEFAULTS, TrainingSpec, training_field_hints

FIXTURES = Path(__file__).parent / "fixtures"
# variants of the quickstart recipe in the fixture, beside every shipped recipe
VARIANTS = {
    "quickstart+no_eval": [
        "training.eval_strategy='no'",
        "training.save_strategy=steps",
        "training.save_steps=7",
        "training.early_stopping_patience=null",
    ],
    "quickstart+steps": ["training.eval_strategy=steps", "training.eval_steps=5", "training.save_strategy=steps"],
    "quickstart+misc": [
        "training.group_by_length=false",
        "training.bf16=true",
        "training.max_steps=3",
        "training.warmup_steps=0.1",
        "training.lr_scheduler_type=cosine",
        "training.seed=7",
    ],
}
# what depends on the machine or the run folder, not on the recipe
_MACHINE = {"use_cpu", "dataloader_pin_memory", "output_dir", "logging_dir"}


def _non_default(args: TrainingArguments) -> dict[str, Any]:
    default = json.loads(TrainingArguments(output_dir="unused").to_json_string())
    values = json.loads(args.to_json_string())
    return {key: value for key, value in values.items() if key not in _MACHINE and value != default[key]}


REFERENCE = json.loads((FIXTURES / "training_arguments_v0.json").read_text())


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_shipped_recipes_give_the_same_training_arguments_as_before(name):
    """The fixture holds what main (73d9e1e, before the training section became TrainingArguments) built."""
    if name.split("+")[0] not in list_recipes():
        pytest.skip(f"recipe {name} is no longer shipped")
    recipe = load_recipe(name.split("+")[0], overrides=VARIANTS.get(name))
    # one deliberate change since: the default optimizer is transformers' own, adamw_torch_fused (was adamw_torch)
    expected = {key: value for key, value in REFERENCE[name].items() if (key, value) != ("optim", "adamw_torch")}
    assert _non_default(training_arguments(recipe, Path("ckpt"))) == expected


def _sample(hint: Any) -> Any:
    """A YAML value of a type hint's first non-null type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return args[0]
    if origin in (typing.Union, types.UnionType):
        return _sample(next(arg for arg in args if arg is not type(None)))
    if origin is list:
        return [_sample(args[0])]
    if hint is dict or origin is dict:
        return {}
    return {bool: True, int: 2, float: 0.5, str: "x", Any: "x"}.get(hint, None)


def _wrong(hint: Any) -> Any:
    """A value no hint of TrainingArguments accepts but a free-form one (`Any`, plain `str`)."""
    return {"a": object()} if hint in (Any, str) else object()


HINTS = training_field_hints()


@pytest.mark.parametrize("name", sorted(HINTS))
def test_every_training_arguments_field_is_a_typed_recipe_key(name):
    hint = HINTS[name]
    value = _sample(hint)
    checked = _check_fields({name: value}, HINTS, "training", _Where())
    assert name in checked
    if hint is not Any:
        with pytest.raises(RecipeError, match=rf"recipe: training\.{name} must be"):
            _check_fields({name: _wrong(hint)}, HINTS, "training", _Where())


def _default(field: dataclasses.Field) -> Any:
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


@pytest.mark.parametrize("field", dataclasses.fields(TrainingArguments), ids=lambda f: f.name)
def test_every_field_set_to_transformers_default_builds_or_names_itself(field):
    """Each field, set in a recipe to TrainingArguments' own default, reaches TrainingArguments, or (where that
    default contradicts what hf-rnn sets or derives) the error names the field and its line."""
    default = _default(field)
    if default is not None and not isinstance(default, (bool, int, float, str, list, dict)):
        pytest.skip(f"{field.name} has no YAML default")
    try:
        recipe = recipe_from_dict({"training": {field.name: default}}, where=_placed(field.name))
    except RecipeError as error:
        assert str(error).startswith(f"recipe.yaml:{_LINE}: training: {field.name}") or field.name in str(error)
        return
    args = _non_default(training_arguments(recipe, Path("ckpt")))
    assert getattr(recipe.training, field.name) == default
    if field.name not in RNN_DEFAULTS:
        # TrainingArguments' own default: the same arguments as a recipe that does not name the field
        assert args == _non_default(training_arguments(recipe_from_dict({}), Path("ckpt")))


_LINE = 7


def _placed(key: str) -> _Where:
    where = _Where()
    where.places[("training", key)] = f"recipe.yaml:{_LINE}"
    where.places[("training",)] = "recipe.yaml:6"
    return where


def test_the_fields_users_asked_for_reach_training_arguments(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        textwrap.dedent(
            """
            training:
              report_to: tensorboard
              run_name: my-run
              adam_beta2: 0.98
              lr_scheduler_type: cosine_with_restarts
              lr_scheduler_kwargs: {num_cycles: 2}
              torch_compile: true
              fp16: true
              neftune_noise_alpha: 5
            """
        )
    )
    args = training_arguments(load_recipe(str(path)), tmp_path / "ckpt")
    assert args.report_to == ["tensorboard"] and args.run_name == "my-run" and args.adam_beta2 == 0.98
    assert args.lr_scheduler_type == SchedulerType.COSINE_WITH_RESTARTS and args.lr_scheduler_kwargs == {
        "num_cycles": 2
    }
    assert args.torch_compile and args.fp16 and args.neftune_noise_alpha == 5
    # hf-rnn's defaults stand where the recipe is silent
    assert args.learning_rate == RNN_DEFAULTS["learning_rate"] == 1e-3 and args.optim == "adamw_torch_fused"


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "training:\n  adam_beta: 0.9\n",
            r"recipe.yaml:2: unknown key 'adam_beta' in training\. Did you mean 'adam_beta[12]'",
        ),
        (
            "training:\n  optim: adamw_torh\n",
            r"recipe.yaml:2: training.optim must be one of .*Did you mean 'adamw_torch'\?",
        ),
        (
            "training:\n  lr_scheduler_type: cosin\n",
            r"training.lr_scheduler_type must be one of .*Did you mean 'cosine'",
        ),
        ("training:\n  report_to: tensorbord\n", r"training.report_to must be .*got 'tensorbord'"),
        ("training:\n  report_to: wandb\n", r"recipe.yaml:2: training: report_to 'wandb' needs its package"),
        ("training:\n  log_level: loud\n", r"training.log_level must be one of 'detail', 'debug'"),
        ("training:\n  adam_beta2: high\n", r"training.adam_beta2 must be float, got 'high'"),
        (
            "training:\n  seed: 1\n  remove_unused_columns: true\n",
            r"recipe.yaml:3: training: remove_unused_columns is set by hf-rnn \(hf-rnn uses False\): the length "
            r"column",
        ),
        ("training:\n  gradient_checkpointing: true\n", r"recipe.yaml:2: training: gradient_checkpointing is set"),
        ("training:\n  push_to_hub: true\n", r"push_to_hub is set by hf-rnn.*use the recipe's hub section"),
        (
            "training:\n  train_sampling_strategy: random\n",
            r"train_sampling_strategy is set by hf-rnn: set group_by_length",
        ),
        # TrainingArguments' own checks run at validation too
        (
            "training:\n  lr_scheduler_type: reduce_lr_on_plateau\n  eval_strategy: 'no'\n"
            "  early_stopping_patience: null\n",
            r"recipe.yaml:1: training: lr_scheduler_type reduce_lr_on_plateau requires an eval strategy",
        ),
    ],
)
def test_training_errors_name_the_line_and_the_fix(tmp_path, text, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=message):
        load_recipe(str(path))


def test_a_forced_field_may_repeat_hf_rnns_value(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("training:\n  remove_unused_columns: false\n  length_column_name: length\n")
    assert training_arguments(load_recipe(str(path)), tmp_path).remove_unused_columns is False


def test_recipe_yaml_round_trips(tmp_path):
    recipe = load_recipe("quickstart", overrides=["training.adam_beta2=0.95", "training.report_to=tensorboard"])
    again = recipe_from_dict(recipe.to_dict())
    assert again.training == recipe.training and again.to_yaml() == recipe.to_yaml()
    assert recipe.to_dict()["training"]["adam_beta2"] == 0.95
    # hf-rnn's defaults and own keys are written out; TrainingArguments' untouched defaults are not
    assert set(recipe.to_dict()["training"]) == {*OWN_KEYS, *RNN_DEFAULTS, "adam_beta2", "report_to"}


def test_training_spec_reads_every_field():
    spec = TrainingSpec({"adam_beta2": 0.9})
    assert spec.adam_beta2 == 0.9 and spec.learning_rate == 1e-3 and spec.adam_epsilon == 1e-8
    assert spec.early_stopping_patience == 2 and spec.metrics == ["accuracy", "f1", "roc_auc"]
    with pytest.raises(AttributeError):
        spec.no_such_field


def test_tensorboard_run_writes_its_logs_into_the_model_directory(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        textwrap.dedent(
            """
            model: {base: bilstm, embedding_dim: 8, hidden_size: 4, classifier_hidden_sizes: []}
            tokenizer: {max_tokens: 500, max_length: 16}
            data: {dataset: imdb, max_train_samples: 64, max_eval_samples: 16}
            training:
              num_train_epochs: 1
              per_device_train_batch_size: 32
              logging_steps: 1
              early_stopping_patience: null
              report_to: tensorboard
              run_name: tb-run
              adam_beta2: 0.98
              lr_scheduler_type: cosine_with_restarts
              lr_scheduler_kwargs: {num_cycles: 2}
            """
        )
    )
    result = train(load_recipe(str(path)), output_dir=tmp_path / "model")
    events = list((result.output_dir / "runs").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert not (result.output_dir / "checkpoints").exists()
