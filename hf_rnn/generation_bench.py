"""Generation throughput of the recurrent language models: the recurrent state as the cache vs rerunning the prefix.

`hf-rnn bench --generate` calls `run_generation_benchmark`: for each cell, a randomly initialised `*ForCausalLM`
(throughput does not depend on the weights; no end-of-text token, so every row runs to `new_tokens`) continues a
batch of random prompts with greedy search twice, through `model.generate` both times: with `use_cache=True` (the
prompt runs once, then one step per new token) and with `use_cache=False` (every new token reruns the whole text so
far, as a model without a cache must). Both must produce the same tokens. Reported: new tokens per second (batch x
new tokens / wall time), the median of `repeats` runs after a warm-up, and the ratio.
"""

import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import CAUSAL_LM_CLASSES, MODEL_FAMILIES

CELL_TYPES = {"rnn": "hf_rnn", "lstm": "hf_lstm", "gru": "hf_gru"}


@dataclass
class GenerationWorkload:
    """
    What to generate.

    Args:
        batch_size (`int`, *optional*, defaults to 8): prompts per `generate` call.
        prompt_length (`int`, *optional*, defaults to 64): tokens per prompt.
        new_tokens (`int`, *optional*, defaults to 128): tokens generated per prompt.
        vocab_size (`int`, *optional*, defaults to 200): about a character vocabulary.
        embedding_dim (`int`, *optional*, defaults to 64)
        hidden_size (`int`, *optional*, defaults to 256)
        num_layers (`int`, *optional*, defaults to 1)
        repeats (`int`, *optional*, defaults to 3): timed runs per variant (after one warm-up run).
    """

    batch_size: int = 8
    prompt_length: int = 64
    new_tokens: int = 128
    vocab_size: int = 200
    embedding_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 1
    repeats: int = 3


QUICK_WORKLOAD = GenerationWorkload(batch_size=4, prompt_length=16, new_tokens=32, hidden_size=64, repeats=1)


def _time_generate(model, prompts: torch.Tensor, workload: GenerationWorkload, use_cache: bool):
    """Median wall time of greedy generation over `repeats` runs after a warm-up, and the tokens generated."""
    options = {"max_new_tokens": workload.new_tokens, "do_sample": False}
    with torch.no_grad():
        output = model.generate(prompts, use_cache=use_cache, **options)
        times = []
        for _ in range(workload.repeats):
            started = time.perf_counter()
            model.generate(prompts, use_cache=use_cache, **options)
            times.append(time.perf_counter() - started)
    return statistics.median(times), output


def run_generation_benchmark(
    cells: tuple[str, ...] = ("lstm", "gru", "rnn"),
    workload: GenerationWorkload | None = None,
    quick: bool = False,
    output_dir: str | Path | None = None,
) -> dict:
    """Measures generation throughput with and without the recurrent cache for each cell.

    Args:
        cells (`tuple[str, ...]`, *optional*): cell types among `rnn`, `lstm`, `gru`.
        workload ([`GenerationWorkload`], *optional*): defaults to `GenerationWorkload()`, or `QUICK_WORKLOAD` with
            `quick=True`.
        quick (`bool`, *optional*, defaults to `False`): a scaled-down run of a few seconds (smoke test).
        output_dir (`str` or `Path`, *optional*): writes `generation.json` there.

    Returns:
        `dict`: the workload, torch's thread count and one row per cell with `cached_tokens_per_s`,
        `rerun_tokens_per_s` and `speedup`.
    """
    unknown = sorted(set(cells) - set(CELL_TYPES))
    if unknown:
        raise ValueError(f"unknown cell(s) {', '.join(unknown)}; choose from {', '.join(CELL_TYPES)}.")
    workload = workload or (QUICK_WORKLOAD if quick else GenerationWorkload())
    generated = workload.batch_size * workload.new_tokens
    rows = []
    for cell in cells:
        model_type = CELL_TYPES[cell]
        torch.manual_seed(0)
        config = MODEL_FAMILIES[model_type].config_class(
            vocab_size=workload.vocab_size,
            embedding_dim=workload.embedding_dim,
            hidden_size=workload.hidden_size,
            num_layers=workload.num_layers,
        )
        model = CAUSAL_LM_CLASSES[model_type](config).eval()
        prompts = torch.randint(1, workload.vocab_size, (workload.batch_size, workload.prompt_length))
        cached_s, cached = _time_generate(model, prompts, workload, use_cache=True)
        rerun_s, rerun = _time_generate(model, prompts, workload, use_cache=False)
        rows.append(
            {
                "cell": cell,
                "cached_tokens_per_s": generated / cached_s,
                "rerun_tokens_per_s": generated / rerun_s,
                "speedup": rerun_s / cached_s,
                "same_tokens": torch.equal(cached, rerun),
            }
        )
    report = {"workload": asdict(workload), "threads": torch.get_num_threads(), "rows": rows}
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "generation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def format_generation_table(report: dict) -> str:
    """The report as a Markdown table."""
    w = report["workload"]
    lines = [
        f"Greedy generation, batch {w['batch_size']}, prompt {w['prompt_length']} tokens, {w['new_tokens']} new "
        f"tokens, {w['num_layers']} layer(s) of {w['hidden_size']} units, vocabulary {w['vocab_size']}, "
        f"{report['threads']} thread(s); medians of {w['repeats']} run(s)",
        "",
        "| cell | with the cache (tokens/s) | rerunning the prefix (tokens/s) | speedup | same tokens |",
        "|---|---:|---:|---:|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['cell']} | {row['cached_tokens_per_s']:,.0f} | {row['rerun_tokens_per_s']:,.0f} | "
            f"{row['speedup']:.1f}x | {'yes' if row['same_tokens'] else 'NO'} |"
        )
    return "\n".join(lines)
