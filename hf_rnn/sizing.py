"""How big a recipe's model is, known before any data is read: a model that cannot fit in this machine's memory is
refused during validation, naming the key that makes it so big, instead of failing in the allocator after data loading
and tokenizer training.

The parameters are counted on a model built on the `meta` device (no memory is allocated); training needs about four
fp32 copies of them (weights, gradients and Adam's two moments), which is what is compared with the memory here.
"""

import dataclasses
import math
from dataclasses import dataclass

import psutil
import torch

from .registry import head_class

# bytes per parameter to train with Adam in fp32: weights, gradients, first and second moments
TRAINING_BYTES_PER_PARAMETER = 16
# the config keys that size the model, and the tokenizer key that sizes its embedding table
SIZE_KEYS = ("hidden_size", "embedding_dim", "num_layers", "classifier_hidden_sizes", "frontend_config")
# `tokenizer.max_tokens` caps the vocabulary; the data bounds it too, so a large cap is counted as at most this
_VOCABULARY_ESTIMATE_CAP = 1_000_000


@dataclass
class Oversized:
    """A model too big to train here: its parameter count (inf when not even countable), the bytes training it
    needs, the memory there is, and the recipe key whose default would shrink it most (`tokenizer.max_tokens` or
    `model.<field>`)."""

    parameters: float
    training_bytes: float
    memory_bytes: int
    key: str | None


def count_parameters(spec, vocab_size: int) -> float:
    """Parameters of the model a `ModelSpec` describes with a vocabulary of `vocab_size`, counted without
    allocating them; `inf` when the sizes overflow what a tensor can hold."""
    layers = spec.config.get("num_layers")
    if isinstance(layers, int) and layers > 2:
        # layers after the first are all alike: count one and two layers and extrapolate (building 10**6 is slow)
        one, two = (count_parameters(_with(spec, num_layers=n), vocab_size) for n in (1, 2))
        return one + (layers - 1) * (two - one)
    try:
        config = spec.build_config(vocab_size=vocab_size, id2label={0: "0", 1: "1"})
        with torch.device("meta"):
            model = head_class(spec.model_type)(config)
    except (RuntimeError, OverflowError, MemoryError):
        return math.inf
    return float(sum(parameter.numel() for parameter in model.parameters()))


def _with(spec, **config):
    return dataclasses.replace(spec, config={**spec.config, **config})


def _format_bytes(size: float) -> str:
    if math.isinf(size):
        return "more than any machine has"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:,.1f} {unit}"
        size /= 1024
    return ""


def describe(oversized: Oversized) -> str:
    """`about 4.0e+18 parameters (64.0 EiB to train, 125.5 GiB of memory here)` for a message."""
    count = (
        "too many parameters to count"
        if math.isinf(oversized.parameters)
        else (f"about {oversized.parameters:.2g} parameters")
    )
    return (
        f"{count}, needing {_format_bytes(oversized.training_bytes)} to train (weights, gradients and Adam moments "
        f"in fp32) while this machine has {_format_bytes(oversized.memory_bytes)} of memory"
    )


def check_size(spec, max_tokens: int) -> Oversized | None:
    """An [`Oversized`] when training the model of `spec` with a vocabulary of up to `max_tokens` needs more than
    this machine's memory (RAM, or the largest GPU's when there is one), else None."""
    memory = psutil.virtual_memory().total
    if torch.cuda.is_available():
        memory = max(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count()))
    vocab = min(max_tokens, _VOCABULARY_ESTIMATE_CAP)
    parameters = count_parameters(spec, vocab)
    if parameters * TRAINING_BYTES_PER_PARAMETER <= memory:
        return None
    # name the key whose default shrinks the model most
    shrunk = {"tokenizer.max_tokens": count_parameters(spec, 20_000)} if vocab > 20_000 else {}
    for key in SIZE_KEYS:
        if key in spec.config:
            config = {name: value for name, value in spec.config.items() if name != key}
            shrunk[f"model.{key}"] = count_parameters(dataclasses.replace(spec, config=config), vocab)
    key = min(shrunk, key=shrunk.get) if shrunk and min(shrunk.values()) < parameters else None
    return Oversized(parameters, parameters * TRAINING_BYTES_PER_PARAMETER, memory, key)
