"""Tests for hf_rnn.sequence_kernels: the LSTM/GRU/RNN training kernels compute PyTorch's function and gradients, for
one direction or both at once, are used only where they apply, and fall back to PyTorch's modules where they cannot be
built."""

import logging

import pytest
import torch
from torch import nn

import hf_rnn
from hf_rnn import sequence_kernels
from hf_rnn.sequence_kernels import kernel_ops, run_sequence_kernel, run_sequence_kernels

CELLS = {
    "gru": lambda: nn.GRU(5, 4, batch_first=True),
    "rnn-tanh": lambda: nn.RNN(5, 4, batch_first=True),
    "rnn-relu": lambda: nn.RNN(5, 4, batch_first=True, nonlinearity="relu"),
    "lstm": lambda: nn.LSTM(5, 4, batch_first=True),
}


@pytest.fixture(scope="module", autouse=True)
def built():
    # built once per machine (cached by torch.utils.cpp_extension); every test below needs it
    assert kernel_ops() is not None


def test_the_environment_picks_the_cells(monkeypatch, caplog):
    with sequence_kernels.sequence_kernels(("gru",)):
        assert run_sequence_kernel(CELLS["gru"](), torch.randn(2, 3, 5)) is not None
        assert run_sequence_kernel(CELLS["rnn-tanh"](), torch.randn(2, 3, 5)) is None
        assert run_sequence_kernel(CELLS["lstm"](), torch.randn(2, 3, 5)) is None
    every = ("lstm", "gru", "rnn")
    for value, cells in [("gru,rnn", ("gru", "rnn")), ("0", ()), ("none", ()), ("1", every), ("", every)]:
        monkeypatch.setenv("HF_RNN_SEQUENCE_KERNELS", value)
        assert sequence_kernels._cells_from_environment() == cells
    monkeypatch.delenv("HF_RNN_SEQUENCE_KERNELS")
    assert sequence_kernels._cells_from_environment() == every
    monkeypatch.setenv("HF_RNN_SEQUENCE_KERNELS", "gru,cnn")
    with caplog.at_level(logging.WARNING, logger="hf_rnn.sequence_kernels"):
        assert sequence_kernels._cells_from_environment() == every
    assert "names cnn" in caplog.records[0].getMessage()


def gradients(cell: nn.RNNBase, hidden: torch.Tensor, grad: torch.Tensor, kernel: bool):
    hidden = hidden.detach().requires_grad_()
    outputs = run_sequence_kernel(cell, hidden) if kernel else cell(hidden)[0]
    assert outputs is not None
    inputs = [hidden, *cell.parameters()]
    return outputs, torch.autograd.grad(outputs, inputs, grad)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("shape", [(3, 7), (1, 1), (2, 40)])
def test_outputs_and_gradients_equal_pytorch_modules(name, shape):
    torch.manual_seed(0)
    cell = CELLS[name]()
    hidden = torch.randn(*shape, 5)
    grad = torch.randn(*shape, 4)
    outputs, grads = gradients(cell, hidden, grad, kernel=True)
    reference, reference_grads = gradients(cell, hidden, grad, kernel=False)
    torch.testing.assert_close(outputs, reference, rtol=1e-6, atol=1e-6)
    for got, expected in zip(grads, reference_grads):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", CELLS)
def test_an_input_without_gradient_gets_none_and_the_weights_theirs(name):
    # cached frontend features: the layer's input needs no gradient, its weights do
    torch.manual_seed(0)
    cell, hidden, grad = CELLS[name](), torch.randn(3, 7, 5), torch.randn(3, 7, 4)
    outputs = run_sequence_kernel(cell, hidden)
    grads = torch.autograd.grad(outputs, list(cell.parameters()), grad)
    reference = torch.autograd.grad(cell(hidden)[0], list(cell.parameters()), grad)
    for got, expected in zip(grads, reference):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert outputs.grad_fn.next_functions[0][0] is None  # no gradient edge to the input


def test_non_contiguous_input_and_bitwise_repeatability():
    torch.manual_seed(0)
    cell = CELLS["gru"]()
    hidden = torch.randn(7, 3, 5).transpose(0, 1)  # (3, 7, 5), not contiguous
    grad = torch.randn(3, 7, 4)
    first, second = gradients(cell, hidden, grad, True), gradients(cell, hidden, grad, True)
    assert torch.equal(first[0], second[0])
    assert all(torch.equal(a, b) for a, b in zip(first[1], second[1]))
    reference = gradients(cell, hidden.contiguous(), grad, False)
    torch.testing.assert_close(first[0], reference[0], rtol=1e-6, atol=1e-6)


def test_used_only_for_float32_cpu_training():
    cell, hidden = CELLS["gru"](), torch.randn(2, 3, 5)
    assert run_sequence_kernel(cell, hidden) is not None  # the weights need gradients
    with torch.no_grad():
        assert run_sequence_kernel(cell, hidden) is None
    assert run_sequence_kernel(nn.LSTM(5, 4, batch_first=True, proj_size=2), hidden) is None
    quantized = torch.ao.quantization.quantize_dynamic(nn.Sequential(cell), {nn.GRU}, dtype=torch.qint8)[0]
    assert run_sequence_kernel(quantized, hidden) is None
    assert run_sequence_kernel(nn.GRU(5, 4), hidden) is None  # time-major
    assert run_sequence_kernel(CELLS["gru"]().double(), hidden.double()) is None
    with sequence_kernels.sequence_kernels(False):
        assert run_sequence_kernel(cell, hidden) is None


def test_cells_with_hooks_strided_weights_and_in_place_writes():
    torch.manual_seed(0)
    cell, hidden = CELLS["gru"](), torch.randn(2, 3, 5)
    handle = cell.register_forward_hook(lambda module, args, output: None)
    assert run_sequence_kernel(cell, hidden) is None  # the hook would not run: PyTorch's path
    handle.remove()
    # a bias that is a strided view: used as its values, not as raw memory
    cell.bias_hh_l0 = nn.Parameter(torch.randn(24)[::2])
    outputs = run_sequence_kernel(cell, hidden)
    torch.testing.assert_close(outputs, cell(hidden)[0], rtol=1e-6, atol=1e-6)
    outputs[:, 1:] = 0  # the outputs are a tensor of their own, as nn.GRU's are
    outputs.sum().backward()
    with torch.autograd.forward_ad.dual_level():
        assert run_sequence_kernel(cell, hidden) is None
    assert torch.func.functional_call(cell, dict(cell.named_parameters()), (hidden,))[0].shape == (2, 3, 4)


def test_the_operators_check_their_inputs():
    cell = CELLS["gru"]()
    weights = [[cell.weight_ih_l0.detach()], [cell.weight_hh_l0.detach()], [cell.bias_ih_l0.detach()]]
    x, lengths = [torch.randn(2, 3, 5)], torch.tensor([3, 1])
    with pytest.raises(RuntimeError, match="contiguous float32"):
        kernel_ops().gru_forward(x, lengths, *weights, [torch.randn(24)[::2]])
    with pytest.raises(RuntimeError, match="biases do not match"):
        kernel_ops().gru_forward(x, lengths, *weights, [torch.randn(4)])
    with pytest.raises(RuntimeError, match="one tensor per direction"):
        kernel_ops().gru_forward(x * 2, lengths, *weights, [torch.randn(12)])
    with pytest.raises(RuntimeError, match="one or two directions"):
        kernel_ops().gru_forward(x * 3, lengths, *[w * 3 for w in weights], [torch.randn(12)] * 3)
    for wrong in (torch.tensor([4, 1]), torch.tensor([-1, 1]), torch.tensor([3]), torch.tensor([3.0, 1.0])):
        with pytest.raises(RuntimeError, match="lengths must"):
            kernel_ops().gru_forward(x, wrong, *weights, [torch.randn(12)])


# hidden size 20: the gates' vector loops run full 16-wide chunks and a partial one
WIDE = {
    "gru": lambda: nn.GRU(5, 20, batch_first=True),
    "rnn-tanh": lambda: nn.RNN(5, 20, batch_first=True),
    "rnn-relu": lambda: nn.RNN(5, 20, batch_first=True, nonlinearity="relu"),
    "lstm": lambda: nn.LSTM(5, 20, batch_first=True),
}


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("threads", [1, 2])
def test_with_lengths_only_real_positions_are_computed(name, threads):
    """Both directions of a layer on right-padded sequences of lengths 7, 0, 3 and 7 in a batch 9 steps wide: at real
    positions the outputs are the cells', padded positions are zeros, and the gradients are those of the real
    positions' outputs (a gradient reaching padded positions is not used: nothing downstream of an hf_rnn layer reads
    them)."""
    torch.manual_seed(0)
    cells, lengths = [WIDE[name](), WIDE[name]()], torch.tensor([7, 0, 3, 7])
    inputs = [torch.randn(4, 9, 5, requires_grad=True), torch.randn(4, 9, 5, requires_grad=True)]
    grads = [torch.randn(4, 9, 20), torch.randn(4, 9, 20)]
    real = (torch.arange(9) < lengths.unsqueeze(1)).unsqueeze(-1)
    parameters = [parameter for cell in cells for parameter in cell.parameters()]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        outputs = run_sequence_kernels(cells, inputs, lengths)
        got = torch.autograd.grad(outputs, inputs + parameters, grads)
    finally:
        torch.set_num_threads(previous)
    for output in outputs:
        assert torch.equal(output[~real.expand_as(output)], torch.zeros(int((~real).sum()) * 20))
    # the modules run on through the padding (right padding: it does not change the real positions' outputs)
    reference = [cell(hidden)[0] * real for cell, hidden in zip(cells, inputs)]
    expected = torch.autograd.grad(reference, inputs + parameters, [grad * real for grad in grads])
    for output, wanted in zip(outputs, reference):
        torch.testing.assert_close(output, wanted, rtol=1e-6, atol=1e-6)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert torch.equal(got[0][1], torch.zeros(9, 5))  # the empty sequence gets no gradient


def test_the_backward_operators_check_what_they_are_given():
    cell, x, lengths = WIDE["lstm"](), torch.randn(2, 3, 5), torch.tensor([3, 1])
    weights = [[parameter.detach()] for parameter in cell.parameters()]
    outputs, packed, *saved = kernel_ops().lstm_forward([x], lengths, *weights)
    grad = [torch.randn(2, 3, 20)]
    args = [[packed], weights[0], weights[1], *[[tensor] for tensor in saved]]
    assert kernel_ops().lstm_backward(grad, lengths, *args, True)[0].shape == (2, 3, 5)
    with pytest.raises(RuntimeError, match="saved tensors must be"):
        kernel_ops().lstm_backward(grad, torch.tensor([3, 2]), *args, True)  # lengths other than the forward's
    with pytest.raises(RuntimeError, match="the gradient must be"):
        kernel_ops().lstm_backward([torch.randn(2, 3, 7)], lengths, *args, True)
    with pytest.raises(RuntimeError, match="contiguous float32 CPU weights"):
        kernel_ops().lstm_backward(grad, lengths, [packed], [weights[0][0].double()], *args[2:], True)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_both_directions_at_once_equal_each_alone_and_the_modules(name, threads):
    """A bidirectional layer's two cells in one call (one per thread of a two-thread pool, else one after the other):
    the outputs and gradients of each cell alone, bit for bit, and PyTorch's to float32 rounding; the pool's thread
    count is unchanged afterwards."""
    torch.manual_seed(0)
    cells, inputs = [CELLS[name](), CELLS[name]()], [torch.randn(3, 11, 5), torch.randn(3, 11, 5)]
    grads = [torch.randn(3, 11, 4), torch.randn(3, 11, 4)]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        inputs = [hidden.requires_grad_() for hidden in inputs]
        parameters = [parameter for cell in cells for parameter in cell.parameters()]
        both = run_sequence_kernels(cells, inputs)
        both_grads = torch.autograd.grad(both, inputs + parameters, grads)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(previous)
    for d in range(2):
        alone, alone_grads = gradients(cells[d], inputs[d], grads[d], kernel=True)
        assert torch.equal(both[d], alone)
        mine = [both_grads[d], *both_grads[2 + 4 * d : 6 + 4 * d]]
        assert all(torch.equal(a, b) for a, b in zip(mine, alone_grads))
        reference, reference_grads = gradients(cells[d], inputs[d], grads[d], kernel=False)
        torch.testing.assert_close(both[d], reference, rtol=1e-6, atol=1e-6)
        for got, expected in zip(mine, reference_grads):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # cells of different kinds go through PyTorch's modules
    assert run_sequence_kernels([CELLS["gru"](), CELLS["lstm"]()], inputs) is None


def test_under_bf16_autocast_the_kernel_computes_in_float32():
    torch.manual_seed(0)
    cell, hidden, grad = CELLS["gru"](), torch.randn(2, 6, 5), torch.randn(2, 6, 4)
    reference, reference_grads = gradients(cell, hidden, grad, kernel=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs, grads = gradients(cell, hidden.bfloat16(), grad, kernel=True)
    assert outputs.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the LSTM keeps oneDNN's bf16 kernel
        assert run_sequence_kernel(CELLS["lstm"](), hidden.bfloat16()) is None
    # only the input's rounding to bf16 differs from the float32 modules
    torch.testing.assert_close(outputs, reference, rtol=2e-2, atol=2e-2)
    for got, expected in zip(grads[1:], reference_grads[1:]):
        torch.testing.assert_close(got, expected, rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_model_training_step_matches_modules_and_inference_is_unchanged(cell):
    """A padded, bidirectional two-layer classifier: loss and gradients with the kernels match PyTorch's modules;
    logits without gradients are PyTorch's modules' exactly (the kernels are not used there)."""
    torch.manual_seed(0)
    family = {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}[cell]
    config = getattr(hf_rnn, f"{family}Config")(
        vocab_size=30, embedding_dim=6, hidden_size=5, num_layers=2, bidirectional=True
    )
    model = getattr(hf_rnn, f"{family}ForSequenceClassification")(config)
    input_ids = torch.randint(2, 30, (4, 9))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = attention_mask[3, 2:] = 0
    labels = torch.tensor([0, 1, 1, 0])

    def step(kernels: bool):
        model.zero_grad()
        with sequence_kernels.sequence_kernels(kernels):
            loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
            loss.backward()
        return loss.detach(), [parameter.grad.clone() for parameter in model.parameters()]

    calls = []
    original = hf_rnn.RecurrentLayer.sequence_kernel
    hf_rnn.RecurrentLayer.sequence_kernel = lambda cells, inputs, lengths: (
        calls.append(len(cells)) or original(cells, inputs, lengths)
    )
    try:
        loss, grads = step(True)
    finally:
        hf_rnn.RecurrentLayer.sequence_kernel = original
    assert calls == [2, 2]  # two layers, each with both directions in one call
    reference_loss, reference_grads = step(False)
    torch.testing.assert_close(loss, reference_loss, rtol=1e-6, atol=1e-6)
    for got, expected in zip(grads, reference_grads):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)

    model.eval()
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        with sequence_kernels.sequence_kernels(False):
            assert torch.equal(logits, model(input_ids=input_ids, attention_mask=attention_mask).logits)


def test_a_failed_build_falls_back_with_one_warning(monkeypatch, caplog):
    def no_compiler(**kwargs):
        raise RuntimeError("Error building extension 'x': c++: command not found\nmore lines")

    monkeypatch.setattr("torch.utils.cpp_extension.load", no_compiler)
    monkeypatch.setitem(sequence_kernels._state, "ops", None)
    monkeypatch.setitem(sequence_kernels._state, "failed", False)
    cell, hidden = CELLS["gru"](), torch.randn(2, 3, 5)
    with caplog.at_level(logging.WARNING, logger="hf_rnn.sequence_kernels"):
        assert run_sequence_kernel(cell, hidden) is None
        assert run_sequence_kernel(cell, hidden) is None
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "c++: command not found" in warnings[0] and "more lines" not in warnings[0]
    assert "HF_RNN_SEQUENCE_KERNELS=0" in warnings[0]
