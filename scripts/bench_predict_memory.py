"""Memory of `hf-rnn predict --file` on a large input: it streams in batches, so memory stays flat.

    python scripts/bench_predict_memory.py                      # 100,000 lines, a tiny model trained first
    python scripts/bench_predict_memory.py --lines 20000 --model-dir hf_rnn_outputs/quickstart

Writes N lines of IMDB-like text, runs `hf-rnn predict MODEL --file IN --output OUT.jsonl` in a subprocess, samples
its resident memory (VmRSS from /proc, Linux) and the number of result lines written, and prints a table of memory
against progress. Flat memory means the RSS at 100% is close to the RSS at 10%.
"""

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = "the a film movie great terrible acting plot story boring wonderful scenes music cast director ending".split()


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def tiny_model(folder: Path) -> Path:
    from hf_rnn.recipes import load_recipe
    from hf_rnn.training import train

    overrides = ["data.max_train_samples=512", "data.max_eval_samples=128", "training.num_train_epochs=1"]
    overrides += ["tokenizer.max_length=128", "model.hidden_size=32"]
    return train(load_recipe("imdb_bilstm_100", overrides=overrides), output_dir=folder / "model").output_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir = args.model_dir or tiny_model(folder)
        rng = random.Random(0)
        source, output = folder / "in.txt", folder / "out.jsonl"
        with source.open("w", encoding="utf-8") as handle:
            for _ in range(args.lines):
                handle.write(" ".join(rng.choices(WORDS, k=rng.randint(5, 120))) + "\n")

        command = ["hf-rnn", "predict", str(model_dir), "--file", str(source), "--output", str(output)]
        command += ["--batch-size", str(args.batch_size)]
        started = time.perf_counter()
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        samples = []
        while process.poll() is None:
            rss = rss_mib(process.pid)
            if rss is not None:
                samples.append((count_lines(output) / args.lines, rss))
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
        if process.returncode != 0:
            sys.exit(f"hf-rnn predict failed with exit code {process.returncode}")

    print(f"{args.lines:,} lines in {elapsed:.1f} s ({args.lines / elapsed:,.0f} lines/s), batch {args.batch_size}")
    print("| progress | RSS (MiB) |\n|---:|---:|")
    for target in (0.1, 0.25, 0.5, 0.75, 0.99):
        reached = [rss for progress, rss in samples if progress >= target]
        if reached:
            print(f"| {target:.0%} | {reached[0]:.0f} |")
    print(f"| peak | {max(rss for _, rss in samples):.0f} |")


if __name__ == "__main__":
    main()
