"""Training and evaluation: a validated recipe in, a saved and evaluated model directory out (prediction:
`hf_rnn/inference.py`, re-exported here as `predict`).

`train(recipe)` builds the tokenizer, the datasets, the model and a `transformers.Trainer` with length-grouped
batches (about 3x faster than random batches on CPU: less padding), gradient clipping, early stopping and best-model
selection, then writes the model directory:

    config.json, model.safetensors, configuration_rnn.py, modeling_rnn.py   the model (and its remote code)
    tokenizer.json, tokenizer_config.json                                   the tokenizer
    metrics.json            test-set metrics            history.json        the Trainer's log history
    training_curves.png     loss / accuracy per epoch   recipe.yaml         the resolved recipe
    training_summary.json   sizes, runtime, versions    README.md           the model card

Work happens in `<output_dir>.partial/` (checkpoints included) and is renamed to `<output_dir>` at the end, so an
interrupted run never leaves a half-written model, and running the same command again resumes from the last
checkpoint. The same code runs under `accelerate launch` for data-parallel training (see scripts/train.py).
"""

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import evaluate
import numpy as np
import torch
import transformers
from datasets import DatasetDict, Value
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError, safe_open
from transformers import (
    AutoConfig,
    AutoTokenizer,
    EarlyStoppingCallback,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_pt_utils import LengthGroupedSampler

from . import CAUSAL_LM_CLASSES, MODEL_CLASSES, __version__
from .cards import write_model_card
from .configuration_rnn import RecurrentConfig
from .cpu import AdaptiveThreads, flushed_denormals
from .data import DataSpec, PaddingCollator, load_splits, sort_by_length
from .frontends import (
    add_frontend_features,
    load_encoder_weights,
    load_pretrained_frontend,
    load_word_vectors,
    resolve_frontend,
)
from .hub import push_model
from .inference import predict  # noqa: F401  (moved to inference.py; `from hf_rnn.training import predict` works)
from .modeling_rnn import build_frontend
from .recipes import METRIC_KEYS, Recipe, RecipeError, load_data_spec, strict_error_message
from .tokenization import build_tokenizer, tokenize_dataset
from .utils import one_line

logger = logging.getLogger(__name__)

METRICS_DIR = Path(__file__).parent / "metrics"
# extra arguments of the metrics whose defaults do not fit multi-class classification
_METRIC_ARGUMENTS = {"f1": {"average": "macro"}, "precision": {"average": "macro"}, "recall": {"average": "macro"}}


def default_output_dir(recipe: Recipe) -> Path:
    """Where `hf-rnn train` writes when the recipe does not say: `./hf_rnn_outputs/<recipe name>`."""
    return Path(recipe.training.output_dir or Path("hf_rnn_outputs") / recipe.name)


def load_metric(name: str) -> evaluate.EvaluationModule:
    """An `evaluate` metric: hf_rnn's offline copy for accuracy, f1 and roc_auc, else any Hub metric by name."""
    local = METRICS_DIR / name
    return evaluate.load(str(local) if local.is_dir() else name)


class MetricsComputer:
    """`compute_metrics` for the Trainer: the recipe's metrics on argmax predictions (and class-1 scores for
    ROC-AUC, on binary tasks only)."""

    def __init__(self, names: list[str], num_labels: int):
        # ROC-AUC of one class's score is defined for binary tasks only
        self.names = [n for n in names if n != "roc_auc" or num_labels == 2]
        self.metrics = {name: load_metric(name) for name in self.names}

    def __call__(self, eval_prediction) -> dict[str, float]:
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        predictions = logits.argmax(-1)
        results = {}
        for name, metric in self.metrics.items():
            if name == "roc_auc":
                if len(np.unique(labels)) < 2:
                    continue
                scores = torch.softmax(torch.from_numpy(logits).float(), -1)[:, 1].numpy()
                value = metric.compute(prediction_scores=scores, references=labels)
            else:
                value = metric.compute(predictions=predictions, references=labels, **_METRIC_ARGUMENTS.get(name, {}))
            for key, number in value.items():
                results[METRIC_KEYS.get(key, key)] = float(number)
        return results


class RecurrentTrainer(Trainer):
    """A Trainer for recurrent models on any device, fast on CPU.

    - Denormal floats are flushed to zero in every thread while it trains, evaluates and predicts (the previous
      setting comes back afterwards): recurrent backward passes produce them, and x86 CPUs compute on them 10-100x
      slower (see `hf_rnn.cpu`).
    - On CPU, the thread count follows the cores that other processes leave free (`hf_rnn.cpu.AdaptiveThreads`).
    - Training accuracy is tracked from the logits it already computes (as Keras' `fit` shows `accuracy` next to
      `loss`) and logged as `train_accuracy` with each training log.

    Args:
        flush_denormal (`bool`, *optional*, defaults to `True`): flush denormals to zero; `False` computes
            with denormals while it runs, whatever the process's setting (recipes: `training.flush_denormal`).
        adaptive_threads (`bool`, *optional*, defaults to `True`): adapt the thread count to the machine's load
            (recipes: `training.adaptive_threads`).
        The other arguments are `transformers.Trainer`'s.
    """

    def __init__(self, *args, flush_denormal: bool = True, adaptive_threads: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.flush_denormal = flush_denormal
        if adaptive_threads:
            self.add_callback(AdaptiveThreads())
        self._correct = 0
        self._seen = 0

    def train(self, *args, **kwargs):
        with flushed_denormals(self.flush_denormal):
            return super().train(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        with flushed_denormals(self.flush_denormal):
            return super().evaluate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        with flushed_denormals(self.flush_denormal):
            return super().predict(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # read before the Trainer pops them (it does with label smoothing)
        labels = inputs.get("labels")
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if labels is not None and model.training and labels.dtype == torch.long:
            predictions = outputs.logits.detach().argmax(-1)
            keep = labels != -100
            self._correct += int((predictions[keep] == labels[keep]).sum())
            self._seen += int(keep.sum())
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        if isinstance(sampler, LengthGroupedSampler) and not isinstance(sampler.lengths, list):
            # datasets 5 hands the sampler its lazy `Column`; sorting by it reads the Arrow table once per index
            # (about 140 ms an epoch for 1,536 rows, 4% of a BiLSTM epoch); a list gives the same order at once
            sampler.lengths = list(sampler.lengths)
        return sampler

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs and self._seen:
            logs["train_accuracy"] = self._correct / self._seen
            self._correct = self._seen = 0
        super().log(logs, *args, **kwargs)


class EpochEndLogging(TrainerCallback):
    """Logs the training loss at the end of every epoch too, so the curves have one training point per epoch."""

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_log = True
        return control


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class StopOnNonFiniteLoss(TrainerCallback):
    """Stops training at the first logged NaN/inf loss, naming the step; the last good checkpoint is kept."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss became {loss} at step {state.global_step} (epoch {state.epoch:.2f}); lower "
                "training.learning_rate or training.max_grad_norm. Checkpoints before this step are kept."
            )


def _cpu_only() -> bool:
    """No accelerator here: `TrainingArguments(use_cpu=...)` must say so for bf16 autocast and for DDP over gloo."""
    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


def training_arguments(recipe: Recipe, checkpoint_dir: Path) -> TrainingArguments:
    """Maps the recipe's `training` section onto `TrainingArguments`."""
    spec = recipe.training
    evaluate_during_training = spec.eval_strategy != "no"
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=spec.num_train_epochs,
        max_steps=spec.max_steps,
        learning_rate=spec.learning_rate,
        per_device_train_batch_size=spec.per_device_train_batch_size,
        per_device_eval_batch_size=spec.per_device_eval_batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
        weight_decay=spec.weight_decay,
        warmup_steps=spec.warmup_steps,
        lr_scheduler_type=spec.lr_scheduler_type,
        optim=spec.optim,
        max_grad_norm=spec.max_grad_norm,
        label_smoothing_factor=spec.label_smoothing_factor,
        seed=spec.seed,
        bf16=spec.bf16,
        eval_strategy=spec.eval_strategy,
        eval_steps=spec.eval_steps,
        # best-model selection needs a checkpoint at every evaluation
        save_strategy=spec.eval_strategy if evaluate_during_training else spec.save_strategy,
        save_steps=spec.eval_steps if evaluate_during_training else spec.save_steps,
        save_total_limit=spec.save_total_limit,
        load_best_model_at_end=evaluate_during_training,
        metric_for_best_model=spec.metric_for_best_model if evaluate_during_training else None,
        logging_strategy="steps",
        logging_steps=spec.logging_steps,
        # report a NaN/inf loss as it is (the default averages it away), so training stops on it
        logging_nan_inf_filter=False,
        # length-grouped batches: little padding, which is most of the RNN's speed on CPU
        train_sampling_strategy="group_by_length" if spec.group_by_length else "random",
        length_column_name="length",
        # keep the `length` column for the sampler; the collator drops what the model does not take
        remove_unused_columns=False,
        dataloader_num_workers=spec.dataloader_num_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        # without an accelerator, say so: then `torchrun` / `accelerate launch --multi_gpu` run DDP over gloo on CPU
        use_cpu=_cpu_only(),
        report_to="none",
        save_only_model=False,
    )


def prepare_tokenizer(recipe: Recipe, texts: Iterable[str], work_dir: Path, args: TrainingArguments):
    """The run's tokenizer: trained once by the main process and saved in the work dir, then loaded by every other
    process and by a resumed run, so token ids never change within a run. A pretrained encoder frontend brings its
    own tokenizer (truncating to the recipe's `tokenizer.max_length`)."""
    # local=False: on several machines sharing a file system, only the global main process writes
    with args.main_process_first(desc="tokenizer", local=False):
        if (work_dir / "tokenizer.json").exists():
            return AutoTokenizer.from_pretrained(work_dir)
        spec = recipe.tokenizer
        if recipe.model.frontend_pretrained is not None and spec.pretrained is None:
            spec = replace(spec, pretrained=resolve_frontend(recipe.model.frontend_pretrained))
        tokenizer = build_tokenizer(spec, texts, language_model=recipe.model.task == "causal_lm")
        if args.process_index == 0:
            _save_tokenizer_atomically(tokenizer, work_dir)
        return tokenizer


def _save_tokenizer_atomically(tokenizer: PreTrainedTokenizerBase, work_dir: Path) -> None:
    """Saves into a temporary folder, then moves the files in with tokenizer.json last: its presence (what a resumed
    run checks) means the tokenizer is complete."""
    staging = work_dir / ".tokenizer-staging"
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer.save_pretrained(staging)
    for path in sorted(staging.iterdir(), key=lambda p: p.name == "tokenizer.json"):
        os.replace(path, work_dir / path.name)
    staging.rmdir()


def prepare_datasets(
    recipe: Recipe, work_dir: Path, args: TrainingArguments
) -> tuple[DatasetDict, list[str], PreTrainedTokenizerBase]:
    """Loads the splits, the tokenizer and the tokenized splits (with a `length` column for length grouping)."""
    with args.main_process_first(desc="data", local=False):
        splits, label_names = load_splits(recipe.data)
    tokenizer = prepare_tokenizer(recipe, splits["train"]["text"], work_dir, args)
    with args.main_process_first(desc="tokenization"):
        tokenized = tokenize_dataset(splits, tokenizer)
    spec = recipe.model
    if spec.frontend_pretrained is not None:
        config = model_config(recipe, tokenizer, label_names)
        if spec.caches_frontend(config):
            # a frozen encoder gives the same outputs every epoch: computed once (and cached on disk) here, so the
            # Trainer runs only the recurrent layers; the first process writes the cache, the others read it
            with args.main_process_first(desc="frontend features"):
                encoder = load_encoder_weights(build_frontend(config), spec.frontend_pretrained).to(args.device)
                tokenized = add_frontend_features(tokenized, encoder, config.frontend_output, bf16=spec.frontend_bf16)
    return tokenized, label_names, tokenizer


def model_config(recipe: Recipe, tokenizer: PreTrainedTokenizerBase, label_names: list[str]) -> RecurrentConfig:
    """The recipe's model config, sized to the tokenizer and labelled with the data's labels."""
    config = recipe.model.build_config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(label_names)),
    )
    encoder = config.frontend_config
    if encoder is not None and recipe.model.frontend_pretrained is None:
        # a randomly initialised encoder reads the ids of the recipe's own tokenizer
        encoder.vocab_size = len(tokenizer)
        encoder.pad_token_id = tokenizer.pad_token_id
    elif encoder is not None and len(tokenizer) > encoder.vocab_size:
        raise RecipeError(
            f"tokenizer.pretrained: the tokenizer has {len(tokenizer):,} tokens but the encoder "
            f"{recipe.model.frontend_pretrained!r} only {encoder.vocab_size:,}; drop tokenizer.pretrained to use the "
            "encoder's own tokenizer."
        )
    return config


def build_model(recipe: Recipe, tokenizer: PreTrainedTokenizerBase, label_names: list[str]):
    """The model for the recipe: sized to the tokenizer, labelled with the data's labels, with pretrained encoder
    weights or word vectors loaded (and frozen) as the recipe says."""
    if recipe.model.task != "sequence_classification":
        raise RecipeError(
            f"model.task {recipe.model.task!r}: recipes train sequence classifiers only; build a "
            "*ForTokenClassification model in Python and train it with your own Trainer."
        )
    spec = recipe.model
    model = MODEL_CLASSES[spec.model_type][2](model_config(recipe, tokenizer, label_names))
    if spec.frontend_pretrained is not None:
        load_pretrained_frontend(model, spec.frontend_pretrained)
    if spec.embedding_init is not None:
        coverage = load_word_vectors(spec.embedding_init, tokenizer, model.get_input_embeddings())
        if coverage.fraction < 0.5:
            logger.warning(
                "Word vectors: only %s; check that the tokenizer splits and cases words as the vectors do.", coverage
            )
    if spec.freeze_embeddings:
        model.get_input_embeddings().requires_grad_(False)
    return model


def save_training_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, training vs validation, like the tutorials' `history` plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if "loss" in h and "epoch" in h]
    valid = [h for h in history if "eval_loss" in h]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, train_key, valid_key, title in (
        (loss_axis, "loss", "eval_loss", "Loss"),
        (accuracy_axis, "train_accuracy", "eval_accuracy", "Accuracy"),
    ):
        points = [(h["epoch"], h[train_key]) for h in train if train_key in h]
        if points:
            axis.plot(*zip(*points), label="training", marker=".")
        points = [(h["epoch"], h[valid_key]) for h in valid if valid_key in h]
        if points:
            axis.plot(*zip(*points), label="validation", marker="o")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict[str, float]


def train(
    recipe: Recipe,
    output_dir: str | Path | None = None,
    overwrite: bool = False,
    callbacks: list[TrainerCallback] | None = None,
) -> TrainResult:
    """Trains, evaluates and saves the model a recipe describes.

    Args:
        recipe ([`Recipe`]): a validated recipe (see [`load_recipe`]).
        output_dir (`str` or `Path`, *optional*): the model directory to write; defaults to the recipe's
            `training.output_dir` or `./hf_rnn_outputs/<recipe name>`.
        overwrite (`bool`, *optional*, defaults to `False`): replace an existing model directory (only once the new
            one is complete). Without it an existing model directory is an error, so no trained model is lost.
        callbacks (`list[TrainerCallback]`, *optional*): extra Trainer callbacks.

    Returns:
        [`TrainResult`]: the model directory and its test metrics.
    """
    output_dir = Path(output_dir) if output_dir is not None else default_output_dir(recipe)
    _check_output_dir(output_dir, overwrite)
    work_dir = output_dir.with_name(output_dir.name + ".partial")
    checkpoint_dir = work_dir / "checkpoints"
    args = training_arguments(recipe, checkpoint_dir)
    if args.process_index == 0:
        _prepare_work_dir(work_dir, recipe, overwrite)

    causal_lm = recipe.model.task == "causal_lm"
    if causal_lm:
        # language models bring their own data, model, Trainer and metrics (hf_rnn/language_modeling.py)
        from . import language_modeling as lm

        # the loss is the metric: the Trainer need not keep every position's logits over the vocabulary
        args.prediction_loss_only = True
        datasets, tokenizer = lm.prepare_causal_lm_datasets(recipe, work_dir, args)
        label_names = []
    else:
        datasets, label_names, tokenizer = prepare_datasets(recipe, work_dir, args)
    transformers.set_seed(recipe.training.seed)
    model = lm.build_causal_lm(recipe, tokenizer) if causal_lm else build_model(recipe, tokenizer, label_names)
    trainer_callbacks = [EpochEndLogging(), StopOnNonFiniteLoss(), *(callbacks or [])]
    if recipe.training.early_stopping_patience is not None:
        trainer_callbacks.append(EarlyStoppingCallback(recipe.training.early_stopping_patience))
    trainer = (lm.causal_lm_trainer_class(RecurrentTrainer) if causal_lm else RecurrentTrainer)(
        model=model,
        args=args,
        train_dataset=datasets["train"],
        eval_dataset=datasets["validation"] if recipe.training.eval_strategy != "no" else None,
        processing_class=tokenizer,
        data_collator=(lm.CausalLMCollator if causal_lm else PaddingCollator)(pad_token_id=tokenizer.pad_token_id),
        compute_metrics=None if causal_lm else MetricsComputer(recipe.training.metrics, len(label_names)),
        callbacks=trainer_callbacks,
        flush_denormal=recipe.training.flush_denormal,
        adaptive_threads=recipe.training.adaptive_threads,
    )
    last_checkpoint = last_complete_checkpoint(checkpoint_dir) if args.process_index == 0 else None
    last_checkpoint = broadcast_object(last_checkpoint, args)
    started = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=last_checkpoint)
    runtime = time.perf_counter() - started
    # early stopping watches validation metrics only
    trainer.remove_callback(EarlyStoppingCallback)
    test_metrics = trainer.evaluate(datasets["test"], metric_key_prefix="test")
    metrics = _metrics_only(test_metrics, "test")
    if causal_lm:
        metrics = lm.language_model_metrics(metrics, recipe)

    if trainer.is_world_process_zero():
        trainer.save_model(str(work_dir))
        # the Trainer pickles its arguments; the model directory holds no pickles (recipe.yaml has the settings)
        (work_dir / "training_args.bin").unlink(missing_ok=True)
        history = trainer.state.log_history
        _write_json(work_dir / "metrics.json", metrics)
        _write_json(work_dir / "history.json", history)
        _write_json(
            work_dir / "training_summary.json",
            {
                "train_samples": len(datasets["train"]),
                "validation_samples": len(datasets["validation"]),
                "test_samples": len(datasets["test"]),
                "label_names": label_names,
                "epochs_completed": trainer.state.epoch,
                "global_steps": train_output.global_step,
                "world_size": args.world_size,
                "train_runtime_s": round(runtime, 2),
                "resumed_from_checkpoint": Path(last_checkpoint).name if last_checkpoint else None,
                "total_params": sum(p.numel() for p in model.parameters()),
                "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "versions": {
                    "hf_rnn": __version__,
                    "transformers": transformers.__version__,
                    "torch": torch.__version__,
                },
            },
        )
        (work_dir / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
        save_training_curves(history, work_dir / "training_curves.png")
        write_model_card(work_dir)
        _finalize(work_dir, output_dir)
        if recipe.hub.push_to_hub:
            hub = recipe.hub
            push_model(output_dir, hub.repo_id, private=hub.private, revision=hub.revision)
    trainer.accelerator.wait_for_everyone()
    return TrainResult(output_dir=output_dir, metrics=metrics)


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    """Refuses to replace anything but an hf_rnn model directory, and that only with `overwrite`."""
    if not output_dir.is_dir() or not any(output_dir.iterdir()):
        return
    if not (output_dir / "config.json").is_file():
        raise FileExistsError(
            f"{output_dir} exists and is not a model directory; choose another --output-dir (nothing was touched)."
        )
    if not overwrite:
        raise FileExistsError(
            f"{output_dir} already holds a trained model; pass --overwrite (overwrite=True) or another --output-dir."
        )


def _prepare_work_dir(work_dir: Path, recipe: Recipe, overwrite: bool) -> None:
    """Creates the work dir stamped with the recipe; an interrupted run resumes only with the same recipe."""
    stamp = work_dir / "recipe.yaml"
    if overwrite:
        shutil.rmtree(work_dir, ignore_errors=True)
    if stamp.is_file() and stamp.read_text(encoding="utf-8") != recipe.to_yaml():
        raise FileExistsError(
            f"{work_dir} holds an interrupted run of a different recipe; run that recipe again to resume it, or "
            "pass --overwrite to start over."
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    staging = stamp.with_suffix(".tmp")
    staging.write_text(recipe.to_yaml(), encoding="utf-8")
    os.replace(staging, stamp)


# what a checkpoint holds once the Trainer has finished writing it
_CHECKPOINT_FILES = ("model.safetensors", "trainer_state.json", "optimizer.pt", "scheduler.pt")


def last_complete_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest checkpoint that was completely written; one cut short by a kill is removed, not resumed from."""
    if not checkpoint_dir.is_dir():
        return None
    candidates = [p for p in checkpoint_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    for checkpoint in sorted(candidates, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        if all((checkpoint / name).is_file() for name in _CHECKPOINT_FILES):
            return str(checkpoint)
        shutil.rmtree(checkpoint)
    return None


def broadcast_object(value, args: TrainingArguments):
    """The main process's value on every process (resume decisions must agree across DDP ranks)."""
    if args.world_size == 1:
        return value
    holder = [value]
    torch.distributed.broadcast_object_list(holder, src=0)
    return holder[0]


def _metrics_only(results: dict[str, float], prefix: str) -> dict[str, float]:
    """The metrics of a `Trainer.evaluate` result, without the prefix and the timing entries."""
    timing = ("_runtime", "_samples_per_second", "_steps_per_second")
    return {
        key.removeprefix(f"{prefix}_"): value
        for key, value in results.items()
        if key.startswith(f"{prefix}_") and not key.endswith(timing)
    }


def _finalize(work_dir: Path, output_dir: Path) -> None:
    """Drops the checkpoints and renames the finished work dir into place; a replaced model is deleted last."""
    shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)
    previous = None
    if output_dir.exists():
        previous = output_dir.with_name(output_dir.name + f".old-{os.getpid()}")
        output_dir.rename(previous)
    work_dir.rename(output_dir)
    if previous is not None:
        shutil.rmtree(previous)


# --- using a trained model ------------------------------------------------------------------------------------


def load_model_dir(model_dir: str | Path, allow_pickle: bool = False):
    """Loads the model and tokenizer of an hf_rnn model directory, with a one-line error naming what is wrong.

    Weights load from safetensors only: a pickled `pytorch_model.bin` can run code when unpickled, so it is refused
    unless `allow_pickle=True`, and even then it is read with `torch.load(weights_only=True)`.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir} is not a model directory: no such folder.")
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a model directory: it has no config.json.")
    try:
        json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{model_dir}/config.json is not valid JSON ({error}); restore it from the Hub or a backup.")
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except StrictDataclassError as error:
        cause = strict_error_message(error)
        raise ValueError(f"{model_dir}/config.json holds an invalid value: {cause}") from None
    if config.model_type not in MODEL_CLASSES:
        raise ValueError(f"{model_dir} holds a {config.model_type!r} model, not an hf_rnn one.")
    has_safetensors = any(model_dir.glob("*.safetensors"))
    pickles = sorted(p.name for p in model_dir.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
    if not has_safetensors:
        if not pickles:
            raise FileNotFoundError(f"{model_dir} has no weights (model.safetensors is missing).")
        if not allow_pickle:
            raise ValueError(
                f"{model_dir} holds only pickled weights ({', '.join(pickles)}), which can run code when loaded; "
                "convert them to safetensors, or pass --allow-pickle (allow_pickle=True) if you trust the source."
            )
    if has_safetensors:
        _check_weight_shapes(model_dir, config)
    try:
        model = _model_class(config).from_pretrained(model_dir, config=config, use_safetensors=has_safetensors)
    except (OSError, RuntimeError, SafetensorError) as error:
        # truncated or corrupt files, and weights whose shapes do not match the config
        raise ValueError(f"{model_dir}: the weights do not load: {one_line(error, first_only=True)}") from None
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return model.eval(), tokenizer


def _model_class(config) -> type:
    """The class a model directory holds: its language model when config.json says so, else the classifier."""
    if any(name.endswith("ForCausalLM") for name in config.architectures or []):
        return CAUSAL_LM_CLASSES[config.model_type]
    return MODEL_CLASSES[config.model_type][2]


def _check_weight_shapes(model_dir: Path, config) -> None:
    """Names the first tensor whose saved shape differs from what config.json describes."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in _model_class(config)(config).state_dict().items()}
    for path in sorted(model_dir.glob("*.safetensors")):
        try:
            with safe_open(path, framework="pt") as weights:
                saved = {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}
        except SafetensorError as error:
            raise ValueError(f"{path} is not a readable safetensors file ({error}); re-download or re-save it.")
        for key, shape in saved.items():
            if key in expected and expected[key] != shape:
                raise ValueError(
                    f"{path.name}: {key} has shape {list(shape)} but config.json describes {list(expected[key])}; "
                    "the config and the weights do not belong together."
                )


def _refuse_language_model(model, model_dir: str | Path, command: str) -> None:
    if type(model) in CAUSAL_LM_CLASSES.values():
        raise ValueError(
            f"{model_dir} holds a language model; {command} works with classifiers. Use `hf-rnn generate` (its test "
            "perplexity is in metrics.json)."
        )


def evaluate_model(
    model_dir: str | Path,
    data: DataSpec | None = None,
    split: str = "test",
    allow_pickle: bool = False,
    bf16: bool = False,
) -> dict[str, float]:
    """Evaluates a saved model on a split of its recipe's data, or of `data`.

    Labels are matched by name: a label the model does not know is an error that lists the model's labels. With
    `bf16`, the model runs under bf16 autocast (see `predict`).
    """
    model, tokenizer = load_model_dir(model_dir, allow_pickle=allow_pickle)
    _refuse_language_model(model, model_dir, "hf-rnn eval")
    if data is None:
        recipe_path = Path(model_dir) / "recipe.yaml"
        if not recipe_path.is_file():
            raise FileNotFoundError(f"{model_dir} has no recipe.yaml; say which data to evaluate on with --data.")
        data = load_data_spec(recipe_path)
    splits, label_names = load_splits(data)
    known = model.config.label2id
    unknown = sorted(set(label_names) - set(known))
    if unknown:
        raise ValueError(f"labels {unknown} are not known to the model; it predicts {sorted(known)}.")
    # the data's label ids follow its own label order (maybe a subset of the model's); map them onto the model's
    remap = [known[name] for name in label_names]
    dataset = splits[split].cast_column("label", Value("int64")).map(lambda row: {"label": remap[row["label"]]})
    # length-sorted batches carry the least padding
    tokenized = sort_by_length(tokenize_dataset(dataset, tokenizer))
    args = TrainingArguments(
        output_dir=str(Path(model_dir) / ".eval"),
        report_to="none",
        per_device_eval_batch_size=256,
        dataloader_pin_memory=torch.cuda.is_available(),
        bf16=bf16,
        use_cpu=_cpu_only(),
    )
    trainer = RecurrentTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        data_collator=PaddingCollator(pad_token_id=tokenizer.pad_token_id),
        compute_metrics=MetricsComputer(["accuracy", "f1", "roc_auc"], model.config.num_labels),
    )
    return _metrics_only(trainer.evaluate(tokenized, metric_key_prefix=split), split)
