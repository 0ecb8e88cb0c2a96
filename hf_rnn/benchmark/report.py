import contextlib
import importlib.metadata
import importlib.util
import os
import platform

import torch

from ..cpu import cpu_flags, cpu_name


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
    if "hf_rnn_fp32_denormals" in rows:
        checks.append(
            (
                "train: denormals flushed (default) vs kept",
                hf["train_tokens_per_s"] / rows["hf_rnn_fp32_denormals"]["train_tokens_per_s"],
                1.0,
            )
        )
    if "keras_bucketed" in rows:
        checks.append(
            (
                "train: vs Keras bucketed",
                hf["train_tokens_per_s"] / rows["keras_bucketed"]["train_tokens_per_s"],
                1.2,
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


def _machine() -> dict:
    versions = {}
    for name, distributions in _DISTRIBUTIONS.items():
        for distribution in distributions:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                versions[name] = importlib.metadata.version(distribution)
                break
    return {
        "platform": platform.platform(),
        "processor": cpu_name(),
        "cpu_flags": cpu_flags(),
        "flush_denormal_supported": torch.set_flush_denormal(False),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        **versions,
    }


def format_table(report: dict) -> str:
    """Renders a report of `run_benchmark` as markdown: one table per cell, its targets, and the length sweep."""
    machine, workload = report["machine"], report["workload"]
    lines = [
        "# hf-rnn bench" + (" (quick: scaled-down workload, indicative only)" if report["settings"]["quick"] else ""),
        "",
        f"Machine: {machine['processor']} ({', '.join(machine.get('cpu_flags', [])) or 'no AVX'}), "
        f"{machine['logical_cpus']} logical CPUs, {machine['torch_threads']} torch threads; {machine['platform']}; "
        + ", ".join(f"{k} {machine[k]}" for k in _VERSION_KEYS if k in machine),
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
    for cell, result in report.get("results", {}).items():
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
    lines += _frontend_lines(report.get("frontend"))
    lines += _sweep_lines(report.get("length_sweep"))
    lines += _tokenization_lines(report.get("tokenization"))
    lines += _busy_lines(report.get("busy_machine"))
    return "\n".join(lines) + "\n"


_DISTRIBUTIONS = {
    "torch": ("torch",),
    "transformers": ("transformers",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
}
_VERSION_KEYS = ("python", *_DISTRIBUTIONS)


def _frontend_lines(frontend: dict | None) -> list[str]:
    if frontend is None:
        return []
    return [
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


def _sweep_lines(sweep: dict | None) -> list[str]:
    if sweep is None:
        return []
    lines = [
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
    return lines


def _tokenization_lines(tokenization: dict | None) -> list[str]:
    if tokenization is None:
        return []
    lines = [
        "",
        f"## Tokenization ({tokenization['reviews']:,} IMDB reviews, word level, truncated to 256 tokens)",
        "",
        "| path | reviews/s |",
        "|---|---:|",
    ]
    lines += [f"| {row['path']} | {row['reviews_per_s']:,.0f} |" for row in tokenization["rows"]]
    same = "the same" if tokenization["same_ids"] else "DIFFERENT"
    return lines + ["", f"All paths give {same} token ids."]


def _busy_lines(busy: dict | None) -> list[str]:
    if busy is None:
        return []
    lines = [
        "",
        f"## Training on a busy machine ({busy['recipe']} recipe, up to {busy['max_steps']} steps or "
        f"{busy['budget_seconds']:.0f} s per condition)",
        "",
        "| condition | thread count | steps | seconds per step | vs idle, fixed threads |",
        "|---|---|---:|---:|---:|",
    ]
    return lines + [
        f"| {row['condition']} | {row['threads']} | {row['steps']} | {row['seconds_per_step']:.3f} "
        f"| {row['slowdown_vs_idle_fixed']:.2f}x |"
        for row in busy["rows"]
    ]
