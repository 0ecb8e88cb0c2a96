"""The sequence-level simple-RNN training kernel equals PyTorch's module, values and gradients, and is used only where
it applies (training a simple RNN in float32 on CPU)."""

import pytest
import torch
from torch import nn

from hf_rnn.modeling_rnn_kernels import run_cell, uses_sequence_kernel


def make_cell(kind: str, input_size: int = 12, hidden_size: int = 10) -> nn.RNNBase:
    return nn.RNN(input_size, hidden_size, batch_first=True, nonlinearity=kind.removeprefix("rnn_"))


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("shape", [(4, 9), (1, 1), (3, 40)])
def test_kernels_equal_the_modules_values_and_gradients(kind, shape):
    torch.manual_seed(0)
    cell = make_cell(kind)
    inputs = torch.randn(*shape, 12, requires_grad=True)
    weights = [inputs, *cell.parameters()]
    assert uses_sequence_kernel(cell, inputs)
    expected = cell(inputs)[0]
    upstream = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, weights, upstream)
    got = run_cell(cell, inputs)
    assert got.grad_fn is not None and "Sequence" in type(got.grad_fn).__name__
    grads = torch.autograd.grad(got, weights, upstream)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    for got_grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(got_grad, expected_grad, atol=1e-5, rtol=1e-4)


def test_the_modules_own_path_serves_inference_autocast_and_the_other_cells():
    cell, inputs = make_cell("rnn_tanh"), torch.randn(2, 5, 12)
    with torch.no_grad():
        assert not uses_sequence_kernel(cell, inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not uses_sequence_kernel(cell, inputs)
    assert not uses_sequence_kernel(nn.LSTM(12, 10, batch_first=True), inputs)
    assert not uses_sequence_kernel(nn.GRU(12, 10, batch_first=True), inputs)
    assert not uses_sequence_kernel(make_cell("rnn_tanh").requires_grad_(False), inputs)
    assert not uses_sequence_kernel(cell.double(), inputs.double())
