"""The `training` section of a recipe: `transformers.TrainingArguments` itself, with hf-rnn's defaults laid over it
and a few keys of hf-rnn's own.

Every field of the installed `TrainingArguments` is a valid key, typed and checked as that dataclass declares it
(choices such as `lr_scheduler_type`, `optim` and `report_to` come from transformers' own enums and tables), so a
field a future transformers adds is a valid key too. What hf-rnn adds:

- defaults for recurrent networks trained from scratch (`RNN_DEFAULTS`): learning rate 1e-3 (Keras' Adam default;
  the Trainer's 5e-5 is far too low for them), batch size 64, gradient clipping at norm 1, evaluation and a checkpoint
  every epoch with best-model selection on accuracy;
- keys of its own (`OWN_KEYS`): `output_dir` (the finished model directory, not the checkpoint folder),
  `early_stopping_patience`, `group_by_length`, `flush_denormal`, `adaptive_threads` and `metrics`;
- fields it sets itself for its pipeline to work (`HF_RNN_SETS`). A recipe that sets one of them to another value is
  refused at validation with the reason; setting the value hf-rnn uses anyway is allowed. Fields hf-rnn derives but a
  recipe may set (`use_cpu`, `dataloader_pin_memory`, `report_to`, `save_steps`) are honoured.

`evaluation_arguments` gives the arguments a saved model is evaluated with (`hf-rnn eval`).
"""

import dataclasses
import enum
import functools
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import TrainingArguments
from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK, get_available_reporting_integrations

# metric names of a recipe -> their keys in the results (F1, precision and recall are macro averages)
METRIC_KEYS = {"f1": "f1_macro", "precision": "precision_macro", "recall": "recall_macro"}

# hf-rnn's defaults, laid over TrainingArguments' own; all of them are written to recipe.yaml
RNN_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 3.0,
    "max_steps": -1,
    "learning_rate": 1e-3,
    "per_device_train_batch_size": 64,
    "per_device_eval_batch_size": 256,
    "gradient_accumulation_steps": 1,
    "weight_decay": 0.0,
    "warmup_steps": 0.0,
    "lr_scheduler_type": "linear",
    # transformers' own default: one fused kernel for all parameters (about 5% of a training step on workload W)
    "optim": "adamw_torch_fused",
    # gradient clipping by global norm, as the tutorials stress for recurrent networks
    "max_grad_norm": 1.0,
    "label_smoothing_factor": 0.0,
    "seed": 42,
    "bf16": False,
    "eval_strategy": "epoch",
    "eval_steps": None,
    "save_strategy": "epoch",
    "save_steps": None,
    "save_total_limit": 2,
    "logging_steps": 50,
    "metric_for_best_model": "accuracy",
    "dataloader_num_workers": 0,
}


@dataclasses.dataclass
class OwnKeys:
    """The training keys that are hf-rnn's, not `TrainingArguments` fields.

    Args:
        output_dir (`str`, *optional*): the model directory to write (default `./hf_rnn_outputs/<recipe name>`);
            checkpoints go to `<output_dir>.partial/checkpoints` and are dropped once the model is complete.
        early_stopping_patience (`int`, *optional*, defaults to 2): stop after this many evaluations without
            improvement of `metric_for_best_model`; `null` trains all epochs.
        group_by_length (`bool`, *optional*, defaults to `True`): batches of similar lengths (little padding, about
            3x faster on CPU); `false` draws random batches. Sets `TrainingArguments.train_sampling_strategy`.
        flush_denormal (`bool`, *optional*, defaults to `True`): flush denormal floats to zero while training on
            CPU (x86 computes on them 10-100x slower; see `hf_rnn.cpu`).
        adaptive_threads (`bool`, *optional*, defaults to `True`): on CPU, train on the cores other processes leave
            free (see `hf_rnn.cpu.AdaptiveThreads`).
        metrics (`list[str]`, *optional*, defaults to `[accuracy, f1, roc_auc]`): `evaluate` metrics computed at
            every evaluation and on the test split (`f1`, `precision`, `recall` are macro averages).
    """

    output_dir: str | None = None
    early_stopping_patience: int | None = 2
    group_by_length: bool = True
    flush_denormal: bool = True
    adaptive_threads: bool = True
    metrics: list[str] = dataclasses.field(default_factory=lambda: ["accuracy", "f1", "roc_auc"])


OWN_KEYS = {f.name: f for f in dataclasses.fields(OwnKeys)}

_HUB_REASON = "use the recipe's hub section (hub.push_to_hub, hub.repo_id), which pushes the finished model"
# fields hf-rnn sets itself: (value, why); a recipe may repeat the value but not change it
HF_RNN_SETS: dict[str, tuple[Any, str]] = {
    "remove_unused_columns": (False, "the length column feeds the sampler; hf-rnn's collator drops the rest"),
    "length_column_name": ("length", "tokenization writes each text's length to the 'length' column"),
    "train_sampling_strategy": (None, "set group_by_length (true: length-grouped batches, false: random)"),
    "logging_nan_inf_filter": (False, "hf-rnn stops at the first NaN/inf loss, which the filter would hide"),
    "load_best_model_at_end": (None, "the best checkpoint is kept whenever eval_strategy is not 'no'"),
    "logging_strategy": ("steps", "hf-rnn logs every logging_steps steps and at the end of every epoch"),
    "save_only_model": (False, "resuming an interrupted run needs the optimizer and scheduler states"),
    "resume_from_checkpoint": (None, "running the same command again resumes from the last checkpoint"),
    "local_rank": (-1, "the launcher (torchrun, accelerate launch) sets it"),
    "gradient_checkpointing": (False, "hf_rnn models do not support it (supports_gradient_checkpointing=False)"),
    "activation_checkpointing": (False, "hf_rnn models do not support it (supports_gradient_checkpointing=False)"),
    "push_to_hub": (False, _HUB_REASON),
    "hub_model_id": (None, _HUB_REASON),
    "hub_token": (None, _HUB_REASON + "; the token comes from `hf auth login` or HF_TOKEN, never a recipe"),
    "hub_private_repo": (None, _HUB_REASON),
    "hub_strategy": ("every_save", _HUB_REASON),
    "hub_always_push": (False, _HUB_REASON),
    "hub_revision": (None, _HUB_REASON),
}


class TrainingValueError(ValueError):
    """A training value hf-rnn refuses; `field` names the key, so a recipe error can point at its line."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _enum_values(hint: Any) -> list[str] | None:
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return [member.value for member in hint]
    return None


def _field_hint(field: dataclasses.Field, hint: Any) -> Any:
    """The type a recipe value of a `TrainingArguments` field must have, choices made explicit as `Literal`s: the
    values of an enum in the hint (`SchedulerType | str` -> the scheduler names), a field's `choices` metadata, and
    the installed reporting integrations' names for `report_to`."""
    if field.name == "report_to":
        names = Literal[("all", "none", *sorted(INTEGRATION_TO_CALLBACK))]
        return names | list[names] | None
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    optional = type(None) in args
    choices = field.metadata.get("choices")
    for arg in args:
        values = _enum_values(arg)
        if values is not None:
            choices = values
        elif typing.get_origin(arg) is list and _enum_values(typing.get_args(arg)[0]) is not None:
            # `debug: str | list[DebugOption]`: one option, a space-separated string, or a list of options
            member = Literal[tuple(_enum_values(typing.get_args(arg)[0]))]
            return str | list[member] | (None if optional else str)
    if choices is not None:
        choice = Literal[tuple(choices)]
        return choice | None if optional else choice
    return hint


@functools.cache
def _training_field_hints() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainingArguments)
    return {f.name: _field_hint(f, hints[f.name]) for f in dataclasses.fields(TrainingArguments) if f.init}


def training_field_hints() -> dict[str, Any]:
    """Every `TrainingArguments` field with the type a recipe value must have (see `_field_hint`)."""
    return dict(_training_field_hints())


def steps_fields() -> list[str]:
    """The float fields of `TrainingArguments` that count steps when given an int (`logging_steps`, `eval_steps`,
    `warmup_steps`; a float below 1 is a fraction of training)."""
    hints = typing.get_type_hints(TrainingArguments)
    return [
        f.name
        for f in dataclasses.fields(TrainingArguments)
        if f.name.endswith("_steps") and float in (typing.get_args(hints[f.name]) or (hints[f.name],))
    ]


class TrainingSpec:
    """The validated `training` section: the `TrainingArguments` fields the recipe sets (`arguments`) and hf-rnn's
    own keys. Reading any `TrainingArguments` field gives the recipe's value, else hf-rnn's default, else
    transformers' (`spec.learning_rate`, `spec.adam_beta2`)."""

    def __init__(self, arguments: dict[str, Any] | None = None, **own):
        self.arguments = dict(arguments or {})
        self.own = OwnKeys(**own)
        self._check()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("arguments", "own"):
            raise AttributeError(name)
        if name in OWN_KEYS:
            return getattr(self.own, name)
        values = self.values()
        if name in values:
            return values[name]
        for field in dataclasses.fields(TrainingArguments):
            if field.name == name:
                return field.default_factory() if field.default is dataclasses.MISSING else field.default
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    def __eq__(self, other) -> bool:
        return isinstance(other, TrainingSpec) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"TrainingSpec({self.to_dict()})"

    def values(self) -> dict[str, Any]:
        """The `TrainingArguments` fields hf-rnn passes on: its defaults, with the recipe's values over them."""
        return {**RNN_DEFAULTS, **self.arguments}

    def to_dict(self) -> dict[str, Any]:
        """As written to recipe.yaml: hf-rnn's defaults and every key the recipe set, then hf-rnn's own keys."""
        return {
            "output_dir": self.own.output_dir,
            **self.values(),
            **{name: getattr(self.own, name) for name in OWN_KEYS if name != "output_dir"},
        }

    def _check(self) -> None:
        """Cross-field checks of hf-rnn's (TrainingArguments' own run in `check_training_arguments`)."""
        values = self.values()
        for name in ("num_train_epochs", "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size"):
            if values[name] <= 0:
                raise TrainingValueError(name, f"{name} must be positive, got {values[name]}.")
        for name in ("weight_decay", "warmup_steps", "max_grad_norm", "label_smoothing_factor"):
            if values[name] < 0:
                raise TrainingValueError(name, f"{name} must be >= 0, got {values[name]}.")
        if values["label_smoothing_factor"] >= 1:
            raise TrainingValueError(
                "label_smoothing_factor",
                f"label_smoothing_factor must be in [0, 1), got {values['label_smoothing_factor']}.",
            )
        patience, evaluating = self.own.early_stopping_patience, values["eval_strategy"] != "no"
        if patience is not None and patience < 1:
            raise TrainingValueError(
                "early_stopping_patience", f"early_stopping_patience must be >= 1 or null, got {patience}."
            )
        if patience is not None and not evaluating:
            raise TrainingValueError(
                "early_stopping_patience",
                "early_stopping_patience needs evaluation; set eval_strategy to epoch or steps.",
            )
        if values["eval_strategy"] == "steps" and values["eval_steps"] is None:
            raise TrainingValueError("eval_steps", "eval_strategy 'steps' needs eval_steps.")
        if not evaluating and values["save_strategy"] == "steps" and values["save_steps"] is None:
            raise TrainingValueError("save_steps", "save_strategy 'steps' needs save_steps.")
        if evaluating and values["save_strategy"] != values["eval_strategy"]:
            raise TrainingValueError(
                "save_strategy",
                f"save_strategy {values['save_strategy']!r} differs from eval_strategy {values['eval_strategy']!r}; "
                "best-model selection needs a checkpoint at every evaluation, so set them equal.",
            )
        produced = {"loss", *(METRIC_KEYS.get(name, name) for name in self.own.metrics)}
        if evaluating and values["metric_for_best_model"] not in produced:
            raise TrainingValueError(
                "metric_for_best_model",
                f"metric_for_best_model {values['metric_for_best_model']!r} is not computed; with metrics "
                f"{self.own.metrics} it can be one of {', '.join(sorted(produced))}.",
            )
        for name, (value, reason) in HF_RNN_SETS.items():
            if name in self.arguments and self.arguments[name] != value:
                hint = f" (hf-rnn uses {value!r})" if value is not None else ""
                raise TrainingValueError(name, f"{name} is set by hf-rnn{hint}: {reason}; remove it from the recipe.")
        reporters = self.arguments.get("report_to")
        wanted = [reporters] if isinstance(reporters, str) else list(reporters or [])
        missing = [name for name in wanted if name not in ("all", "none", *get_available_reporting_integrations())]
        if missing:
            raise TrainingValueError(
                "report_to",
                f"report_to {missing[0]!r} needs its package, which is not installed (e.g. `pip install "
                f"{'tensorboard' if missing[0] == 'tensorboard' else missing[0].replace('_', '-')}`).",
            )


def cpu_only() -> bool:
    """No accelerator here: `TrainingArguments(use_cpu=...)` must say so for bf16 autocast and for DDP over gloo."""
    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


def build_training_arguments(spec: TrainingSpec, checkpoint_dir: str | Path) -> TrainingArguments:
    """`TrainingArguments` for a training section: its values, plus what hf-rnn derives and sets (see the module)."""
    values = spec.values()
    evaluating = values["eval_strategy"] != "no"
    arguments = {name: value for name, value in values.items() if name not in HF_RNN_SETS}
    arguments.update({name: value for name, (value, _) in HF_RNN_SETS.items() if value is not None})
    arguments.update(
        output_dir=str(checkpoint_dir),
        # best-model selection needs a checkpoint at every evaluation
        save_strategy=values["eval_strategy"] if evaluating else values["save_strategy"],
        save_steps=values["eval_steps"] if evaluating and values["save_steps"] is None else values["save_steps"],
        load_best_model_at_end=evaluating,
        metric_for_best_model=values["metric_for_best_model"] if evaluating else None,
        # length-grouped batches: little padding, which is most of the RNN's speed on CPU
        train_sampling_strategy="group_by_length" if spec.own.group_by_length else "random",
        dataloader_pin_memory=values.get("dataloader_pin_memory", torch.cuda.is_available()),
        # without an accelerator, say so: then `torchrun` / `accelerate launch --multi_gpu` run DDP over gloo on CPU
        use_cpu=values.get("use_cpu", cpu_only()),
        report_to=values.get("report_to", "none"),
    )
    return TrainingArguments(**arguments)


def evaluation_arguments(batch_size: int, bf16: bool) -> TrainingArguments:
    """`TrainingArguments` to evaluate a saved model with (`hf-rnn eval`): no logging, no files, bf16 on request.

    Args:
        batch_size (`int`): sequences per forward pass.
        bf16 (`bool`): run the model under bf16 autocast.
    """
    return TrainingArguments(
        # the Trainer writes nothing here when it only evaluates; the model directory may be read-only
        output_dir=tempfile.gettempdir(),
        report_to="none",
        per_device_eval_batch_size=batch_size,
        dataloader_pin_memory=torch.cuda.is_available(),
        bf16=bf16,
        use_cpu=cpu_only(),
    )
