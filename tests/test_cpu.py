"""CPU execution settings: denormals flushed in every thread that computes, thread count that follows the load."""

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback, TrainingArguments

from hf_rnn import LSTMConfig, LSTMForSequenceClassification
from hf_rnn.cpu import AdaptiveThreads, FlushDenormals, flushed_denormals, is_flushing_denormals, set_flush_denormal
from hf_rnn.data import PaddingCollator
from hf_rnn.training import RecurrentTrainer

DENORMAL_SUPPORTED = torch.set_flush_denormal(False)
needs_flush = pytest.mark.skipif(not DENORMAL_SUPPORTED, reason="this CPU cannot flush denormals")


def pool_flushes() -> bool:
    """A denormal product over a million elements: torch splits it over every thread of its OpenMP pool."""
    x = torch.full((1_000_000,), 1e-30)
    return bool(((x * 1e-10) == 0).all())


def pool_keeps_denormals() -> bool:
    x = torch.full((1_000_000,), 1e-30)
    return bool(((x * 1e-10) != 0).all())


@pytest.fixture(autouse=True)
def restore_flush():
    yield
    set_flush_denormal(False)


@needs_flush
def test_set_flush_denormal_reaches_every_pool_thread():
    torch.set_num_threads(max(2, torch.get_num_threads()))
    pool_keeps_denormals()  # the pool exists before the flag is set
    torch.set_flush_denormal(True)  # torch's own call sets the calling thread only
    assert is_flushing_denormals()
    if torch.get_num_threads() > 1 and os.cpu_count() > 1:
        assert not pool_flushes(), "the workers were expected to keep denormals (else this test proves nothing)"
    set_flush_denormal(True)
    assert is_flushing_denormals() and pool_flushes()
    set_flush_denormal(False)
    assert not is_flushing_denormals() and pool_keeps_denormals()


@needs_flush
def test_flushed_denormals_restores_the_previous_setting():
    with flushed_denormals():
        assert is_flushing_denormals() and pool_flushes()
    assert not is_flushing_denormals() and pool_keeps_denormals()
    set_flush_denormal(True)
    with flushed_denormals(False):
        assert not is_flushing_denormals() and pool_keeps_denormals()
    assert is_flushing_denormals()


class RecordDenormals(TrainerCallback):
    """Records, inside training steps, whether the forward thread, the backward thread and the pool flush."""

    def __init__(self, model):
        self.seen = []
        model.get_input_embeddings().weight.register_hook(self._in_backward)

    def _in_backward(self, grad):
        self.seen.append(("backward", is_flushing_denormals()))
        return grad

    def on_step_begin(self, args, state, control, **kwargs):
        self.seen.append(("step", is_flushing_denormals() and pool_flushes()))


def tiny_trainer(tmp_path, **kwargs):
    torch.manual_seed(0)
    config = LSTMConfig(vocab_size=50, embedding_dim=8, hidden_size=8, bidirectional=True, pad_token_id=0)
    model = LSTMForSequenceClassification(config)
    rows = [[1 + (i * 7 + j) % 49 for j in range(3 + i % 5)] for i in range(16)]
    data = Dataset.from_dict({"input_ids": rows, "label": [i % 2 for i in range(16)]})
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=8, report_to="none", use_cpu=True
    )
    recorder = RecordDenormals(model)
    trainer = RecurrentTrainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=PaddingCollator(pad_token_id=0),
        callbacks=[recorder],
        **kwargs,
    )
    return trainer, recorder


@needs_flush
def test_recurrent_trainer_flushes_in_the_training_step_and_restores(tmp_path, monkeypatch):
    kept = []
    monkeypatch.setattr("hf_rnn.trainer.keep_freed_memory", lambda: kept.append(True))
    trainer, recorder = tiny_trainer(tmp_path)
    trainer.train()
    assert kept == [True]  # on CPU, freed memory stays for the next step
    assert recorder.seen and all(flushed for _, flushed in recorder.seen)
    assert {where for where, _ in recorder.seen} == {"step", "backward"}
    # the user's own code after train() computes as before
    assert not is_flushing_denormals() and pool_keeps_denormals()


@needs_flush
def test_recurrent_trainer_opt_out_keeps_denormals(tmp_path):
    set_flush_denormal(True)  # as `hf-rnn train` sets it at the start of the process
    trainer, recorder = tiny_trainer(tmp_path, flush_denormal=False)
    trainer.train()
    assert recorder.seen and not any(flushed for _, flushed in recorder.seen)
    assert is_flushing_denormals()


@needs_flush
def test_flush_denormals_callback_for_a_plain_trainer(tmp_path):
    from transformers import Trainer

    trainer, recorder = tiny_trainer(tmp_path, adaptive_threads=False)
    plain = Trainer(
        model=trainer.model,
        args=trainer.args,
        train_dataset=trainer.train_dataset,
        data_collator=trainer.data_collator,
        callbacks=[FlushDenormals(), recorder],
    )
    plain.train()
    assert recorder.seen and all(flushed for _, flushed in recorder.seen)
    assert not is_flushing_denormals()


def busy_work(seconds: float) -> None:
    end = time.monotonic() + seconds
    x = torch.randn(256, 256)
    while time.monotonic() < end:
        x = torch.tanh(x @ x)


def other_processes_busy_cores(seconds: float = 1.0) -> float:
    """Cores that processes other than this one (niced ones excepted) keep busy, measured over `seconds`."""
    from hf_rnn.cpu import _busy_ticks

    before, own_before = _busy_ticks(), sum(os.times()[:2])
    time.sleep(seconds)
    after, own_after = _busy_ticks(), sum(os.times()[:2])
    return max(0.0, (after[0] - before[0]) / os.sysconf("SC_CLK_TCK") - (own_after - own_before)) / seconds


@pytest.fixture
def idle_machine():
    """These tests start their own load; other load on the machine would decide the thread count instead."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 cores")
    busy = other_processes_busy_cores()
    if busy > 0.3:
        pytest.skip(f"the machine is busy (other processes keep {busy:.1f} cores busy)")


def test_adaptive_threads_leaves_a_busy_core_and_comes_back(tmp_path, idle_machine):
    """A busy process beside training takes one core: training goes to the cores left, and back when it stops."""
    torch.set_num_threads(2)
    callback = AdaptiveThreads(interval=0.5)
    args = SimpleNamespace(device=torch.device("cpu"))
    state = SimpleNamespace(global_step=0)
    callback.on_train_begin(args, state, None)

    def run_steps(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            busy_work(0.05)
            state.global_step += 1
            callback.on_step_end(args, state, None)

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        run_steps(3.0)
        assert torch.get_num_threads() == 1, callback.changes
    finally:
        busy.kill()
        busy.wait()
    run_steps(3.0)
    assert torch.get_num_threads() == 2, callback.changes
    callback.on_train_end(args, state, None)
    assert torch.get_num_threads() == 2


def test_adaptive_threads_ignores_niced_processes_and_restores_the_count(idle_machine):
    torch.set_num_threads(2)
    callback = AdaptiveThreads(interval=0.5)
    args, state = SimpleNamespace(device=torch.device("cpu")), SimpleNamespace(global_step=0)
    callback.on_train_begin(args, state, None)
    niced = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
    try:
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            busy_work(0.05)
            callback.on_step_end(args, state, None)
    finally:
        niced.kill()
        niced.wait()
    assert torch.get_num_threads() == 2, callback.changes
    torch.set_num_threads(1)
    callback.on_train_end(args, state, None)
    assert torch.get_num_threads() == 2


@needs_flush
def test_threads_parked_while_the_count_is_lower_are_set_too():
    """AdaptiveThreads lowers the count mid-training: the pool keeps the idle worker and reuses it later, so a flag
    changed meanwhile must reach it as well."""
    torch.set_num_threads(2)
    set_flush_denormal(True)
    pool_flushes()  # the pool has its worker, flushing
    torch.set_num_threads(1)
    set_flush_denormal(False)  # reaches the parked worker too
    torch.set_num_threads(2)
    assert pool_keeps_denormals()


# allocates 256 MiB in 4 MiB tensors (touched, so resident), frees them, prints the resident memory that stayed
_FREE_AND_MEASURE = """
import sys, torch
from hf_rnn.cpu import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096
before = resident()
blocks = [torch.ones(1 << 20) for _ in range(64)]
peak = resident()
del blocks
print((resident() - before) / (peak - before))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_keep_freed_memory_keeps_a_freed_step_for_the_next():
    """By default glibc hands a step's freed buffers back to the system (the next step faults them in again); with
    keep_freed_memory (what RecurrentTrainer sets on CPU) they stay resident for the next allocations."""

    def kept(mode: str) -> float:
        command = [sys.executable, "-c", _FREE_AND_MEASURE, mode]
        return float(subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout)

    assert kept("default") < 0.2
    assert kept("keep") > 0.9
