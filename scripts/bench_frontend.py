"""Measure what the frontend feature cache buys: first epoch vs later epochs of a frozen-MiniLM recurrent classifier.

The first epoch of a cached run encodes the training texts once (MiniLM, in eval mode, length-sorted batches) and
then trains the recurrent layers on the features; every later epoch trains on the cached features only. For
reference the script also times one epoch that runs the encoder at every step (`model.cache_frontend: false`).
Everything goes through the real recipe, tokenizer, collator and Trainer; evaluation and checkpoints are off so that
only training is timed. The feature cache is written to a fresh temporary folder, so the first epoch is always cold.

    python scripts/bench_frontend.py                                  # SMS spam, 2,000 messages, all 6 layers
    python scripts/bench_frontend.py --recipe trec_minilm_bigru --samples 1000 --layers 2 --bf16
    python scripts/bench_frontend.py --threads 1      # steadier on a shared machine

On a busy 2-core machine, two OpenMP threads per recurrent step can be 50x slower than one (threads wait for each
other at every time step), so timings taken there with the default thread count say more about the neighbours.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import datasets
import torch
import transformers
from transformers import Trainer

from hf_rnn.benchmark import EpochTimer
from hf_rnn.data import PaddingCollator
from hf_rnn.frontends import add_frontend_features
from hf_rnn.recipes import load_recipe
from hf_rnn.training import build_model, prepare_datasets, training_arguments


def _train_epochs(model, dataset, args, tokenizer, epochs: int) -> list[float]:
    timer = EpochTimer()
    args.num_train_epochs = epochs
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=PaddingCollator(pad_token_id=tokenizer.pad_token_id),
        callbacks=[timer],
    )
    trainer.train()
    return timer.seconds


def measure_feature_cache(
    recipe: str = "sms_spam_minilm_bigru",
    samples: int = 2000,
    epochs: int = 3,
    layers: int | None = None,
    bf16: bool = False,
    uncached: bool = True,
) -> dict:
    """Times the cache build, each cached epoch and (optionally) one uncached epoch; returns them with the ratio of
    the first epoch (cache build + training) to the mean later epoch."""
    overrides = [
        f"data.max_train_samples={samples}",
        "training.eval_strategy='no'",
        "training.save_strategy='no'",
        "training.early_stopping_patience=null",
        "model.cache_frontend=false",  # the features are added below, timed on their own
    ]
    if layers is not None:
        overrides.append(f"model.frontend_layers={layers}")
    spec = load_recipe(recipe, overrides=overrides)
    with tempfile.TemporaryDirectory(prefix="hf-rnn-bench-frontend-") as work:
        work = Path(work)
        datasets.config.HF_DATASETS_CACHE = str(work / "datasets")
        args = training_arguments(spec, work / "checkpoints")
        args.disable_tqdm = True
        tokenized, label_names, tokenizer = prepare_datasets(spec, work, args)
        train_rows = tokenized["train"]
        transformers.set_seed(spec.training.seed)
        model = build_model(spec, tokenizer, label_names)

        started = time.perf_counter()
        cached = add_frontend_features(
            train_rows,
            model.base_model.frontend,
            model.config.frontend_output,
            bf16=bf16,
            cache_dir=work / "features",
        )
        encode_seconds = time.perf_counter() - started
        epoch_seconds = _train_epochs(model, cached, args, tokenizer, epochs)
        uncached_seconds = None
        if uncached:
            transformers.set_seed(spec.training.seed)
            fresh = build_model(spec, tokenizer, label_names)
            uncached_seconds = _train_epochs(fresh, train_rows, args, tokenizer, 1)[0]

    first = encode_seconds + epoch_seconds[0]
    later = sum(epoch_seconds[1:]) / max(1, len(epoch_seconds) - 1)
    return {
        "recipe": recipe,
        "train_texts": len(train_rows),
        "mean_tokens": round(sum(train_rows["length"]) / len(train_rows), 1),
        "encoder_layers": model.config.frontend_config.num_hidden_layers,
        "bf16": bf16,
        "torch_threads": torch.get_num_threads(),
        "encode_s": round(encode_seconds, 2),
        "cached_epoch_s": [round(s, 2) for s in epoch_seconds],
        "first_epoch_s": round(first, 2),
        "later_epoch_s": round(later, 2),
        "first_over_later": round(first / later, 1),
        "uncached_epoch_s": None if uncached_seconds is None else round(uncached_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="sms_spam_minilm_bigru")
    parser.add_argument("--samples", type=int, default=2000, help="training texts")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--layers", type=int, help="keep the first N encoder layers")
    parser.add_argument("--bf16", action="store_true", help="encode under bfloat16 autocast")
    parser.add_argument("--no-uncached", dest="uncached", action="store_false", help="skip the uncached epoch")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    options = parser.parse_args()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    result = measure_feature_cache(
        options.recipe, options.samples, options.epochs, options.layers, options.bf16, options.uncached
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
