"""Exporting a trained hf_rnn classifier for deployment: ONNX (optionally int8) or a `torch.export` program.

    hf-rnn export MODEL_DIR OUT                           # ONNX, fp32
    hf-rnn export MODEL_DIR OUT --quantize int8           # ONNX, int8 weights (onnxruntime dynamic quantization)
    hf-rnn export MODEL_DIR OUT --format exported-program # torch.export.save, for PyTorch serving (AOTInductor...)

or `hf_rnn.export.export_model(model_dir, out)` from Python. The graph maps `(input_ids, attention_mask)`, both
int64 `(batch, sequence)` with dynamic batch and sequence axes and right padding, to `logits` `(batch, num_labels)`.
It is traced by `torch.onnx.export(dynamo=True)` (the maintained exporter, through `torch.export`) on the exact padded
path: packed sequences are switched off, so the graph holds plain ONNX `LSTM` / `GRU` / `RNN` nodes, the per-sequence
reversal of the backward direction, and the pooling, and it gives the same logits as PyTorch for any padding.
Transformer frontends export with the encoder inside the graph.

OUT is written atomically (a temporary folder renamed into place) and is self-contained: the model file, the
tokenizer files, `config.json` (labels) and `export.json`, the manifest that `hf_rnn.onnx_runtime` reads. Every export
is checked before it is kept: onnxruntime (or the loaded program) must reproduce PyTorch's logits on a batch of mixed
lengths to 1e-4 (fp32); an int8 export records its largest logit difference and label agreement instead.
"""

import contextlib
import importlib.metadata
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from . import __version__
from ._export_patches import RNN_TRANSLATIONS, rnn_patches
from .modeling_rnn import RecurrentLayer
from .onnx_runtime import MANIFEST, ONNX_FILE, PROGRAM_FILE, pad_right, read_manifest
from .training import _refuse_language_model, load_model_dir
from .utils import atomic_directory

FORMATS = ("onnx", "exported-program")
QUANTIZATIONS = ("int8",)
# fp32 exports must reproduce PyTorch's logits to this absolute tolerance
TOLERANCE = 1e-4
# what OUT gets from the model directory besides the model file; tokenizer.json is required
_COPIED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# lengths of the example the exporter traces: short, because tracing runs the recurrent cells' decomposition step by
# step on fake tensors (seconds per step); two rows and two steps keep both axes dynamic (sizes 0 and 1 specialize)
_TRACE_LENGTHS = (2, 1)
# lengths of the batch the export is checked on: another batch size, longer, mixed, so that padding is exercised
_CHECK_LENGTHS = (13, 7, 1, 10, 4)


class LogitsModule(nn.Module):
    """The classifier as a graph-friendly function: `(input_ids, attention_mask) -> logits`, nothing optional."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]


def export_model(
    model_dir: str | Path,
    output_dir: str | Path,
    format: str = "onnx",
    quantize: str | None = None,
    overwrite: bool = False,
    opset: int | None = None,
) -> Path:
    """
    Exports the classifier of a model directory to a self-contained deployment folder.

    Args:
        model_dir (`str` or `Path`):
            A model directory written by `hf-rnn train` (or any folder `hf_rnn.training.load_model_dir` loads).
        output_dir (`str` or `Path`):
            The folder to write. It must not exist or be empty, unless `overwrite` and it holds an earlier export.
        format (`str`, *optional*, defaults to `"onnx"`):
            `"onnx"` (`model.onnx`, run with onnxruntime) or `"exported-program"` (`model.pt2`, `torch.export.save`).
        quantize (`str`, *optional*):
            `"int8"`: ONNX with int8 weights by onnxruntime's dynamic quantization (LSTM, MatMul and embedding
            weights; activations quantized on the fly). ONNX only.
        overwrite (`bool`, *optional*, defaults to `False`):
            Replace an earlier export in `output_dir` (once the new one is complete).
        opset (`int`, *optional*):
            ONNX opset; default: the exporter's own (20 with torch 2.13).

    Returns:
        `Path`: `output_dir`.
    """
    if format not in FORMATS:
        raise ValueError(f"format={format!r} is not supported; use one of {', '.join(FORMATS)}.")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize={quantize!r} is not supported; use one of {', '.join(QUANTIZATIONS)}.")
    if quantize is not None and format != "onnx":
        raise ValueError(
            f"--quantize {quantize} needs --format onnx (onnxruntime quantizes the ONNX graph); for a quantized "
            "PyTorch model use torch.ao.quantization.quantize_dynamic on the loaded model."
        )
    if format == "onnx":
        _require_onnx_tools()
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    _check_output_dir(output_dir, model_dir, overwrite)
    model, _ = load_model_dir(model_dir)
    _refuse_language_model(model, model_dir, "hf-rnn export")
    missing = [name for name in ("config.json", "tokenizer.json") if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{model_dir} has no {' or '.join(missing)}; an export carries the model's fast tokenizer. Save the "
            "tokenizer with `tokenizer.save_pretrained(model_dir)` first."
        )

    def build(folder: Path) -> None:
        check = write_onnx(model, folder, quantize, opset) if format == "onnx" else write_program(model, folder)
        for name in _COPIED_FILES:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, folder / name)
        manifest = _manifest(model, model_dir, format, quantize, check)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    _write_atomically(output_dir, build)
    return output_dir


def exportable(model: nn.Module) -> LogitsModule:
    """The model in eval mode on the CPU, on the padded path (no `pack_padded_sequence`, which would put a
    data-dependent, device-specific op in the graph), wrapped as `(input_ids, attention_mask) -> logits`."""
    model = model.to("cpu").eval()
    for layer in model.modules():
        if isinstance(layer, RecurrentLayer):
            layer.sequence_packing = "never"
    return LogitsModule(model).eval()


def example_batch(config, lengths: tuple[int, ...] = _CHECK_LENGTHS) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded `(input_ids, attention_mask)` batch of the given lengths, of random ids other than padding."""
    vocab_size = config.frontend_config.vocab_size if config.frontend_config is not None else config.vocab_size
    generator = torch.Generator().manual_seed(0)
    rows = []
    for length in lengths:
        ids = torch.randint(0, vocab_size, (length,), generator=generator)
        rows.append(torch.where(ids == config.pad_token_id, (ids + 1) % vocab_size, ids).tolist())
    input_ids, attention_mask = pad_right(rows, config.pad_token_id)
    return torch.from_numpy(input_ids), torch.from_numpy(attention_mask)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hides the exporters' notes to PyTorch developers (deprecations inside torch, optional torchvision ops, the RNN
    modules' flattened weights); a failed export still raises with the full message."""
    # onnxruntime's quantizer logs its advice to pre-process the model (shape inference) on the root logger
    loggers = [logging.getLogger("torch.onnx"), logging.getLogger()]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _dynamic_shapes() -> dict:
    batch = torch.export.Dim("batch", min=1)
    sequence = torch.export.Dim("sequence", min=1)
    return {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}}


def write_onnx(model: nn.Module, folder: Path, quantize: str | None = None, opset: int | None = None) -> dict:
    """
    Writes `folder/model.onnx` (fp32, or int8 from a temporary fp32 file) for an hf_rnn sequence classifier and checks
    it with onnxruntime against PyTorch on a batch of mixed lengths; the model file only (see `export_model` for a
    complete deployment folder).

    Returns:
        `dict`: the check: the batch's lengths, the largest absolute logit difference, the label agreement.
    """
    module = exportable(model)
    example, checked = example_batch(model.config, _TRACE_LENGTHS), example_batch(model.config, _CHECK_LENGTHS)
    fp32_path = folder / (".fp32.onnx" if quantize else ONNX_FILE)
    with rnn_patches(), _quiet_exporter():
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_shapes=_dynamic_shapes(),
            custom_translation_table=RNN_TRANSLATIONS,
            opset_version=opset,
            optimize=True,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program; the dynamo exporter failed.")
    program.save(str(fp32_path))
    _drop_value_info(fp32_path)
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # LSTM, MatMul and embedding (Gather) weights become int8; GRU and simple-RNN nodes have
        # no int8 kernel in onnxruntime and stay fp32
        with _quiet_exporter():
            quantize_dynamic(fp32_path, folder / ONNX_FILE, weight_type=QuantType.QInt8)
        fp32_path.unlink()
    return _check_onnx(module, checked, folder, quantize)


def _drop_value_info(path: Path) -> None:
    """Removes the optional shapes of intermediate values. The exporter records some with the traced example's
    sequence length (the recurrent nodes' outputs); onnxruntime's quantizer would carry them back to the inputs, fixing
    the sequence axis, and onnxruntime infers every shape itself anyway."""
    import onnx

    model = onnx.load(str(path))
    del model.graph.value_info[:]
    onnx.save(model, str(path))


def _check_onnx(module: LogitsModule, inputs: tuple, folder: Path, quantize: str | None) -> dict:
    """Runs the export in onnxruntime on a batch of mixed lengths and compares with PyTorch."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": inputs[0].numpy(), "attention_mask": inputs[1].numpy()}
    return _compare(module, inputs, session.run(["logits"], feeds)[0], quantize)


def write_program(model: nn.Module, folder: Path) -> dict:
    """Writes `folder/model.pt2` (`torch.export.save`) and checks it against the model; returns the check."""
    module = exportable(model)
    example, inputs = example_batch(model.config, _TRACE_LENGTHS), example_batch(model.config, _CHECK_LENGTHS)
    from torch.export._patches import register_gru_while_loop_decomposition, register_lstm_while_loop_decomposition

    # the recurrent ops traced as while loops, so that the sequence axis stays dynamic (as torch.onnx.export does)
    with (
        rnn_patches(),
        _quiet_exporter(),
        register_lstm_while_loop_decomposition(),
        register_gru_while_loop_decomposition(),
    ):
        program = torch.export.export(module, example, dynamic_shapes=_dynamic_shapes())
    path = folder / PROGRAM_FILE
    torch.export.save(program, str(path))
    with torch.no_grad():
        logits = torch.export.load(str(path)).module()(*inputs).numpy()
    return _compare(module, inputs, logits, None)


def _compare(module: LogitsModule, inputs: tuple, exported, quantize: str | None) -> dict:
    with torch.no_grad():
        expected = module(*inputs).numpy()
    difference = float(abs(expected - exported).max())
    same_labels = float((expected.argmax(-1) == exported.argmax(-1)).mean())
    if quantize is None and not difference <= TOLERANCE:
        raise RuntimeError(
            f"the export's logits differ from PyTorch's by {difference:.2e} (> {TOLERANCE:g}) on the check batch; "
            "nothing was written. Please report this with the model's config.json."
        )
    return {
        "batch_lengths": list(_CHECK_LENGTHS),
        "max_abs_logit_difference": difference,
        "label_agreement": same_labels,
        "tolerance": None if quantize else TOLERANCE,
    }


def _manifest(model, model_dir: Path, format: str, quantize: str | None, check: dict) -> dict:
    config = model.config
    return {
        "format": format,
        "file": ONNX_FILE if format == "onnx" else PROGRAM_FILE,
        "quantization": "int8-dynamic" if quantize else None,
        "model_type": config.model_type,
        "inputs": {
            "input_ids": {"dtype": "int64", "shape": ["batch", "sequence"]},
            "attention_mask": {"dtype": "int64", "shape": ["batch", "sequence"]},
        },
        "outputs": {"logits": {"dtype": "float32", "shape": ["batch", config.num_labels]}},
        "padding_side": "right",
        "pad_token_id": config.pad_token_id,
        "id2label": {str(index): label for index, label in config.id2label.items()},
        "source": str(model_dir.resolve()),
        "check": check,
        "versions": _versions(format),
    }


def _versions(format: str) -> dict:
    names = ["torch", "transformers"] + (["onnx", "onnxscript", "onnxruntime"] if format == "onnx" else [])
    versions = {"hf_rnn": __version__}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _require_onnx_tools() -> None:
    """Names the missing packages of an ONNX export before any work is done."""
    import importlib.util

    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise ModuleNotFoundError(
            f"ONNX export needs {', '.join(missing)}: pip install 'hf-rnn[onnx]' (onnx, onnxscript, onnxruntime)."
        )


def _check_output_dir(output_dir: Path, model_dir: Path, overwrite: bool) -> None:
    """Refuses to write into anything but a missing or empty folder, or, with `overwrite`, an earlier export."""
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"{output_dir} is a file; choose a folder for the export.")
    if output_dir.resolve() == model_dir.resolve():
        raise FileExistsError(f"{output_dir} is the model directory itself; choose another folder for the export.")
    if not output_dir.is_dir() or not any(output_dir.iterdir()):
        return
    if read_manifest(output_dir) is None:
        raise FileExistsError(
            f"{output_dir} exists, is not empty and holds no hf-rnn export; choose another folder (nothing was "
            "touched)."
        )
    if not overwrite:
        raise FileExistsError(
            f"{output_dir} already holds an export; pass --overwrite (overwrite=True) to replace it."
        )


def _write_atomically(output_dir: Path, build) -> None:
    """Builds the export in a temporary folder next to `output_dir`, then renames it into place; an earlier export is
    swapped out only once the new one is complete, and deleted last."""
    if output_dir.is_dir() and not any(output_dir.iterdir()):
        output_dir.rmdir()
    if not output_dir.exists():
        with atomic_directory(output_dir) as staging:
            build(staging)
        return
    fresh = output_dir.with_name(f".{output_dir.name}.new-{os.getpid()}")
    shutil.rmtree(fresh, ignore_errors=True)
    with atomic_directory(fresh) as staging:
        build(staging)
    previous = output_dir.with_name(f".{output_dir.name}.old-{os.getpid()}")
    os.replace(output_dir, previous)
    os.replace(fresh, output_dir)
    shutil.rmtree(previous)


__all__ = ["export_model", "exportable", "example_batch", "write_onnx", "write_program", "LogitsModule", "FORMATS"]
