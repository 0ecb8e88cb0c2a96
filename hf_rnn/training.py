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
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import transformers
from datasets import DatasetDict, Value
from transformers import (
    AutoTokenizer,
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainerCallback,
    TrainingArguments,
)

from . import CAUSAL_LM_CLASSES, __version__
from .cards import write_model_card
from .configuration_rnn import RecurrentConfig
from .data import DataSpec, PaddingCollator, load_splits, sort_by_length
from .data_checks import check_training_labels
from .frontends import (
    add_frontend_features,
    load_pretrained_frontend,
    load_word_vectors,
    resolve_frontend,
)
from .hub import push_model
from .inference import predict  # noqa: F401  (moved to inference.py; `from hf_rnn.training import predict` works)
from .model_dir import is_language_model, load_model_dir, read_config, read_data_spec
from .recipes import Recipe, RecipeError, check_task
from .registry import head_class
from .tokenization import build_tokenizer, tokenize_dataset
from .trainer import (  # noqa: F401 (NonFiniteLossError, load_metric: re-exported from their old home)
    EpochEndLogging,
    MetricsComputer,
    NonFiniteLossError,
    RecurrentTrainer,
    StopOnNonFiniteLoss,
    load_metric,
)
from .training_spec import build_training_arguments, evaluation_arguments

logger = logging.getLogger(__name__)

# load_model_dir lives in model_dir.py; imported above, it stays importable as `hf_rnn.training.load_model_dir`


def default_output_dir(recipe: Recipe) -> Path:
    """Where `hf-rnn train` writes when the recipe does not say: `./hf_rnn_outputs/<recipe name>`."""
    return Path(recipe.training.output_dir or Path("hf_rnn_outputs") / recipe.name)


def training_arguments(recipe: Recipe, checkpoint_dir: Path) -> TrainingArguments:
    """The recipe's `training` section as `TrainingArguments` (see `hf_rnn.training_spec`)."""
    args = build_training_arguments(recipe.training, checkpoint_dir)
    if args.fp16 and args.use_cpu:
        # accelerate runs fp16 as plain fp32 on a CPU; say so rather than let the setting look honoured
        logger.warning("training.fp16 has no effect on a CPU (it trains in fp32); use training.bf16 there.")
    return args


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
        check_training_labels(splits, label_names, repr(recipe.data.dataset))
    tokenizer = prepare_tokenizer(recipe, splits["train"]["text"], work_dir, args)
    with args.main_process_first(desc="tokenization"):
        tokenized = tokenize_dataset(splits, tokenizer)
    return tokenized, label_names, tokenizer


def with_frontend_features(
    recipe: Recipe, model: PreTrainedModel, datasets: DatasetDict, args: TrainingArguments
) -> DatasetDict:
    """The tokenized splits with the `inputs_embeds` of the model's frozen pretrained encoder added, when the recipe
    caches them (see `ModelSpec.caches_frontend`); unchanged otherwise.

    A frozen encoder gives the same outputs every epoch: they are computed once, by the model's own encoder (its
    weights already loaded by [`build_model`]), and cached on disk, so the Trainer runs only the recurrent layers.
    The first process writes the cache, the others read it.
    """
    spec = recipe.model
    if not spec.caches_frontend(model.config):
        return datasets
    with args.main_process_first(desc="frontend features"):
        encoder = model.base_model.frontend.to(args.device)
        return add_frontend_features(datasets, encoder, model.config.frontend_output, bf16=spec.frontend_bf16)


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
    spec = recipe.model
    check_task(spec)
    model = head_class(spec.model_type, spec.task)(model_config(recipe, tokenizer, label_names))
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
    output_dir = Path(os.path.normpath(output_dir)) if output_dir is not None else default_output_dir(recipe)
    _check_output_dir(output_dir, overwrite)
    work_dir = output_dir.with_name(output_dir.name + ".partial")
    try:
        return _train(recipe, output_dir, work_dir, overwrite, callbacks)
    except BaseException:
        # a run that failed before its first checkpoint has nothing to resume: leave no folder that blocks the next
        if os.environ.get("RANK", "0") == "0" and last_complete_checkpoint(work_dir / "checkpoints") is None:
            shutil.rmtree(work_dir, ignore_errors=True)
        raise


def _train(
    recipe: Recipe, output_dir: Path, work_dir: Path, overwrite: bool, callbacks: list[TrainerCallback] | None
) -> TrainResult:
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
    if causal_lm:
        model = lm.build_causal_lm(recipe, tokenizer)
    else:
        model = build_model(recipe, tokenizer, label_names)
        datasets = with_frontend_features(recipe, model, datasets, args)
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
    if last_checkpoint is not None and args.process_index == 0:
        logger.warning(
            "resuming from %s of %s (an interrupted run of this recipe); pass --overwrite to start over.",
            Path(last_checkpoint).name,
            work_dir,
        )
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
    """Refuses to replace anything but an hf_rnn model directory, and that only with `overwrite`; refuses folders
    that hold the current one, and paths through files."""
    here = Path.cwd().resolve()
    if output_dir.resolve() in (here, *here.parents):
        raise ValueError(
            f"--output-dir {output_dir} is the current folder or holds it; the model directory is written and "
            "replaced as a whole, so name a new folder, e.g. --output-dir model."
        )
    for path in (output_dir, output_dir.with_name(output_dir.name + ".partial"), *output_dir.parents):
        if path.exists() and not path.is_dir():
            raise FileExistsError(
                f"{path} is a file, so --output-dir {output_dir} cannot be a folder there; choose another "
                "--output-dir (nothing was touched)."
            )
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
        if last_complete_checkpoint(work_dir / "checkpoints") is None:
            # killed before its first checkpoint: nothing to resume, so it does not block this recipe
            shutil.rmtree(work_dir)
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
    timing = ("_runtime", "_samples_per_second", "_steps_per_second", "_model_preparation_time")
    return {
        key.removeprefix(f"{prefix}_"): value
        for key, value in results.items()
        if key.startswith(f"{prefix}_") and not key.endswith(timing)
    }


def _finalize(work_dir: Path, output_dir: Path) -> None:
    """Drops the checkpoints and renames the finished work dir into place; a replaced model is deleted last.
    Logs that `report_to: tensorboard` wrote beside the checkpoints (`runs/`) move into the model directory."""
    if (work_dir / "checkpoints" / "runs").is_dir():
        shutil.rmtree(work_dir / "runs", ignore_errors=True)
        os.replace(work_dir / "checkpoints" / "runs", work_dir / "runs")
    shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)
    # every file as a new file of this user is (0644 with the usual umask): some writers create theirs 0600
    umask = os.umask(0)
    os.umask(umask)
    for path in work_dir.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~umask)
    previous = None
    if output_dir.exists():
        previous = output_dir.with_name(output_dir.name + f".old-{os.getpid()}")
        output_dir.rename(previous)
    work_dir.rename(output_dir)
    if previous is not None:
        shutil.rmtree(previous)


# --- using a trained model ------------------------------------------------------------------------------------


def _refuse_language_model(model, model_dir: str | Path, command: str) -> None:
    if type(model) in CAUSAL_LM_CLASSES.values():
        raise ValueError(
            f"{model_dir} holds a language model; {command} works with classifiers. Use `hf-rnn generate` to "
            "continue texts, `hf-rnn eval` to score it."
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
    `bf16`, the model runs under bf16 autocast (see `predict`). A language model is scored by
    `hf_rnn.language_modeling.evaluate_language_model` (loss, perplexity, bits per token).
    """
    if is_language_model(read_config(model_dir)):
        from .language_modeling import evaluate_language_model

        return evaluate_language_model(model_dir, data=data, split=split, allow_pickle=allow_pickle, bf16=bf16)
    model, tokenizer = load_model_dir(model_dir, allow_pickle=allow_pickle)
    if data is None:
        data = read_data_spec(model_dir)
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
    args = evaluation_arguments(batch_size=256, bf16=bf16)
    trainer = RecurrentTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        data_collator=PaddingCollator(pad_token_id=tokenizer.pad_token_id),
        compute_metrics=MetricsComputer(["accuracy", "f1", "roc_auc"], model.config.num_labels),
    )
    return _metrics_only(trainer.evaluate(tokenized, metric_key_prefix=split), split)
