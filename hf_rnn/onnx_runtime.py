"""Running an exported hf_rnn classifier with onnxruntime and the `tokenizers` library, without torch.

`hf-rnn export MODEL_DIR OUT` (see `hf_rnn/export.py`) writes a self-contained folder:

    model.onnx                               the classifier: (input_ids, attention_mask) -> logits
    tokenizer.json, tokenizer_config.json    the model's own tokenizer (and its truncation length)
    config.json                              the model's config: labels, padding id
    export.json                              the manifest: format, inputs, quantization, versions, export check

This module needs only numpy, onnxruntime and tokenizers, so it runs in a serving image without torch or
transformers (`pip install --no-deps hf-rnn && pip install onnxruntime tokenizers numpy psutil`):

```python
>>> from hf_rnn.onnx_runtime import OnnxClassifier
>>> classifier = OnnxClassifier("exported/quickstart")
>>> classifier.logits(classifier.encode(["A wonderful film."]))
```

`hf_rnn.predict(folder, texts)` and `hf-rnn predict --backend onnx` use it.
"""

import json
from pathlib import Path

import numpy as np

MANIFEST = "export.json"
ONNX_FILE = "model.onnx"
PROGRAM_FILE = "model.pt2"

# transformers' "no limit" model_max_length (VERY_LARGE_INTEGER); anything this large means "do not truncate"
_NO_LIMIT = int(1e20)


def read_manifest(folder: str | Path) -> dict | None:
    """The manifest of an export folder, or None when `folder` is not one (no `export.json`)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); export the model again.") from None
    if not isinstance(manifest, dict) or "format" not in manifest or "file" not in manifest:
        raise ValueError(f"{path} is not an hf-rnn export manifest (no 'format' / 'file'); export the model again.")
    return manifest


def load_fast_tokenizer(folder: Path):
    """The folder's `tokenizer.json` as a `tokenizers.Tokenizer` that tokenizes as transformers'
    `tokenizer(texts, truncation=True)` does: special tokens added, truncated to `model_max_length` (from
    `tokenizer_config.json`) on the configured side, no padding (the caller pads per batch)."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no tokenizer.json; export the model again with `hf-rnn export`.")
    tokenizer = Tokenizer.from_file(str(path))
    settings = {}
    config_path = folder / "tokenizer_config.json"
    if config_path.is_file():
        settings = json.loads(config_path.read_text(encoding="utf-8"))
    tokenizer.no_padding()
    max_length = settings.get("model_max_length")
    if isinstance(max_length, (int, float)) and 0 < max_length < _NO_LIMIT:
        tokenizer.enable_truncation(int(max_length), direction=settings.get("truncation_side", "right"))
    else:
        tokenizer.no_truncation()
    return tokenizer


class OnnxClassifier:
    """
    An exported hf_rnn sequence classifier served by onnxruntime: tokenizes with the exported `tokenizer.json`,
    right-pads each batch to its own longest text, and returns logits. No torch, no transformers.

    Args:
        folder (`str` or `Path`):
            A folder written by `hf-rnn export` (`--format onnx`, with or without `--quantize int8`).
        threads (`int`, *optional*):
            onnxruntime intra-op threads; default: onnxruntime's own choice (one per physical core).

    Attributes:
        id2label (`dict[int, str]`): the labels, from the exported `config.json`.
        pad_token_id (`int`): the padding id.
        manifest (`dict`): the export's `export.json`.
    """

    def __init__(self, folder: str | Path, threads: int | None = None):
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not an export folder: no such folder.")
        manifest = read_manifest(folder)
        if manifest is None:
            raise FileNotFoundError(
                f"{folder} is not an ONNX export (no {MANIFEST}); write one with `hf-rnn export MODEL_DIR {folder}`."
            )
        if manifest["format"] != "onnx":
            raise ValueError(
                f"{folder} holds a {manifest['format']!r} export, not an ONNX one; export with --format onnx, or "
                "predict with --backend torch."
            )
        model_path = folder / manifest["file"]
        if not model_path.is_file():
            raise FileNotFoundError(f"{folder} has no {manifest['file']}; export the model again.")
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.folder = folder
        self.manifest = manifest
        self.id2label = {int(index): label for index, label in config["id2label"].items()}
        self.pad_token_id = int(config.get("pad_token_id") or 0)
        self.tokenizer = load_fast_tokenizer(folder)

        import onnxruntime

        options = onnxruntime.SessionOptions()
        # denormals flushed to zero, as hf_rnn's PyTorch inference does: recurrent steps produce them, and x86 cores
        # handle them in slow microcode
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text (special tokens included, truncated as the model was trained)."""
        # the fast batch path skips offsets and per-text Python objects (tokenizers >= 0.21)
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return [encoding.ids for encoding in encode(texts)]

    def logits(self, batch: list[list[int]]) -> np.ndarray:
        """Logits `(len(batch), num_labels)` of a batch of token id lists, right-padded to its longest one."""
        input_ids, attention_mask = pad_right(batch, self.pad_token_id)
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]


def pad_right(batch: list[list[int]], pad_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    """`(input_ids, attention_mask)` as int64 arrays, right-padded to the longest sequence; a batch of empty texts
    becomes one padding step (masked), which the model reads as an empty sequence, as the PyTorch model does."""
    width = max(1, max((len(ids) for ids in batch), default=1))
    input_ids = np.full((len(batch), width), pad_token_id, dtype=np.int64)
    attention_mask = np.zeros((len(batch), width), dtype=np.int64)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


__all__ = ["OnnxClassifier", "read_manifest", "load_fast_tokenizer", "pad_right", "MANIFEST", "ONNX_FILE"]
