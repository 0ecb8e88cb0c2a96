"""Sequence-level training kernels for the LSTM, GRU and simple-RNN layers on CPU (`sequence_kernels.cpp`).

PyTorch trains `nn.GRU` and `nn.RNN` on CPU one time step at a time through the autograd engine, with a small
weight-gradient product per step, and `nn.LSTM` through oneDNN's fused kernel, one direction after the other. The
kernels here do the input projections, the input gradients and the weight gradients of all steps as one matrix product
each and keep only the recurrent products per step; each step's gate arithmetic is one vectorized pass, and the two
directions of a bidirectional layer run at the same time, one per core (`hf_rnn/sequence_kernels.cpp`). Their outputs
and gradients equal PyTorch's to float32 rounding (tested): the same formulas, with the SLEEF sigmoid and tanh of
ATen's vectorized operators, summed in another order.

They are used by hf_rnn's layers when training on CPU with float32 weights: a layer whose input or weights need
gradients, outside tracing, export, `torch.compile`, functorch transforms and forward-mode AD, on cells without hooks.
Their gradients cannot be differentiated again (no double backward). Under bf16 autocast the GRU and simple RNN compute
in float32 (PyTorch's modules would run small bf16 matrix products per step, slower than this kernel in float32), and
the LSTM keeps oneDNN's bf16 kernel.
Inference, evaluation, export and GPUs keep PyTorch's modules.
The C++ source is compiled on first use with `torch.utils.cpp_extension` (about 10 s on 2 cores; cached in
`TORCH_EXTENSIONS_DIR`, by default `~/.cache/torch_extensions`); without a C++ compiler or ninja, training falls back
to PyTorch's modules with one warning. `HF_RNN_SEQUENCE_KERNELS` picks the cells: `lstm,gru,rnn` (the default), any
comma-separated subset, or `0` for none.
"""

import hashlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .utils import one_line

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("sequence_kernels.cpp")
_lock = threading.Lock()
_CELLS = {"gru": nn.GRU, "rnn": nn.RNN, "lstm": nn.LSTM}
# All three by default: on workload W they train faster than PyTorch's modules, with the same test accuracy over
# recipes and seeds (README, Performance)
DEFAULT_CELLS = ("lstm", "gru", "rnn")


def _cells_from_environment() -> tuple[str, ...]:
    value = os.environ.get("HF_RNN_SEQUENCE_KERNELS")
    if value is None or value.strip() in ("", "1"):
        return DEFAULT_CELLS
    if value.strip() in ("0", "none"):
        return ()
    cells = tuple(cell.strip() for cell in value.split(",") if cell.strip())
    unknown = [cell for cell in cells if cell not in _CELLS]
    if unknown:
        logger.warning(
            "HF_RNN_SEQUENCE_KERNELS=%s names %s; use a comma-separated list of lstm, gru and rnn, or 0. Using the "
            "default (%s).",
            value,
            ", ".join(unknown),
            ",".join(DEFAULT_CELLS),
        )
        return DEFAULT_CELLS
    return cells


_state = {"ops": None, "failed": False, "cells": _cells_from_environment()}


def _flags() -> list[str]:
    # tuned to the CPU that builds it: the build is cached per CPU (all its flags are part of the build's name)
    capability = torch.backends.cpu.get_cpu_capability()
    flags = ["-O3", "-march=native"] if capability != "DEFAULT" else ["-O3"]
    if capability in ("AVX2", "AVX512"):
        # ATen's vector type for the CPU torch runs on (its sigmoid and tanh are SLEEF's, exported by libtorch_cpu)
        flags += [f"-DCPU_CAPABILITY={capability}", f"-DCPU_CAPABILITY_{capability}"]
    # OpenMP as ATen's parallel_for uses it (the directions run on its threads); linked to the runtime torch loaded
    return flags + ["-fopenmp"] if torch.backends.openmp.is_available() else flags


def _compiler() -> str:
    from torch.utils.cpp_extension import get_cxx_compiler

    compiler = get_cxx_compiler()
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return compiler


def _build_name() -> str:
    from .cpu import _cpuinfo_field

    # everything the binary depends on: the source, torch, the flags, the compiler and every flag of the CPU (a
    # `-march=native` build must not be loaded on a CPU with fewer instructions, e.g. from a shared home directory)
    parts = [SOURCE.read_text(), torch.__version__, " ".join(_flags()), _compiler(), _cpuinfo_field("flags") or ""]
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]
    return f"hf_rnn_sequence_kernels_{digest}"


# a build takes about 10 s: a lock file older than this was left by a build that was killed
_STALE_LOCK_SECONDS = 600


def _remove_stale_lock(name: str) -> None:
    # torch.utils.cpp_extension waits without end on the lock file of a build that was killed midway
    from torch.utils.cpp_extension import get_default_build_root

    lock = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()) / name / "lock"
    try:
        if time.time() - lock.stat().st_mtime > _STALE_LOCK_SECONDS:
            lock.unlink()
    except OSError:
        pass


def kernel_ops():
    """The compiled operators (`torch.ops.hf_rnn_kernels`), built on first call; `None` where they cannot be built."""
    if _state["ops"] is not None or _state["failed"]:
        return _state["ops"]
    with _lock:
        if _state["ops"] is None and not _state["failed"]:
            try:
                from torch.utils.cpp_extension import load

                logger.info("Building hf_rnn's recurrent sequence kernels (once per machine, about 10 s).")
                name = _build_name()
                _remove_stale_lock(name)
                load(name=name, sources=[str(SOURCE)], extra_cflags=_flags(), is_python_module=False)
                _state["ops"] = torch.ops.hf_rnn_kernels
            except Exception as error:  # no compiler, no ninja, a read-only cache: PyTorch's modules still train
                _state["failed"] = True
                logger.warning(
                    "hf_rnn could not build its recurrent sequence kernels (%s); training uses PyTorch's modules, "
                    "which is slower. Install a C++ compiler and `pip install ninja`, or set "
                    "HF_RNN_SEQUENCE_KERNELS=0.",
                    one_line(error, first_only=True),
                )
    return _state["ops"]


@contextmanager
def sequence_kernels(cells: bool | tuple[str, ...]) -> Iterator[None]:
    """Inside the block, train these cells (`("lstm", "gru", "rnn")`) through the kernels; `True` means the default
    cells, `False` none (the benchmark's comparison rows, tests)."""
    previous = _state["cells"]
    _state["cells"] = DEFAULT_CELLS if cells is True else () if cells is False else tuple(cells)
    try:
        yield
    finally:
        _state["cells"] = previous


# what each cell's forward operator returns per direction after the outputs (the packed input first): the tensors its
# backward operator takes
_SAVED = {"gru": 5, "rnn": 3, "lstm": 5}


class _Sequences(torch.autograd.Function):
    """A layer's directions (one, or two for a bidirectional layer) through one forward and one backward operator,
    which run the directions concurrently. `lengths` are the sequences' real lengths (int64, on the CPU); `tensors` are
    the directions' inputs, then their `weight_ih`, `weight_hh`, `bias_ih` and `bias_hh` (each group one tensor per
    direction); returns each direction's outputs, zeros at padded positions."""

    @staticmethod
    def forward(ctx, kind: str, relu: bool, directions: int, lengths: torch.Tensor, *tensors):
        groups = [list(tensors[k * directions : (k + 1) * directions]) for k in range(5)]
        arguments = (relu,) if kind == "rnn" else ()
        results = getattr(kernel_ops(), f"{kind}_forward")(groups[0], lengths, *groups[1:], *arguments)
        width = 1 + _SAVED[kind]
        ctx.kind, ctx.relu, ctx.directions = kind, relu, directions
        saved = [results[d * width + 1 + k] for k in range(_SAVED[kind]) for d in range(directions)]
        ctx.save_for_backward(lengths, *groups[1], *groups[2], *saved)
        return tuple(results[d * width] for d in range(directions))

    @staticmethod
    @once_differentiable
    def backward(ctx, *grad_outputs):
        directions, (lengths, *saved) = ctx.directions, ctx.saved_tensors
        # weight_ih, weight_hh, the packed inputs, then the other saved tensors, one group per kind of tensor
        w_ih, w_hh, packed, *others = [
            list(saved[k * directions : (k + 1) * directions]) for k in range(len(saved) // directions)
        ]
        need_grad_x = any(ctx.needs_input_grad[4 : 4 + directions])
        arguments = (ctx.relu,) if ctx.kind == "rnn" else ()
        grads = getattr(kernel_ops(), f"{ctx.kind}_backward")(
            [grad.contiguous() for grad in grad_outputs], lengths, packed, w_ih, w_hh, *others, *arguments, need_grad_x
        )
        # per direction: input, weight_ih, weight_hh, bias_ih, bias_hh; returned grouped as the inputs were
        by_input = [grads[d * 5 + k] if k or need_grad_x else None for k in range(5) for d in range(directions)]
        return (None, None, None, None, *by_input)


def _has_hooks(cell: nn.Module) -> bool:
    # the kernel does not go through `cell.__call__`: hooks (pruning, old-style weight_norm, accelerate's wrappers,
    # a user's) would not run, so such cells keep PyTorch's path
    from torch.nn.modules import module

    own = (cell._forward_hooks, cell._forward_pre_hooks, cell._backward_hooks, cell._backward_pre_hooks)
    shared = (
        module._global_forward_hooks,
        module._global_forward_pre_hooks,
        module._global_backward_hooks,
        module._global_backward_pre_hooks,
    )
    return any(own) or any(shared)


def _applies(cell: nn.RNNBase, hidden: torch.Tensor) -> bool:
    # exactly PyTorch's float modules: not subclasses, nor the quantized modules of `hf-rnn export --quantize`
    if type(cell) not in [_CELLS[name] for name in _state["cells"]] or not isinstance(hidden, torch.Tensor):
        return False
    # functorch transforms (vmap, grad, functional_call) and forward-mode AD take PyTorch's path (fx's symbolic
    # tracing does too: its proxies are not tensors)
    if torch._C._are_functorch_transforms_active():
        return False
    if torch.autograd.forward_ad._current_level >= 0 or _has_hooks(cell):
        return False
    parameters = (cell.weight_ih_l0, cell.weight_hh_l0, cell.bias_ih_l0, cell.bias_hh_l0)
    return (
        cell.num_layers == 1
        and cell.bias
        and cell.batch_first
        and not cell.bidirectional
        and cell.proj_size == 0
        and hidden.device.type == "cpu"
        and hidden.dim() == 3
        and hidden.shape[0] > 0
        and hidden.shape[1] > 0
        # under CPU autocast the layer computes in float32, whatever dtype the previous op handed it; the LSTM keeps
        # oneDNN's bf16 kernel there (1.4x faster than float32 on workload W)
        and (hidden.dtype == torch.float32 or torch.is_autocast_enabled("cpu"))
        and not (type(cell) is nn.LSTM and torch.is_autocast_enabled("cpu"))
        and all(parameter.dtype == torch.float32 and parameter.device.type == "cpu" for parameter in parameters)
        and torch.is_grad_enabled()
        and (hidden.requires_grad or any(parameter.requires_grad for parameter in parameters))
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.compiler.is_compiling()
        and not torch.compiler.is_exporting()
    )


def run_sequence_kernels(
    cells: list[nn.RNNBase], inputs: list[torch.Tensor], lengths: torch.Tensor | None = None
) -> list[torch.Tensor] | None:
    """`[cell(hidden)[0] for cell, hidden in zip(cells, inputs)]` (zero initial states) through one kernel call that
    runs the directions of a layer concurrently, or `None` where the kernel does not apply to every cell.

    With `lengths` (each sequence's real length; the inputs right-padded), only real positions are computed: the
    outputs there are the cells', and zeros at padded positions (the cells would have run on through the padding, and
    nothing downstream of an hf_rnn layer reads it).
    """
    if len({type(cell) for cell in cells}) != 1 or not all(map(_applies, cells, inputs)) or kernel_ops() is None:
        return None
    kind = next(name for name, cell_type in _CELLS.items() if type(cells[0]) is cell_type)
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    weights = [getattr(cell, name).contiguous() for name in names for cell in cells]
    batch, time = inputs[0].shape[:2]
    lengths = torch.full((batch,), time) if lengths is None else lengths.to("cpu", torch.int64).contiguous()
    # the operators compute in float32: autocast must not turn their matrix products into bf16 ones
    with torch.autocast("cpu", enabled=False):
        inputs = [hidden.float().contiguous() for hidden in inputs]
        relu = kind == "rnn" and cells[0].nonlinearity == "relu"
        return list(_Sequences.apply(kind, relu, len(cells), lengths, *inputs, *weights))


def run_sequence_kernel(cell: nn.RNNBase, hidden: torch.Tensor) -> torch.Tensor | None:
    """`cell(hidden)[0]` (a zero initial state) through the sequence kernel, or `None` where it does not apply."""
    outputs = run_sequence_kernels([cell], [hidden])
    return None if outputs is None else outputs[0]
