"""How hf_rnn's defaults were chosen: the same models trained with each candidate default on every embedded dataset.

    python scripts/defaults_study.py [--output-dir hf_rnn_outputs/reproduce] [--datasets imdb,trec]

For each dataset (its recipe below), each model (simple RNN, BiGRU, BiLSTM) and each candidate setting (PyTorch's or
Keras' initializer; last or mean pooling), it trains the recipe with the setting and records the test accuracy and
macro-F1. Each run's model directory is kept (under `defaults_study/`), so an interrupted study resumes where it
stopped. It writes `defaults_study.json` and `defaults_study.md` (one table: a row per model and setting, a column per
dataset, the mean over datasets) to the output folder, `hf-rnn reproduce`'s by default, whose RESULTS.md then shows
the table under "How the defaults were chosen".
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from hf_rnn.cpu import cpu_name
from hf_rnn.recipes import load_recipe
from hf_rnn.training import train

# dataset -> the recipe that sets its data, tokenizer and training schedule
DATASETS = {
    "imdb": "imdb_base",  # reviews cut to their first 100 tokens, as in the tutorials
    "rotten_tomatoes": "rotten_tomatoes_bilstm",
    "sms_spam": "sms_spam_bigru",
    "trec": "trec_bigru",
}
MODELS = ("simple_rnn", "bigru", "bilstm")
# name -> model fields laid over the model file
SETTINGS = {
    "pytorch init, last": {"initializer": "pytorch", "pooling": "last"},
    "keras init, last": {"initializer": "keras", "pooling": "last"},
    "keras init, mean": {"initializer": "keras", "pooling": "mean"},
}


def run(dataset: str, model: str, setting: str, output_dir: Path) -> dict:
    slug = f"{dataset}-{model}-{setting.replace(' ', '').replace(',', '-')}"
    model_dir = output_dir / "defaults_study" / slug
    if (model_dir / "metrics.json").is_file():
        metrics = json.loads((model_dir / "metrics.json").read_text())
        summary = json.loads((model_dir / "training_summary.json").read_text())
    else:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{slug}.yaml"
            recipe = {"extends": DATASETS[dataset], "model": {"base": model, **SETTINGS[setting]}}
            path.write_text(yaml.safe_dump(recipe))
            started = time.perf_counter()
            metrics = train(load_recipe(path), output_dir=model_dir, overwrite=True).metrics
            print(f"{slug}: accuracy {metrics['accuracy']:.4f} in {time.perf_counter() - started:.0f} s", flush=True)
        summary = json.loads((model_dir / "training_summary.json").read_text())
    return {
        "dataset": dataset,
        "model": model,
        "setting": setting,
        "accuracy": metrics["accuracy"],
        "f1_macro": metrics.get("f1_macro"),
        "train_runtime_s": summary["train_runtime_s"],
    }


def table(rows: list[dict], datasets: list[str]) -> str:
    lines = [
        "| model | setting | " + " | ".join(datasets) + " | mean |",
        "|---|---|" + "---:|" * (len(datasets) + 1),
    ]
    for model in MODELS:
        for setting in SETTINGS:
            found = {r["dataset"]: r["accuracy"] for r in rows if r["model"] == model and r["setting"] == setting}
            if len(found) < len(datasets):
                continue
            cells = [f"{100 * found[d]:.1f}" for d in datasets]
            mean = 100 * statistics.mean(found[d] for d in datasets)
            lines.append(f"| {model} | {setting} | " + " | ".join(cells) + f" | {mean:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="hf_rnn_outputs/reproduce")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    models = [m for m in args.models.split(",") if m]
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = [run(d, m, s, output_dir) for d in datasets for m in models for s in SETTINGS]
    report = {"cpu": cpu_name(), "datasets": {d: DATASETS[d] for d in datasets}, "settings": SETTINGS, "rows": rows}
    (output_dir / "defaults_study.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = (
        f"Test accuracy (%) per dataset, seed 42, one run each ({cpu_name()}); recipes: "
        + ", ".join(f"{d}: `{r}`" for d, r in report["datasets"].items())
        + ".\n\n"
        + table(rows, datasets)
    )
    (output_dir / "defaults_study.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
