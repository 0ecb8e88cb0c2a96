"""Batched prediction with a trained or exported hf_rnn classifier: `hf_rnn.predict` and `hf_rnn.iter_predict`.

Both take a model directory (`hf-rnn train`'s output), an export folder (`hf-rnn export`'s output, run with
onnxruntime), a loaded model with its tokenizer, or a `Predictor` built once with `load_predictor`. Texts are
tokenized, sorted by length and cut into batches that are each padded only to their own longest text (padding is most
of an RNN's cost), and the results come back in input order as `{"text", "label", "score"}` dicts, `score` being
the softmax probability of `label`.

- `predict(model, texts)` returns a list: every text is sorted at once, so batches carry the least padding.
- `iter_predict(model, texts)` streams: it reads `buffer_size` texts at a time, sorts and predicts them, and yields
  their results in input order before reading more, so memory stays flat on files of any size (`hf-rnn predict`).

```python
>>> import hf_rnn
>>> hf_rnn.predict("hf_rnn_outputs/quickstart", ["A wonderful film.", "Two hours I will never get back."])
[{'text': 'A wonderful film.', 'label': 'pos', 'score': 0.99...}, {'text': ..., 'label': 'neg', 'score': 0.99...}]
```

This module imports neither torch nor transformers until a PyTorch model is used, so predicting with an ONNX export
works where only onnxruntime, tokenizers and numpy are installed.
"""

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Protocol

import numpy as np

from .onnx_runtime import OnnxClassifier, read_manifest

BACKENDS = ("auto", "torch", "onnx")
# rows per forward pass: on a 2-core CPU, length-sorted batches of 64 predicted about 1.5x faster than batches of
# 256 (see hf_rnn/benchmark.py)
DEFAULT_BATCH_SIZE = 64


class Predictor(Protocol):
    """What `predict` needs from a backend: token ids for texts, logits for a batch of them, and the labels."""

    id2label: dict[int, str]

    def encode(self, texts: list[str]) -> list[list[int]]: ...

    def logits(self, batch: list[list[int]]) -> np.ndarray: ...


class TorchPredictor:
    """
    A PyTorch hf_rnn classifier (or a `--format exported-program` export) as a `Predictor`.

    Args:
        model (`RecurrentForSequenceClassification` or `torch.nn.Module`):
            The model, put in eval mode; or an exported program's module returning logits.
        tokenizer (`PreTrainedTokenizerBase`):
            Its tokenizer.
        id2label (`dict[int, str]`, *optional*):
            The labels; default: `model.config.id2label`.
        bf16 (`bool`, *optional*, defaults to `False`):
            Run under bf16 autocast: about 1.5x faster on CPUs with native bf16 (AVX512-BF16, AMX) and on recent
            GPUs, with scores that differ from fp32 in the second or third decimal.
    """

    def __init__(self, model, tokenizer, id2label: dict[int, str] | None = None, bf16: bool = False):
        from .data import PaddingCollator
        from .tokenization import TextEncoder

        # an exported program's module takes (input_ids, attention_mask), returns the logits and has no eval()
        self.returns_logits = not hasattr(model, "config")
        self.model = model if self.returns_logits else model.eval()
        self.tokenizer = tokenizer
        self.id2label = id2label if id2label is not None else dict(model.config.id2label)
        self.bf16 = bf16
        self.collator = PaddingCollator(pad_token_id=tokenizer.pad_token_id)
        # tokenizer(texts, truncation=True)["input_ids"], through the Rust tokenizer's fast batch path
        self.encoder = TextEncoder(tokenizer)

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.encoder(texts)

    def logits(self, batch: list[list[int]]) -> np.ndarray:
        import torch

        from .cpu import flushed_denormals

        inputs = self.collator([{"input_ids": ids} for ids in batch])
        device = torch.device("cpu") if self.returns_logits else self.model.device
        # denormals flushed to zero: recurrent steps produce them, and x86 cores handle them in slow microcode
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16),
            flushed_denormals(),
        ):
            if self.returns_logits:
                if inputs["input_ids"].shape[1] == 0:
                    inputs = {name: torch.zeros(len(batch), 1, dtype=torch.long) for name in inputs}
                    inputs["input_ids"].fill_(self.tokenizer.pad_token_id)
                logits = self.model(inputs["input_ids"], inputs["attention_mask"])
            else:
                logits = self.model(**{name: value.to(device) for name, value in inputs.items()}).logits
        return logits.float().cpu().numpy()


def load_predictor(
    model_or_dir, tokenizer=None, backend: str = "auto", allow_pickle: bool = False, bf16: bool = False
) -> Predictor:
    """
    A `Predictor` for `predict` / `iter_predict`, built once (loading a model takes a while; predicting many small
    requests with one predictor does not reload it).

    Args:
        model_or_dir (`str`, `Path`, a model, or a `Predictor`):
            A model directory (`hf-rnn train`), an export folder (`hf-rnn export`), a loaded hf_rnn model (then
            `tokenizer` is required), or a `Predictor`, returned as it is.
        tokenizer (`PreTrainedTokenizerBase`, *optional*):
            The tokenizer of a loaded model.
        backend (`str`, *optional*, defaults to `"auto"`):
            `"torch"`, `"onnx"` (an ONNX export run with onnxruntime, no torch imported), or `"auto"`: onnx for an
            ONNX export folder, torch otherwise.
        allow_pickle (`bool`, *optional*, defaults to `False`):
            Load pickled `.bin` weights of a model directory without safetensors (see `load_model_dir`).
        bf16 (`bool`, *optional*, defaults to `False`):
            Run a PyTorch model under bf16 autocast.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not supported; use one of {', '.join(BACKENDS)}.")
    if hasattr(model_or_dir, "encode") and hasattr(model_or_dir, "logits"):
        return model_or_dir
    if not isinstance(model_or_dir, (str, Path)):
        if backend == "onnx":
            raise ValueError("backend='onnx' runs an export folder; pass its path, not a loaded model.")
        if tokenizer is None:
            raise ValueError("predicting with a loaded model needs its tokenizer: pass tokenizer=...")
        return TorchPredictor(model_or_dir, tokenizer, bf16=bf16)
    folder = Path(model_or_dir)
    manifest = read_manifest(folder) if folder.is_dir() else None
    if backend == "onnx" or (backend == "auto" and manifest is not None and manifest["format"] == "onnx"):
        if bf16:
            raise ValueError("bf16 applies to PyTorch models; an ONNX export runs as exported (fp32 or int8).")
        return OnnxClassifier(folder)
    if manifest is not None and manifest["format"] == "onnx":
        raise ValueError(
            f"{folder} is an ONNX export, which runs with --backend onnx (backend='onnx'); for PyTorch, give the "
            "model directory it was exported from."
        )
    if manifest is not None:
        return _exported_program_predictor(folder, manifest, bf16)
    from .training import _refuse_language_model, load_model_dir

    model, loaded_tokenizer = load_model_dir(folder, allow_pickle=allow_pickle)
    _refuse_language_model(model, folder, "hf-rnn predict")
    return TorchPredictor(model, tokenizer or loaded_tokenizer, bf16=bf16)


def _exported_program_predictor(folder: Path, manifest: dict, bf16: bool) -> TorchPredictor:
    if manifest["format"] != "exported-program":
        raise ValueError(f"{folder}: unknown export format {manifest['format']!r}; export the model again.")
    import torch
    from transformers import AutoTokenizer

    program = torch.export.load(str(folder / manifest["file"]))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    id2label = {int(index): label for index, label in manifest["id2label"].items()}
    return TorchPredictor(program.module(), tokenizer, id2label=id2label, bf16=bf16)


def predict(
    model_or_dir,
    texts: str | Iterable[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    tokenizer=None,
    backend: str = "auto",
    allow_pickle: bool = False,
    bf16: bool = False,
) -> list[dict[str, str | float]]:
    """
    Labels texts: `{"text", "label", "score"}` per text, in input order.

    All texts are tokenized and sorted by length first, then run in batches of `batch_size`, each padded to its own
    longest text. For inputs too large to hold at once, use `iter_predict`.

    Args:
        model_or_dir (`str`, `Path`, a model, or a `Predictor`):
            See `load_predictor`: a model directory, an export folder, a loaded model (with `tokenizer`), or a
            `Predictor`.
        texts (`str` or `Iterable[str]`):
            The texts; a single string is one text.
        batch_size (`int`, *optional*, defaults to 64):
            Texts per forward pass.
        tokenizer, backend, allow_pickle, bf16:
            See `load_predictor`.

    Returns:
        `list[dict]`: one `{"text": str, "label": str, "score": float}` per text.
    """
    predictor = load_predictor(model_or_dir, tokenizer, backend, allow_pickle, bf16)
    texts = [texts] if isinstance(texts, str) else list(texts)
    _check_batch_size(batch_size)
    return _predict_all(predictor, texts, batch_size)


def iter_predict(
    model_or_dir,
    texts: Iterable[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    buffer_size: int | None = None,
    tokenizer=None,
    backend: str = "auto",
    allow_pickle: bool = False,
    bf16: bool = False,
) -> Iterator[dict[str, str | float]]:
    """
    Streams `{"text", "label", "score"}` predictions in input order, reading `texts` (a generator works) a buffer at
    a time: each buffer is sorted by length and run in batches of `batch_size`, and its results are yielded before
    the next buffer is read, so memory stays flat however many texts come in.

    Args:
        buffer_size (`int`, *optional*):
            Texts sorted together; default `16 * batch_size`. Larger buffers pad less, smaller ones answer sooner.
        other arguments:
            As in `predict`.
    """
    _check_batch_size(batch_size)
    buffer_size = buffer_size or 16 * batch_size
    _check_batch_size(buffer_size, "buffer_size")
    predictor = load_predictor(model_or_dir, tokenizer, backend, allow_pickle, bf16)
    iterator = iter([texts] if isinstance(texts, str) else texts)
    while buffer := list(islice(iterator, buffer_size)):
        yield from _predict_all(predictor, buffer, batch_size)


def _check_batch_size(value: int, name: str = "batch_size") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _predict_all(predictor: Predictor, texts: list, batch_size: int) -> list[dict[str, str | float]]:
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is a {type(text).__name__}, not a string.")
    if not texts:
        return []
    encoded = predictor.encode(texts)
    # length-sorted batches, each padded only to its own longest text
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    logits = np.concatenate(
        [
            predictor.logits([encoded[i] for i in order[start : start + batch_size]])
            for start in range(0, len(order), batch_size)
        ]
    ).astype(np.float32)
    # float32, as the model computes: scores do not show float64 digits that vary with the batch's padding
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    labels, scores = probabilities.argmax(-1), probabilities.max(-1)
    results: list = [None] * len(texts)
    for rank, index in enumerate(order):
        results[index] = {
            "text": texts[index],
            "label": predictor.id2label[int(labels[rank])],
            "score": float(scores[rank]),
        }
    return results


__all__ = ["predict", "iter_predict", "load_predictor", "Predictor", "TorchPredictor", "BACKENDS"]
