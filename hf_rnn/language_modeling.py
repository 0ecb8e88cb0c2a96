"""Training and using recurrent language models (`model.task: causal_lm`): data, Trainer parts, metrics, generation.

`hf_rnn.training.train` runs the same steps for every recipe and asks this module for the parts that differ for a
language model:

- the data: the texts of any text column (labels, if any, are ignored), split as for classifiers (the embedded
  datasets' seeded, stratified carving, so IMDB's held-out reviews are the classifiers' test reviews), tokenized with
  `[BOS]` before and `[EOS]` after each text, concatenated and cut into blocks of `tokenizer.max_length` tokens (as
  transformers' `run_clm.py` does; the last partial block of each split is dropped);
- the model: `*ForCausalLM` of the recipe's cell type;
- the Trainer: labels are the inputs (the model shifts them), the loss is the mean next-token cross-entropy, and
  `train_accuracy` counts correct next-token guesses;
- the metrics: `loss`, `perplexity` = exp(loss) and `bits_per_token` = loss / ln 2 on the held-out split; for a
  character tokenizer that is `bits_per_character` (`[EOS]`, one per text, counts as a character).

`evaluate_language_model` scores a saved model as training's final evaluation does, for `hf-rnn eval`;
`generate_text` runs `model.generate` on prompts for `hf-rnn generate`.
"""

import math
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path

import torch
import transformers
from datasets import Dataset, DatasetDict
from transformers import GenerationConfig, PreTrainedTokenizerBase, Trainer, TrainingArguments

from . import CAUSAL_LM_CLASSES
from .data import EMBEDDED_DATASETS, DataSpec, PaddingCollator, _carve, _load_external, _take, load_splits
from .model_dir import read_recipe
from .modeling_rnn_lm import RecurrentForCausalLM
from .recipes import Recipe, RecipeError
from .tokenization import TextEncoder
from .trainer import RecurrentTrainer
from .training import _metrics_only, load_model_dir, prepare_tokenizer
from .training_spec import evaluation_arguments


def load_text_splits(spec: DataSpec) -> DatasetDict:
    """Train, validation and test splits of the texts in `spec.text_column`, whatever else the data holds.

    Data with a label column is split exactly as `hf_rnn.data.load_splits` splits it for classifiers. Text-only
    data (no `spec.label_column`) is carved with the same seeded split, as if every row had one label.
    """
    if spec.dataset in EMBEDDED_DATASETS:
        return load_splits(spec)[0].remove_columns("label")
    source, where = _load_external(spec)
    if all(spec.label_column in split.column_names for split in source.values()):
        return load_splits(spec)[0].remove_columns("label")
    used = [name for name in (spec.train_split, spec.validation_split, spec.test_split) if name is not None]
    for name in used:
        if name not in source:
            raise ValueError(f"Split {name!r} not found in {where}. Available splits: {', '.join(source)}.")
        if spec.text_column not in source[name].column_names:
            raise ValueError(
                f"Column {spec.text_column!r} not found in split {name!r} of {where}. Available columns: "
                f"{', '.join(source[name].column_names)}. Set data.text_column."
            )

    def texts(split: Dataset) -> Dataset:
        # the carving is stratified by label: one constant label makes it a plain seeded split
        return split.map(
            lambda batch: {
                "text": ["" if t is None else str(t) for t in batch[spec.text_column]],
                "label": [0] * len(batch[spec.text_column]),
            },
            batched=True,
            remove_columns=split.column_names,
            desc="Reading texts",
        )

    fractions = {
        "test": spec.test_size if spec.test_split is None else 0.0,
        "validation": spec.validation_size if spec.validation_split is None else 0.0,
    }
    train, carved = _carve(texts(source[spec.train_split]), fractions, spec.seed, where)
    splits = {
        "train": train,
        "validation": texts(source[spec.validation_split]) if spec.validation_split else carved["validation"],
        "test": texts(source[spec.test_split]) if spec.test_split else carved["test"],
    }
    limits = {"train": spec.max_train_samples, "validation": spec.max_eval_samples, "test": spec.max_eval_samples}
    return DatasetDict({name: _take(ds, limits[name], spec.seed) for name, ds in splits.items()}).remove_columns(
        "label"
    )


def causal_lm_blocks(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, block_size: int) -> Dataset:
    """Tokenizes texts as `[BOS] text [EOS]`, concatenates them and cuts the stream into `block_size`-token rows
    with `input_ids` and `length`; the last partial block is dropped."""
    eos = tokenizer.eos_token_id
    encode = TextEncoder(tokenizer)
    # no truncation: a text longer than a block continues in the next one
    encode.backend.no_truncation()

    def to_blocks(batch: dict[str, list]) -> dict[str, list]:
        encoded = encode(batch["text"])
        stream = list(chain.from_iterable(ids + [eos] for ids in encoded))
        usable = len(stream) // block_size * block_size
        blocks = [stream[start : start + block_size] for start in range(0, usable, block_size)]
        return {"input_ids": blocks, "length": [block_size] * len(blocks)}

    # large batches lose little at block boundaries (each batch drops its own remainder)
    return dataset.map(
        to_blocks, batched=True, batch_size=2000, remove_columns=dataset.column_names, desc="Cutting into blocks"
    )


def prepare_causal_lm_datasets(recipe: Recipe, work_dir: Path, args: TrainingArguments):
    """Splits, tokenizer (trained on the training texts, with [BOS] / [EOS]) and the splits cut into blocks."""
    with args.main_process_first(desc="data", local=False):
        splits = load_text_splits(recipe.data)
    tokenizer = prepare_tokenizer(recipe, splits["train"]["text"], work_dir, args)
    with args.main_process_first(desc="tokenization"):
        blocks = DatasetDict(
            {name: causal_lm_blocks(split, tokenizer, recipe.tokenizer.max_length) for name, split in splits.items()}
        )
    for name, split in blocks.items():
        if len(split) == 0:
            raise RecipeError(
                f"data: the {name} split holds fewer than tokenizer.max_length={recipe.tokenizer.max_length} tokens; "
                "use more data (data.max_eval_samples, data.max_train_samples) or a smaller max_length."
            )
    return blocks, tokenizer


def build_causal_lm(recipe: Recipe, tokenizer: PreTrainedTokenizerBase):
    """The recipe's `*ForCausalLM`, sized to the tokenizer, with its special tokens in the config."""
    config = recipe.model.build_config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = CAUSAL_LM_CLASSES[recipe.model.model_type](config)
    # saved as generation_config.json: `generate` and the pipeline stop at [EOS] and pad with [PAD]
    model.generation_config = GenerationConfig.from_model_config(config)
    return model


class CausalLMCollator(PaddingCollator):
    """Pads like `PaddingCollator` and adds `labels`: the input ids, -100 at padding (the model shifts them)."""

    def __call__(self, features):
        batch = super().__call__([{"input_ids": f["input_ids"]} for f in features])
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return batch


def causal_lm_trainer_class(base: type[Trainer]) -> type[Trainer]:
    """`base` (hf_rnn's `RecurrentTrainer`) with `train_accuracy` counted on next-token predictions."""

    class CausalLMTrainer(base):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.get("labels")
            loss, outputs = Trainer.compute_loss(
                self, model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
            )
            if labels is not None and model.training:
                # logits at position t predict the token at t + 1
                predictions = outputs.logits[:, :-1].detach().argmax(-1)
                targets = labels[:, 1:]
                keep = targets != -100
                self._correct += int((predictions[keep] == targets[keep]).sum())
                self._seen += int(keep.sum())
            return (loss, outputs) if return_outputs else loss

    return CausalLMTrainer


def language_model_metrics(metrics: dict[str, float], recipe: Recipe) -> dict[str, float]:
    """Adds perplexity and bits per token (per character for a character tokenizer) to a result with `loss`."""
    loss = metrics["loss"]
    bits = "bits_per_character" if recipe.tokenizer.kind == "char" else "bits_per_token"
    return {**metrics, "perplexity": math.exp(loss), bits: loss / math.log(2)}


def load_language_model(model_dir: str | Path, allow_pickle: bool = False):
    """The language model and tokenizer of a model directory (see `hf_rnn.training.load_model_dir`), in eval mode;
    a classifier's directory is refused."""
    model, tokenizer = load_model_dir(model_dir, allow_pickle=allow_pickle)
    if not isinstance(model, RecurrentForCausalLM):
        raise ValueError(
            f"{model_dir} holds a {type(model).__name__}, not a language model; train one with a recipe whose "
            "model.task is causal_lm (e.g. `hf-rnn train imdb_char_lstm`)."
        )
    return model, tokenizer


def evaluate_language_model(
    model_dir: str | Path,
    data: DataSpec | None = None,
    split: str = "test",
    allow_pickle: bool = False,
    bf16: bool = False,
) -> dict[str, float]:
    """Loss, perplexity and bits per token (per character for a character tokenizer) of a saved language model on a
    split of its recipe's data, or of `data`.

    The texts are cut into blocks of the recipe's `tokenizer.max_length` tokens and scored in batches of its
    `training.per_device_eval_batch_size`, as training's final evaluation does: on the recipe's own data (which keeps
    its `max_eval_samples`), the `test` split gives the metrics.json of the run (one computed under bf16 with
    `training.bf16` needs `bf16=True` to match). With `bf16`, the model runs under bf16 autocast.

    Args:
        model_dir (`str` or `Path`): a directory written by `hf-rnn train` for a `model.task: causal_lm` recipe.
        data ([`DataSpec`], *optional*): other texts to score; defaults to the recipe's `data` section.
        split (`str`, *optional*, defaults to `"test"`): `train`, `validation` or `test`.
        allow_pickle (`bool`, *optional*, defaults to `False`): see [`load_model_dir`].
        bf16 (`bool`, *optional*, defaults to `False`): run under bf16 autocast.
    """
    model, tokenizer = load_language_model(model_dir, allow_pickle=allow_pickle)
    recipe = read_recipe(model_dir)
    data = recipe.data if data is None else data
    blocks = causal_lm_blocks(load_text_splits(data)[split], tokenizer, recipe.tokenizer.max_length)
    if len(blocks) == 0:
        raise ValueError(
            f"the {split} split of {data.dataset!r} holds fewer tokens than one block of the model's recipe "
            f"(tokenizer.max_length={recipe.tokenizer.max_length}); evaluate on more text."
        )
    args = evaluation_arguments(recipe.training.per_device_eval_batch_size, bf16)
    # the loss is the metric: the Trainer need not keep every position's logits over the vocabulary
    args.prediction_loss_only = True
    trainer = RecurrentTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        data_collator=CausalLMCollator(pad_token_id=tokenizer.pad_token_id),
        flush_denormal=recipe.training.flush_denormal,
    )
    metrics = _metrics_only(trainer.evaluate(blocks, metric_key_prefix=split), split)
    return language_model_metrics(metrics, recipe)


def generate_text(
    model,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Iterable[str],
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_beams: int = 1,
    do_sample: bool = True,
    seed: int | None = None,
) -> Iterator[str]:
    """Continues each prompt with `model.generate` and yields prompt + continuation, special tokens removed.

    Sampling (`do_sample`) draws from the softmax at `temperature`, restricted to the `top_k` likeliest tokens and
    to the smallest set holding `top_p` of the probability; `do_sample=False` is greedy search, or beam search
    with `num_beams > 1`. `seed` makes sampling repeatable.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens}.")
    if num_beams < 1:
        raise ValueError(f"num_beams must be a positive integer, got {num_beams}.")
    if do_sample:
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}; use do_sample=False for greedy.")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k}.")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
    if seed is not None:
        transformers.set_seed(seed)
    options = {"max_new_tokens": max_new_tokens, "num_beams": num_beams, "do_sample": do_sample}
    if do_sample:
        # 0 / 1.0 switch the filters off, whatever the model's generation_config says
        options.update(temperature=temperature, top_k=top_k or 0, top_p=top_p or 1.0)
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
        with torch.no_grad():
            output = model.generate(**inputs, **options)
        yield tokenizer.decode(output[0], skip_special_tokens=True)
