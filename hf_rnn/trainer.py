"""hf_rnn's Trainer and its callbacks: `RecurrentTrainer` (denormals flushed, adaptive threads, training accuracy), the
`compute_metrics` of the recipes' metrics, per-epoch logging, and a stop on a NaN/inf loss. `hf_rnn.training` runs
them for a recipe; your own Trainer scripts can use them directly.
"""

import json
import logging
import math
from pathlib import Path

import evaluate
import numpy as np
import torch
from transformers import (
    Trainer,
    TrainerCallback,
)
from transformers.trainer_pt_utils import LengthGroupedSampler

from .cpu import AdaptiveThreads, flushed_denormals, keep_freed_memory
from .recipes import METRICS_DIR
from .training_spec import METRIC_KEYS

logger = logging.getLogger(__name__)

# extra arguments of the metrics whose defaults do not fit multi-class classification
_METRIC_ARGUMENTS = {"f1": {"average": "macro"}, "precision": {"average": "macro"}, "recall": {"average": "macro"}}


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
    - On CPU, memory freed between steps stays in the process for the next step (`hf_rnn.cpu.keep_freed_memory`,
      process-wide): its pages are not faulted in again at every step.
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

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        # the step a resumed run starts from: `log` needs it for the whole run's train_loss
        state = Path(resume_from_checkpoint) / "trainer_state.json" if resume_from_checkpoint else None
        self._resumed_step = json.loads(state.read_text())["global_step"] if state is not None else 0
        if self.args.device.type == "cpu":
            keep_freed_memory()
        with flushed_denormals(self.flush_denormal):
            return super().train(resume_from_checkpoint, *args, **kwargs)

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
        if "train_loss" in logs and getattr(self, "_resumed_step", 0) and self.state.global_step:
            # the Trainer averages over the steps after resuming only; count the logged steps before it too
            before, previous = 0.0, 0
            for entry in self.state.log_history:
                if "loss" in entry and entry["step"] <= self._resumed_step:
                    before += entry["loss"] * (entry["step"] - previous)
                    previous = entry["step"]
            after = logs["train_loss"] * (self.state.global_step - self._resumed_step)
            logs["train_loss"] = (before + after) / (previous + self.state.global_step - self._resumed_step)
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
