import importlib.metadata
import importlib.util
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import psutil
import torch
from torch import nn

from ..cpu import flushed_denormals, set_flush_denormal
from .keras_rows import KerasVariant, _KerasWorker
from .pipeline import busy_machine_section, tokenization_section
from .report import _machine, _targets, format_table
from .torch_rows import TorchLoopVariant, TrainerVariant, _frontend_epochs, _length_sweep
from .workload import (
    _TORCH_CELLS,
    CELLS,
    FULL,
    QUICK,
    Context,
    Settings,
    Variant,
    _timed,
    batches_from_indices,
    make_sequences,
)

# Row order of the table. Each entry builds one variant for a cell's context. The MiniLM-frontend row is one more
# `TrainerVariant` entry here, with `config_overrides={"frontend": "bert", "frontend_config": ...}`.
SECTIONS = ("cells", "frontend", "sweep", "tokenization", "busy")
DEFAULT_SECTIONS = ("cells", "frontend", "sweep", "tokenization")

VARIANTS: dict[str, Callable[[Context], Variant]] = {
    "baseline": lambda c: TorchLoopVariant(
        "baseline",
        f"plain nn.{_TORCH_CELLS[c.cell].__name__}, padded random batches, PyTorch's default (denormals kept)",
        c,
        "random_batches",
        "random_batches",
        flush_denormal=False,
    ),
    "plain_bucketed": lambda c: TorchLoopVariant(
        "plain_bucketed",
        f"plain nn.{_TORCH_CELLS[c.cell].__name__}, hf_rnn's batches (inference: length-sorted), denormals flushed",
        c,
        "trainer_batches",
        "sorted_batches",
    ),
    "hf_rnn_loop": lambda c: TorchLoopVariant(
        "hf_rnn_loop",
        "hf_rnn in the same bare loop on hf_rnn's batches (inference: length-sorted), denormals flushed",
        c,
        "trainer_batches",
        "sorted_batches",
        hf_rnn=True,
    ),
    "hf_rnn_fp32": lambda c: TrainerVariant(
        "hf_rnn_fp32", "hf_rnn via Trainer, group_by_length, fp32 (the default: denormals flushed)", c
    ),
    "hf_rnn_fp32_denormals": lambda c: TrainerVariant(
        "hf_rnn_fp32_denormals",
        "the same with `flush_denormal: false` (denormals kept, as before hf_rnn flushed them)",
        c,
        flush_denormal=False,
    ),
    "hf_rnn_fp32_modules": lambda c: TrainerVariant(
        "hf_rnn_fp32_modules",
        f"the same with PyTorch's nn.{_TORCH_CELLS[c.cell].__name__} instead of hf_rnn's sequence kernel",
        c,
        sequence_kernels=False,
    ),
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
    variants = {name: variant for name, variant in variants.items() if variant is not None}
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


def run_benchmark(
    quick: bool = False,
    cells: tuple[str, ...] = CELLS,
    keras: bool = True,
    output_dir: str | Path = "bench_results",
    seed: int = 0,
    sections: tuple[str, ...] = DEFAULT_SECTIONS,
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
        sections (`tuple[str, ...]`, *optional*): what to measure, from `SECTIONS`: `cells` (the rows for each
            cell), `frontend`, `sweep` (training cost vs length), `tokenization`, `busy` (training on a busy machine:
            it starts busy processes, so it is off by default; `hf-rnn bench --load`).

    Returns:
        `dict`: the report: `machine`, `workload`, `settings`, `notes`, per cell `results` (rows of tokens/s, ratios
        to the baseline, peak memory; the ideal bucketing gain; the targets), and the `length_sweep`.
    """
    unknown = [cell for cell in cells if cell not in CELLS]
    if unknown or not cells:
        raise ValueError(f"Unknown cells {unknown or cells}; choose from {', '.join(CELLS)}.")
    unknown = [section for section in sections if section not in SECTIONS]
    if unknown or not sections:
        raise ValueError(f"Unknown sections {unknown or sections}; choose from {', '.join(SECTIONS)}.")
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
    keras_worker = _KerasWorker() if "cells" in sections else None
    measured = {}
    # denormals are kept unless a row flushes them itself: PyTorch's default, which the baseline row shows
    set_flush_denormal(False)
    try:
        with tempfile.TemporaryDirectory(prefix="hf-rnn-bench-") as work_dir:
            if "cells" in sections:
                measured["results"] = {
                    cell: _bench_cell(cell, settings, seed, Path(work_dir), skip, keras_worker, log) for cell in cells
                }
            if "frontend" in sections:
                log("frontend: first epoch (encode + train) vs a later epoch on cached features")
                measured["frontend"] = _frontend_epochs(settings, seed, Path(work_dir))
            if "tokenization" in sections:
                measured["tokenization"] = tokenization_section(quick, log)
            if "busy" in sections:
                with flushed_denormals():
                    measured["busy_machine"] = busy_machine_section(quick, seed, Path(work_dir) / "busy", log)
        if "sweep" in sections:
            log("sequence-length sweep")
            with flushed_denormals():
                measured["length_sweep"] = _length_sweep(cells[0], settings, seed)
    finally:
        if keras_worker is not None:
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
        **measured,
    }
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / "benchmark.md").write_text(format_table(report))
    return report
