"""The parts of a real `hf-rnn train` run around the model: tokenization speed, and training on a busy machine.

Both run on the embedded IMDB reviews with the quickstart recipe, as a user's first run does.

- Tokenization: reviews per second through the transformers tokenizer call (`tokenizer(texts, truncation=True)`),
  the Rust tokenizer's `encode_batch_fast`, `hf_rnn.tokenization.TextEncoder` (Arrow kernels for word-level
  tokenizers, what hf_rnn uses), and `tokenize_dataset` (the same plus the Arrow cache `hf-rnn train` writes), with
  the token ids compared.
- Busy machine: seconds per quickstart training step on the idle machine and with one and two other processes
  spinning on a core each (`python -c "while True: pass"`, not niced), with the thread count fixed at torch's default
  and adaptive (`hf_rnn.cpu.AdaptiveThreads`, the default of `hf-rnn train`). A condition stops after a time budget,
  so the slowest ones do not hold the benchmark up; seconds per step are averaged over the steps it made.
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import PrinterCallback, TrainerCallback

# (name, busy processes beside training)
BUSY_CONDITIONS = (("idle", 0), ("one other process busy", 1), ("two other processes busy", 2))


class _StepTimer(TrainerCallback):
    """Seconds of each training step; stops training once `budget` seconds have passed."""

    def __init__(self, budget: float):
        self.budget, self.steps = budget, []

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = self._last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.steps.append(now - self._last)
        self._last = now
        if now - self._start > self.budget:
            control.should_training_stop = True


def _quickstart(quick: bool, work_dir: Path, steps: int):
    """The quickstart recipe's tokenized splits, tokenizer and labels, cut to `steps` training steps."""
    from ..recipes import load_recipe
    from ..training import prepare_datasets, training_arguments

    overrides = [
        f"training.max_steps={steps}",
        "training.eval_strategy='no'",
        "training.save_strategy='no'",
        "training.early_stopping_patience=null",
        "training.logging_steps=1000000",
    ]
    if quick:
        overrides += ["data.max_train_samples=512", "data.max_eval_samples=64"]
    recipe = load_recipe("quickstart", overrides=overrides)
    args = training_arguments(recipe, work_dir / "checkpoints")
    args.disable_tqdm = True
    datasets, label_names, tokenizer = prepare_datasets(recipe, work_dir, args)
    return recipe, args, datasets, label_names, tokenizer


def busy_machine_section(quick: bool, seed: int, work_dir: Path, log=print) -> dict:
    """Seconds per quickstart training step, idle and beside busy processes, fixed vs adaptive thread count."""
    from ..data import PaddingCollator
    from ..training import RecurrentTrainer, build_model

    steps, budget = (8, 10.0) if quick else (120, 60.0)
    recipe, args, datasets, label_names, tokenizer = _quickstart(quick, work_dir, steps)
    threads = torch.get_num_threads()
    rows = []
    for condition, busy_count in BUSY_CONDITIONS:
        for adaptive in (False, True):
            log(f"busy machine: {condition}, {'adaptive' if adaptive else 'fixed'} thread count")
            busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy_count)]
            try:
                time.sleep(0.5)  # let the busy processes take their cores
                torch.set_num_threads(threads)
                transformers.set_seed(seed)
                timer = _StepTimer(budget)
                trainer = RecurrentTrainer(
                    model=build_model(recipe, tokenizer, label_names),
                    args=args,
                    train_dataset=datasets["train"],
                    processing_class=tokenizer,
                    data_collator=PaddingCollator(pad_token_id=tokenizer.pad_token_id),
                    callbacks=[timer],
                    adaptive_threads=adaptive,
                )
                trainer.remove_callback(PrinterCallback)
                trainer.train()
            finally:
                for process in busy:
                    process.kill()
                    process.wait()
            measured = timer.steps[2:] or timer.steps  # the first steps warm up
            rows.append(
                {
                    "condition": condition,
                    "busy_processes": busy_count,
                    "threads": "adaptive" if adaptive else f"fixed ({threads})",
                    "steps": len(timer.steps),
                    "seconds_per_step": statistics.mean(measured),
                }
            )
    torch.set_num_threads(threads)
    idle = {row["threads"]: row["seconds_per_step"] for row in rows if row["busy_processes"] == 0}
    for row in rows:
        row["slowdown_vs_idle_fixed"] = row["seconds_per_step"] / idle[f"fixed ({threads})"]
    return {"recipe": "quickstart", "max_steps": steps, "budget_seconds": budget, "rows": rows}


def tokenization_section(quick: bool, log=print) -> dict:
    """IMDB reviews per second through three tokenization paths, and whether their token ids agree."""
    from datasets import Dataset

    from ..data import DataSpec, load_splits
    from ..tokenization import TextEncoder, TokenizerSpec, build_tokenizer, tokenize_dataset

    splits, _ = load_splits(DataSpec(dataset="imdb"))
    texts = list(splits["train"]["text"])[: 2000 if quick else None]
    tokenizer = build_tokenizer(TokenizerSpec(max_length=256), texts)
    log(f"tokenization: {len(texts):,} IMDB reviews")

    def timed(run):
        started = time.perf_counter()
        result = run()
        return time.perf_counter() - started, result

    call_seconds, reference = timed(lambda: tokenizer(texts, truncation=True)["input_ids"])
    encoder = TextEncoder(tokenizer)
    rust_seconds, rust = timed(lambda: [encoding.ids for encoding in encoder.backend.encode_batch_fast(texts)])
    encoder_seconds, encoded = timed(lambda: encoder(texts))
    dataset = Dataset.from_dict({"text": texts})
    dataset_seconds, tokenized = timed(lambda: tokenize_dataset(dataset, tokenizer))
    return {
        "reviews": len(texts),
        "rows": [
            {"path": "transformers tokenizer call", "reviews_per_s": len(texts) / call_seconds},
            {"path": "tokenizers encode_batch_fast (Rust)", "reviews_per_s": len(texts) / rust_seconds},
            {"path": "hf_rnn TextEncoder (Arrow kernels)", "reviews_per_s": len(texts) / encoder_seconds},
            {"path": "hf_rnn tokenize_dataset (+ Arrow cache)", "reviews_per_s": len(texts) / dataset_seconds},
        ],
        "same_ids": rust == reference and encoded == reference and tokenized["input_ids"] == reference,
    }
