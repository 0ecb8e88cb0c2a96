import contextlib
import ctypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
from torch import nn

from ..configuration_rnn import GRUConfig, LSTMConfig, RNNConfig
from ..modeling_rnn import GRUForSequenceClassification, LSTMForSequenceClassification, RNNForSequenceClassification

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
    keras_worker: object | None = None  # the `keras_rows._KerasWorker`
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


def _counts(batches: list[Batch]) -> Counts:
    return Counts(sum(b.real_tokens for b in batches), sum(b.padded_tokens for b in batches))


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
