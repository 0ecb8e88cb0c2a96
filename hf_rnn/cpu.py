"""CPU execution settings that hf_rnn applies where it computes: denormal floats flushed to zero in every thread, and a
thread count that follows the cores other processes leave free.

Denormals. Gradients that flow back through many time steps decay into the denormal range (below 1.2e-38), and x86
cores compute on denormal numbers in microcode, 10-100x slower; TensorFlow flushes them to zero by default, PyTorch
does not. `torch.set_flush_denormal` only sets the calling thread, and torch's OpenMP workers keep their own state,
so `set_flush_denormal` here also runs in every worker of the OpenMP pool (threads created later inherit it).

Busy machines. torch's OpenMP threads wait for each other at the end of every parallel region; when another process
takes one of two cores, a two-thread region waits for a thread that is not running, and training slows down several
times over. `AdaptiveThreads` measures every second how many cores the other processes use (niced processes do not
count: they yield to us) and runs torch on the cores that are left, back to all of them when the machine is idle.

Freed memory. A training step allocates and frees the same large per-batch buffers again and again; glibc hands freed
memory back to the system once more than 128 KiB-64 MiB of it lies at the top of the heap, and the next step faults
the pages in again (6-10% of an LSTM step on workload W). `keep_freed_memory` keeps it in the process instead.

Example, in your own `transformers.Trainer` script (hf_rnn's `RecurrentTrainer` does all three by itself):

```python
>>> from hf_rnn.cpu import AdaptiveThreads, FlushDenormals, keep_freed_memory
>>> keep_freed_memory()
>>> trainer = Trainer(model=model, args=args, train_dataset=train, callbacks=[FlushDenormals(), AdaptiveThreads()])
```
"""

import ctypes
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

__all__ = [
    "AdaptiveThreads",
    "cpu_flags",
    "cpu_name",
    "FlushDenormals",
    "available_cores",
    "flushed_denormals",
    "is_flushing_denormals",
    "keep_freed_memory",
    "set_flush_denormal",
]


@cache
def _libgomp() -> ctypes.CDLL | None:
    """The GNU OpenMP runtime torch runs its thread pool on, as loaded in this process (None for other runtimes)."""
    if "OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line and line.rstrip().endswith(".so.1")}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)  # the library is loaded already: this returns the same instance
            library.GOMP_parallel  # noqa: B018 (check the entry point exists)
            return library
        except (OSError, AttributeError):
            continue
    return None


_THREAD_FUNCTION = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_LARGEST_TEAM = 1


def _in_every_thread(function: Callable[[], object]) -> None:
    """Runs `function` once in each thread of torch's OpenMP pool, the calling thread included."""
    library = _libgomp()
    if library is None:
        function()
        return
    callback = _THREAD_FUNCTION(lambda _: function())
    # GOMP_parallel is what `#pragma omp parallel` compiles to. The pool keeps the threads of its largest team even
    # while torch runs fewer (AdaptiveThreads lowers the count), and reuses them when the count goes up again, so the
    # team here is as large as any torch may have used: every pooled thread runs the callback
    global _LARGEST_TEAM
    _LARGEST_TEAM = max(_LARGEST_TEAM, torch.get_num_threads(), os.cpu_count() or 1)
    library.GOMP_parallel(callback, None, ctypes.c_uint(_LARGEST_TEAM), ctypes.c_uint(0))


def is_flushing_denormals() -> bool:
    """Whether the calling thread flushes denormal floats to zero (a denormal product comes out as 0)."""
    return (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() == 0.0


def set_flush_denormal(enabled: bool) -> bool:
    """Flushes denormal floats to zero (or stops) in the calling thread and in every thread of torch's OpenMP pool.

    Returns whether the CPU supports it (x86 with SSE3, and ARM); where it does not, nothing changes.
    """
    supported = torch.set_flush_denormal(enabled)
    if supported:
        _in_every_thread(lambda: torch.set_flush_denormal(enabled))
    return supported


@contextmanager
def flushed_denormals(enabled: bool = True) -> Iterator[None]:
    """Flushes denormals (with `enabled`) for the duration of the block, then restores the previous setting."""
    previous = is_flushing_denormals()
    if previous == enabled:
        yield
        return
    set_flush_denormal(enabled)
    try:
        yield
    finally:
        set_flush_denormal(previous)


class FlushDenormals(TrainerCallback):
    """Flushes denormals to zero from the start to the end of `Trainer.train()`, for a plain `transformers.Trainer`
    (the evaluations during training included); the previous setting is restored at the end."""

    def __init__(self):
        self._previous = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._previous = is_flushing_denormals()
        set_flush_denormal(True)

    def on_train_end(self, args, state, control, **kwargs):
        if self._previous is not None:
            set_flush_denormal(self._previous)
            self._previous = None


# glibc's mallopt parameters (malloc.h) and the values keep_freed_memory sets: blocks up to glibc's largest threshold
# come from the heap (not from mmap, which unmaps them on free), and the heap is trimmed only past 1 GiB free on top
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 32 << 20, 1 << 30


@cache
def keep_freed_memory() -> bool:
    """Keeps memory the process frees for its next allocations instead of handing it back to the system (glibc).

    A training step frees buffers that the next step allocates again; by default glibc returns them to the system and
    every step page-faults them in anew. With this, the process's resident memory stays at its peak, as PyTorch's CUDA
    caching allocator keeps GPU memory. Process-wide, for the rest of the process. Returns whether it applied (Linux
    with glibc; elsewhere nothing changes).
    """
    if platform.system() != "Linux":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # another C library (musl)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def _cpuinfo_field(name: str) -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8481C"), for reports of measured speed."""
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


# instruction-set extensions that change how fast torch and TensorFlow run recurrent models on CPU
_SPEED_FLAGS = ("sse3", "fma", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_flags() -> list[str]:
    """The CPU's speed-relevant instruction-set flags (AVX2, AVX-512, bf16, AMX) that /proc/cpuinfo lists."""
    flags = set((_cpuinfo_field("flags") or "").split())
    return [flag for flag in _SPEED_FLAGS if flag in flags]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and `taskset` restrict)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _busy_ticks() -> tuple[int, int] | None:
    """Clock ticks the whole machine spent busy since boot, without and with niced processes (None off Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + system + irq + softirq + steal
    return busy, busy + nice


class AdaptiveThreads(TrainerCallback):
    """Runs torch on the cores that other processes leave free during `Trainer.train()`, on CPU.

    Every `interval` seconds (checked at the end of a step) it measures how many cores the other processes kept busy;
    niced processes do not count unless this process is niced too, since the scheduler gives us their cores. The
    thread count becomes the cores left over (rounded, at least 1, at most the count at the start of training), and
    goes back up when the machine is idle again. The original count is restored at the end of training.

    Thread counts change how parallel sums are split, so results of a run on a busy machine can differ from an idle
    run in the last bits; set `training.adaptive_threads: false` (or pin `OMP_NUM_THREADS`) to rule that out.

    Args:
        interval (`float`, *optional*, defaults to 1.0): seconds between measurements.
    """

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.max_threads = None
        self.changes: list[tuple[int, int]] = []  # (global step, new thread count), for logs and tests
        self._original = None
        self._last = None

    def on_train_begin(self, args, state, control, **kwargs):
        if args.device.type != "cpu" or _busy_ticks() is None:
            self.max_threads = None
            return
        self._original = torch.get_num_threads()
        self.max_threads = min(self._original, available_cores())
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, tuple[int, int]]:
        times = os.times()
        return time.monotonic(), times.user + times.system, _busy_ticks()

    def on_step_end(self, args, state, control, **kwargs):
        if self.max_threads is None or self.max_threads < 2:
            return
        now = time.monotonic()
        if now - self._last[0] < self.interval:
            return
        sample = self._sample()
        (then, own_then, ticks_then), (_, own_now, ticks_now) = self._last, sample
        self._last = sample
        niced = os.getpriority(os.PRIO_PROCESS, 0) > 0
        machine = (ticks_now[niced] - ticks_then[niced]) / os.sysconf("SC_CLK_TCK")
        others = max(0.0, machine - (own_now - own_then)) / (now - then)
        threads = max(1, min(self.max_threads, round(available_cores() - others)))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
            self.changes.append((state.global_step, threads))
            logger.info("Other processes keep %.1f cores busy: training on %d thread(s).", others, threads)

    def on_train_end(self, args, state, control, **kwargs):
        if self._original is not None and torch.get_num_threads() != self._original:
            torch.set_num_threads(self._original)
        self.max_threads = self._original = None
