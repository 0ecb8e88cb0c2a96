"""What `torch.onnx.export(dynamo=True)` in torch 2.13 needs to export simple RNNs, and every cell more than once.

1. LSTM and GRU: torch traces `aten.lstm` / `aten.gru` with a `while_loop` decomposition (`torch.export._patches`),
   so the sequence axis stays dynamic, and onnxscript translates them to ONNX `LSTM` / `GRU` nodes. `aten.rnn_tanh` /
   `aten.rnn_relu` (`nn.RNN`) have neither: the default decomposition loops over time steps in Python, which fixes the
   sequence length to the traced example's, and no translation exists. `rnn_patches()` registers a `while_loop`
   decomposition for them the same way torch does for GRU, and `RNN_TRANSLATIONS` maps them to the ONNX `RNN` node.
2. The patches set the ops' Python kernels without clearing the dispatcher's cache of them, so after a first export
   in a process the cached default decomposition wins and every later export gets a fixed sequence axis.
   `rnn_patches()` clears those caches on entry and exit.
"""

import contextlib
from collections.abc import Iterator

import torch
from torch._decomp.decompositions import _rnn_helper, gather_params
from torch._higher_order_ops.while_loop import while_loop
from torch.export._patches import _clone_tensors_that_alias, _register_rnn_while_loop_decomposition

_RECURRENT_OPS = (
    torch.ops.aten.lstm.input,
    torch.ops.aten.gru.input,
    torch.ops.aten.rnn_tanh.input,
    torch.ops.aten.rnn_relu.input,
)


def _one_layer_while_loop_rnn(nonlinearity):
    """One direction of one layer of an Elman RNN as a `while_loop` (after `one_layer_while_loop_gru`)."""

    def layer(inp, hidden, params, has_biases, reverse=False):
        ih_weight, hh_weight = params[0], params[1]
        ih_bias = params[2] if has_biases else None
        hh_bias = params[3] if has_biases else None
        # (time, batch, hidden): the input projection of every step at once
        precomputed_input = torch.nn.functional.linear(inp, ih_weight, ih_bias)
        precomputed_input = precomputed_input.flip(0) if reverse else precomputed_input
        hh_weight, hh_bias = _clone_tensors_that_alias((hh_weight, hh_bias))
        cur_hidden = hidden.unsqueeze(0)
        step_output = torch.empty(
            precomputed_input.size(0), *cur_hidden.shape[1:], dtype=cur_hidden.dtype, device=cur_hidden.device
        )

        def cond_fn(index, out, cur_hidden):
            return index < precomputed_input.size(0)

        def body_fn(index, out, cur_hidden):
            i = index.item()
            torch._check(i >= 0)
            torch._check(i <= precomputed_input.size(0) - 1)
            cur_hidden = nonlinearity(
                torch.nn.functional.linear(cur_hidden, hh_weight, hh_bias) + precomputed_input[i]
            )
            out = out.clone()
            out[i] = cur_hidden.squeeze(0)
            return index + 1, out, cur_hidden

        _, out, final_hidden = while_loop(cond_fn, body_fn, [torch.tensor(0), step_output, cur_hidden])
        return (out.flip(0) if reverse else out), final_hidden.squeeze(0)

    return layer


def _while_loop_rnn(nonlinearity):
    layer_fn = _one_layer_while_loop_rnn(nonlinearity)

    def impl(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
        params = gather_params(params, has_biases, False)
        out, final_hiddens = _rnn_helper(
            input, list(hx.unbind(0)), params, has_biases, num_layers, dropout, train, bidirectional, batch_first,
            layer_fn,
        )  # fmt: skip
        return out, torch.stack(final_hiddens, 0)

    return impl


def _clear_dispatch_caches() -> None:
    for op in _RECURRENT_OPS:
        cache = getattr(op, "_dispatch_cache", None)
        if cache is not None:
            cache.clear()


@contextlib.contextmanager
def rnn_patches() -> Iterator[None]:
    """`while_loop` decompositions for `aten.rnn_tanh` / `aten.rnn_relu` while exporting, with fresh dispatch
    caches for every recurrent op (see the module docstring)."""
    _clear_dispatch_caches()
    try:
        with (
            _register_rnn_while_loop_decomposition(torch.ops.aten.rnn_tanh.input, _while_loop_rnn(torch.tanh)),
            _register_rnn_while_loop_decomposition(torch.ops.aten.rnn_relu.input, _while_loop_rnn(torch.relu)),
        ):
            yield
    finally:
        _clear_dispatch_caches()


def _onnx_rnn(activation: str):
    """An onnxscript translation of `aten.rnn_<activation>.input` to ONNX `RNN` nodes, one per layer."""

    def translation(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
        from onnxscript import opset18 as op

        directions = 2 if bidirectional else 1
        if batch_first:
            # ONNX RNN reads (time, batch, features)
            input = op.Transpose(input, perm=[1, 0, 2])
        per_direction = 4 if has_biases else 2
        hidden_size = hx.shape[2]
        current = input
        final_states = []
        for layer in range(num_layers):
            weights, recurrent, biases = [], [], []
            for direction in range(directions):
                start = (layer * directions + direction) * per_direction
                weights.append(op.Unsqueeze(params[start], [0]))
                recurrent.append(op.Unsqueeze(params[start + 1], [0]))
                if has_biases:
                    # ONNX wants [Wb, Rb] concatenated per direction
                    biases.append(op.Unsqueeze(op.Concat(params[start + 2], params[start + 3], axis=0), [0]))
            initial = op.Slice(hx, [layer * directions], [(layer + 1) * directions], axes=[0])
            inputs = [
                current,
                op.Concat(*weights, axis=0),
                op.Concat(*recurrent, axis=0),
                op.Concat(*biases, axis=0) if has_biases else None,
                None,
                initial,
            ]
            outputs, final = op.RNN(
                *inputs,
                activations=[activation] * directions,
                direction="bidirectional" if bidirectional else "forward",
                hidden_size=hidden_size,
            )
            # (time, directions, batch, hidden) -> (time, batch, directions * hidden)
            outputs = op.Transpose(outputs, perm=[0, 2, 1, 3])
            current = op.Reshape(outputs, op.Constant(value_ints=[0, 0, -1]))
            final_states.append(final)
        output = op.Transpose(current, perm=[1, 0, 2]) if batch_first else current
        return output, op.Concat(*final_states, axis=0)

    return translation


RNN_TRANSLATIONS = {
    torch.ops.aten.rnn_tanh.input: _onnx_rnn("Tanh"),
    torch.ops.aten.rnn_relu.input: _onnx_rnn("Relu"),
}
