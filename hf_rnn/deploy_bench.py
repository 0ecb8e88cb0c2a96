"""Deployment measurements behind `hf-rnn bench --deploy`: inference speed, size and accuracy of each way to serve.

    hf-rnn bench --deploy                                   # speed and size on workload W
    hf-rnn bench --deploy --model-dir hf_rnn_outputs/quickstart   # plus accuracy on the quickstart's test split
    hf-rnn bench --deploy --quick                           # a scaled-down workload, under a minute

or `run_deploy_benchmark(quick=..., model_dir=...)` from Python. Rows:

- `pytorch_fp32`: the hf_rnn model in PyTorch, `torch.no_grad()`;
- `pytorch_bf16`: the same under bf16 autocast (skipped where the CPU cannot run it);
- `pytorch_int8`: `torch.ao.quantization.quantize_dynamic` of its `nn.LSTM` and `nn.Linear` modules (int8 weights,
  activations quantized on the fly; the embedding stays fp32);
- `onnxruntime_fp32` / `onnxruntime_int8`: the model exported by `hf_rnn.export` (`hf-rnn export`, with
  `--quantize int8` for the second), run by onnxruntime on the CPU.

Speed: workload W of `hf_rnn/benchmark.py` (imported from there: a bidirectional LSTM, embedding 128, hidden 128, a
`Dense(64, relu)` head, 1,536 sequences of log-normal lengths 20..256), in length-sorted batches of 64 right-padded
to their longest sequence, the same batches for every row. Real (non-padding) tokens per second, the median of
interleaved repeats after a warm-up pass, with as many threads for onnxruntime as torch uses. Size: the model file on
disk (safetensors for PyTorch fp32 and bf16 autocast, which keeps fp32 weights; the quantized state dict for PyTorch
int8; `model.onnx`). Accuracy (with a trained model directory, e.g. the quickstart's): the test split of the model's
own recipe, each row predicting through `hf_rnn.predict` (tokenization included), which also gives texts per second.
"""

import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .benchmark.torch_rows import workload_model
from .benchmark.workload import FULL, QUICK, Workload, make_sequences
from .cpu import flushed_denormals
from .export import write_onnx
from .inference import TorchPredictor, predict
from .modeling_rnn import LSTMForSequenceClassification
from .onnx_runtime import ONNX_FILE, OnnxClassifier

ROWS = ("pytorch_fp32", "pytorch_bf16", "pytorch_int8", "onnxruntime_fp32", "onnxruntime_int8")
_DESCRIPTIONS = {
    "pytorch_fp32": "PyTorch, fp32",
    "pytorch_bf16": "PyTorch, bf16 autocast (fp32 weights)",
    "pytorch_int8": "PyTorch, torch.ao dynamic int8 (LSTM + Linear)",
    "onnxruntime_fp32": "onnxruntime, `hf-rnn export`",
    "onnxruntime_int8": "onnxruntime, `hf-rnn export --quantize int8`",
}
# targets of issue 15: onnxruntime int8 at least 2x PyTorch fp32 on W, accuracy within 1 point
SPEEDUP_GOAL = 2.0
ACCURACY_TOLERANCE = 0.01


class _Row:
    """One way to serve: `logits(input_ids, attention_mask)` on padded int64 arrays, and its model file."""

    def __init__(self, name: str, logits, size_bytes: int):
        self.name, self.logits, self.size_bytes = name, logits, size_bytes


def _torch_logits(model: nn.Module, bf16: bool = False):
    def logits(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        # denormals flushed as in hf_rnn.predict (and in onnxruntime's sessions here)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), flushed_denormals():
            output = model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
        return output.logits.float().numpy()

    return logits


def _onnx_logits(classifier: "OnnxClassifier | _Session"):
    def logits(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return classifier.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    return logits


def quantize_torch_int8(model: nn.Module) -> nn.Module:
    """PyTorch's dynamic int8 quantization of the recurrent and linear layers (a copy; `model` is unchanged)."""
    with warnings.catch_warnings():
        # torch.ao's quantized tensors are deprecated in favour of torchao, which is not a dependency here
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.GRU, nn.RNN, nn.Linear}, dtype=torch.qint8)


def bf16_supported() -> bool:
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            nn.LSTM(4, 4)(torch.zeros(2, 1, 4))
    except RuntimeError:
        return False
    return True


def _build_rows(model: nn.Module, work_dir: Path, threads: int, names: tuple[str, ...]) -> list[_Row]:
    """Every row for one model: PyTorch variants in this process, ONNX exports written to `work_dir`."""
    model = model.eval()
    rows = []
    model.save_pretrained(work_dir / "pytorch")
    size = sum(p.stat().st_size for p in (work_dir / "pytorch").glob("*.safetensors"))
    if "pytorch_fp32" in names:
        rows.append(_Row("pytorch_fp32", _torch_logits(model), size))
    if "pytorch_bf16" in names:
        rows.append(_Row("pytorch_bf16", _torch_logits(model, bf16=True), size))
    if "pytorch_int8" in names:
        quantized = quantize_torch_int8(model)
        path = work_dir / "pytorch_int8.pt"
        torch.save(quantized.state_dict(), path)
        rows.append(_Row("pytorch_int8", _torch_logits(quantized), path.stat().st_size))
    for name, quantize in (("onnxruntime_fp32", None), ("onnxruntime_int8", "int8")):
        if name not in names:
            continue
        folder = work_dir / name
        folder.mkdir()
        write_onnx(model, folder, quantize=quantize)
        rows.append(
            _Row(name, _onnx_logits(_Session(folder / ONNX_FILE, threads)), (folder / ONNX_FILE).stat().st_size)
        )
    return rows


class _Session:
    """Just the onnxruntime session of a model file (the workload needs no tokenizer)."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )


def _workload_model(workload: Workload, seed: int) -> LSTMForSequenceClassification:
    """Workload W's bidirectional LSTM classifier as an hf_rnn model (random weights: speed and size only)."""
    torch.manual_seed(seed)
    return workload_model("lstm", workload).eval()


def _sorted_batches(workload: Workload, seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """W's sequences in length-sorted batches, right-padded with 0; and their real tokens."""
    sequences = make_sequences(workload, seed).input_ids
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    batches = []
    for start in range(0, len(order), workload.eval_batch_size):
        rows = [sequences[i] for i in order[start : start + workload.eval_batch_size]]
        width = max(len(ids) for ids in rows)
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)
        for row, ids in enumerate(rows):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        batches.append((input_ids, attention_mask))
    return batches, sum(len(ids) for ids in sequences)


def _clock(wall: bool):
    """Wall time, or the process's CPU time: on a shared machine a single-threaded run's CPU time is the work it
    did, while its wall time also counts the time other processes held the cores."""
    return time.perf_counter if wall else time.process_time


def _time_rows(rows: list[_Row], batches: list, repeats: int, wall: bool) -> dict[str, list[float]]:
    """Seconds per pass over the batches for each row: a warm-up pass each, then `repeats` interleaved rounds in a
    rotated order (the machine's load drifts; interleaving spreads the drift over every row)."""
    clock = _clock(wall)
    for row in rows:
        for input_ids, attention_mask in batches:
            row.logits(input_ids, attention_mask)
    seconds = {row.name: [] for row in rows}
    for repeat in range(repeats):
        for row in rows[repeat % len(rows) :] + rows[: repeat % len(rows)]:
            started = clock()
            for input_ids, attention_mask in batches:
                row.logits(input_ids, attention_mask)
            seconds[row.name].append(clock() - started)
    return seconds


def _accuracy(model_dir: Path, work_dir: Path, threads: int, names: tuple[str, ...], wall: bool) -> dict[str, dict]:
    """Accuracy and texts/s of each row on the test split of the model's own recipe, through `hf_rnn.predict`."""
    from .data import load_splits
    from .export import export_model
    from .recipes import load_data_spec
    from .training import load_model_dir

    model, tokenizer = load_model_dir(model_dir)
    splits, label_names = load_splits(load_data_spec(model_dir / "recipe.yaml"))
    test = splits["test"]
    texts, truth = list(test["text"]), [label_names[i] for i in test["label"]]
    predictors = {
        "pytorch_fp32": lambda: TorchPredictor(model, tokenizer),
        "pytorch_bf16": lambda: TorchPredictor(model, tokenizer, bf16=True),
        "pytorch_int8": lambda: TorchPredictor(quantize_torch_int8(model), tokenizer, id2label=model.config.id2label),
        "onnxruntime_fp32": lambda: OnnxClassifier(export_model(model_dir, work_dir / "accuracy_fp32"), threads),
        "onnxruntime_int8": lambda: OnnxClassifier(
            export_model(model_dir, work_dir / "accuracy_int8", quantize="int8"), threads
        ),
    }
    results = {}
    for name in names:
        predictor = predictors[name]()
        started = _clock(wall)()
        predicted = predict(predictor, texts)
        seconds = _clock(wall)() - started
        correct = sum(p["label"] == t for p, t in zip(predicted, truth))
        results[name] = {"accuracy": correct / len(texts), "texts_per_s": len(texts) / seconds}
    results["_split"] = {"texts": len(texts), "model_dir": str(model_dir)}
    return results


def run_deploy_benchmark(
    quick: bool = False,
    model_dir: str | Path | None = None,
    output_dir: str | Path | None = "bench_results",
    threads: int | None = None,
    seed: int = 0,
) -> dict:
    """
    Measures the deployment rows (see the module docstring) and writes `deploy_benchmark.json` and
    `deploy_benchmark.md` to `output_dir`.

    Args:
        quick (`bool`, *optional*, defaults to `False`):
            The scaled-down workload of `hf-rnn bench --quick` and one repeat: indicative only.
        model_dir (`str` or `Path`, *optional*):
            A trained model directory with its `recipe.yaml` (the quickstart's): adds accuracy on its test split.
        output_dir (`str` or `Path`, *optional*, defaults to `"bench_results"`):
            Where the two files go; `None` writes nothing.
        threads (`int`, *optional*):
            Threads for torch and onnxruntime alike; default: torch's current setting.
        seed (`int`, *optional*, defaults to 0):
            Seed of the workload and the model.

    Returns:
        `dict`: `machine`, `workload`, `settings`, `rows` (name, description, tokens/s, ratio to pytorch_fp32, model
        bytes, accuracy and texts/s when measured), `targets`, `notes` and the rendered `markdown`.
    """
    if model_dir is not None:
        model_dir = Path(model_dir)
        if not (model_dir / "recipe.yaml").is_file():
            raise FileNotFoundError(
                f"{model_dir} has no recipe.yaml; --model-dir takes a directory written by `hf-rnn train` "
                "(e.g. hf_rnn_outputs/quickstart)."
            )
    settings = QUICK if quick else FULL
    workload, repeats = settings.workload, settings.repeats
    previous_threads = torch.get_num_threads()
    threads = threads or previous_threads
    torch.set_num_threads(threads)
    # one thread: CPU seconds, robust to other processes on a shared machine; several: wall seconds (CPU time would
    # add up the threads)
    wall = threads > 1
    notes = []
    names = ROWS
    if not bf16_supported():
        names = tuple(n for n in ROWS if n != "pytorch_bf16")
        notes.append("pytorch_bf16 skipped: bf16 autocast does not run on this CPU.")
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="hf-rnn-deploy-") as work_dir:
            work_dir = Path(work_dir)
            (work_dir / "workload").mkdir()
            rows = _build_rows(_workload_model(workload, seed), work_dir / "workload", threads, names)
            batches, real_tokens = _sorted_batches(workload, seed)
            seconds = _time_rows(rows, batches, repeats, wall)
            accuracy = _accuracy(model_dir, work_dir, threads, names, wall) if model_dir is not None else {}
    finally:
        torch.set_num_threads(previous_threads)
    baseline = real_tokens / statistics.median(seconds["pytorch_fp32"])
    table = []
    for row in rows:
        tokens_per_s = real_tokens / statistics.median(seconds[row.name])
        entry = {
            "name": row.name,
            "description": _DESCRIPTIONS[row.name],
            "tokens_per_s": tokens_per_s,
            "ratio": tokens_per_s / baseline,
            "model_bytes": row.size_bytes,
            "seconds": seconds[row.name],
        }
        entry.update(accuracy.get(row.name, {}))
        table.append(entry)
    report = {
        "machine": _machine(threads),
        "workload": {**workload.__dict__, "real_tokens": real_tokens, "batches": len(batches)},
        "settings": {
            "quick": quick,
            "repeats": repeats,
            "seed": seed,
            "clock": "wall" if wall else "process CPU time",
            "seconds": time.perf_counter() - started,
        },
        "rows": table,
        "accuracy_split": accuracy.get("_split"),
        "targets": _targets(table),
        "notes": notes,
    }
    report["markdown"] = format_deploy_table(report)
    if output_dir is not None:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "deploy_benchmark.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (output_dir / "deploy_benchmark.md").write_text(report["markdown"], encoding="utf-8")
    return report


def _targets(rows: list[dict]) -> list[dict]:
    by_name = {row["name"]: row for row in rows}
    fp32, int8 = by_name.get("pytorch_fp32"), by_name.get("onnxruntime_int8")
    if fp32 is None or int8 is None:
        return []
    targets = [
        {"target": "onnxruntime_int8 tokens/s vs pytorch_fp32", "value": int8["ratio"], "goal": SPEEDUP_GOAL,
         "met": int8["ratio"] >= SPEEDUP_GOAL},
    ]  # fmt: skip
    if "accuracy" in int8 and "accuracy" in fp32:
        drop = fp32["accuracy"] - int8["accuracy"]
        targets.append(
            {"target": "accuracy drop of onnxruntime_int8 vs pytorch_fp32 (points)", "value": 100 * drop,
             "goal": 100 * ACCURACY_TOLERANCE, "met": drop <= ACCURACY_TOLERANCE}
        )  # fmt: skip
    return targets


def _machine(threads: int) -> dict:
    processor = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    return {
        "processor": processor,
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
    }


def format_deploy_table(report: dict) -> str:
    """The report as markdown: the rows, the targets and how they were measured."""
    machine, workload = report["machine"], report["workload"]
    with_accuracy = any("accuracy" in row for row in report["rows"])
    lines = [
        "# hf-rnn bench --deploy" + (" (quick: scaled-down workload, indicative only)" if report["settings"]["quick"]
                                     else ""),
        "",
        f"Machine: {machine['processor']}, {machine['logical_cpus']} logical CPUs, {machine['threads']} thread(s) for "
        f"torch and onnxruntime; torch {machine['torch']}, onnxruntime {machine['onnxruntime']}.",
        f"Workload: {workload['num_sequences']} sequences ({workload['real_tokens']:,} real tokens), lengths "
        f"{workload['min_length']}..{workload['max_length']}, length-sorted batches of {workload['eval_batch_size']}; "
        f"bidirectional LSTM, embedding {workload['embedding_dim']}, hidden {workload['hidden_size']}, vocabulary "
        f"{workload['vocab_size']:,}. Median of {report['settings']['repeats']} interleaved repeats after a warm-up; "
        f"seconds are {report['settings']['clock']}"
        + (" (one thread: the work done, whatever else runs on the machine)." if machine["threads"] == 1 else "."),
    ]  # fmt: skip
    if with_accuracy:
        split = report["accuracy_split"]
        lines.append(
            f"Accuracy: the test split of {split['model_dir']} ({split['texts']:,} texts) through `hf_rnn.predict`, "
            "tokenization included (texts/s)."
        )
    lines += [f"Note: {note}" for note in report["notes"]]
    header = "| row | tokens/s (W) | vs fp32 | model size |"
    rule = "|---|---:|---:|---:|"
    if with_accuracy:
        header += " accuracy | texts/s (test split) |"
        rule += "---:|---:|"
    lines += ["", header + " what |", rule + "---|"]
    for row in report["rows"]:
        line = (
            f"| {row['name']} | {row['tokens_per_s']:,.0f} | {row['ratio']:.2f}x | "
            f"{row['model_bytes'] / 2**20:,.1f} MiB |"
        )
        if with_accuracy:
            line += f" {100 * row['accuracy']:.2f}% | {row['texts_per_s']:,.0f} |" if "accuracy" in row else " | |"
        lines.append(line + f" {row['description']} |")
    if report["targets"]:
        lines += ["", "| target | measured | goal | met |", "|---|---:|---:|---|"]
        lines += [
            f"| {t['target']} | {t['value']:.2f} | {t['goal']:.2f} | {'yes' if t['met'] else 'no'} |"
            for t in report["targets"]
        ]
    return "\n".join(lines) + "\n"


__all__ = ["run_deploy_benchmark", "format_deploy_table", "quantize_torch_int8", "ROWS"]
