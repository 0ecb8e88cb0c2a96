"""Sequence-level training kernels for the GRU and simple-RNN cells on CPU.

PyTorch trains `nn.LSTM` on CPU through one fused oneDNN call per direction, but runs `nn.GRU` and `nn.RNN` as
separate operations at every time step, each recorded by autograd and undone one by one in the backward pass. These
functions do the same arithmetic as those modules with the bookkeeping written out: the input projection of every step
in one matrix product, a few operations per step into preallocated buffers, and in the backward pass the weight and
input gradients of all steps in one matrix product each. The outputs equal the modules' to float32 rounding (tested
against `nn.GRU` / `nn.RNN`, values and gradients); `hf-rnn bench` measures the speed. They serve training only:
inference, export and autocast keep the modules' own path. This file imports nothing of hf_rnn, so it also works as Hub
remote code.
"""

import torch
from torch import nn


class GRUSequence(torch.autograd.Function):
    """One GRU layer (PyTorch's gate order r, z, n) over `(batch, time, input)` from a zero state."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh):
        batch, time, _ = x.shape
        size = w_hh.shape[1]
        # time-major, so each step's slices are contiguous
        steps = x.transpose(0, 1).reshape(time * batch, -1)
        gi = torch.addmm(b_ih, steps, w_ih.t()).view(time, batch, 3 * size)
        states = x.new_zeros(time + 1, batch, size)
        gates = x.new_empty(time, batch, 2 * size)
        news = x.new_empty(time, batch, size)
        hidden_gates = x.new_empty(time, batch, 3 * size)
        w_hh_t = w_hh.t()
        for t in range(time):
            gh = torch.addmm(b_hh, states[t], w_hh_t, out=hidden_gates[t])
            rz = torch.add(gi[t, :, : 2 * size], gh[:, : 2 * size], out=gates[t]).sigmoid_()
            n = torch.addcmul(gi[t, :, 2 * size :], rz[:, :size], gh[:, 2 * size :], out=news[t]).tanh_()
            # h = (1 - z) * n + z * h_prev
            torch.lerp(n, states[t], rz[:, size:], out=states[t + 1])
        ctx.save_for_backward(steps, w_ih, w_hh, states, gates, news, hidden_gates)
        return states[1:].transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_output):
        steps, w_ih, w_hh, states, gates, news, hidden_gates = ctx.saved_tensors
        time, batch, size = news.shape
        grad_steps = grad_output.transpose(0, 1)
        grad_hidden_gates = steps.new_empty(time, batch, 3 * size)
        grad_new = steps.new_empty(time, batch, size)
        grad_h = steps.new_zeros(batch, size)
        for t in range(time - 1, -1, -1):
            grad_h = grad_h + grad_steps[t]
            rz, n = gates[t], news[t]
            r, z = rz[:, :size], rz[:, size:]
            grad_gates = grad_hidden_gates[t]
            grad_z = grad_h * (states[t] - n)
            # through n = tanh(gi_n + r * gh_n)
            grad_n = torch.mul(grad_h - grad_h * z, 1 - n * n, out=grad_new[t])
            grad_r = grad_n * hidden_gates[t, :, 2 * size :]
            grad_gates[:, :size] = grad_r * (r - r * r)
            grad_gates[:, size : 2 * size] = grad_z * (z - z * z)
            grad_gates[:, 2 * size :] = grad_n * r
            grad_h = torch.addmm(grad_h * z, grad_gates, w_hh)
        flat = grad_hidden_gates.view(time * batch, 3 * size)
        grad_w_hh = flat.t() @ states[:-1].reshape(time * batch, size)
        grad_b_hh = flat.sum(0)
        grad_inputs = torch.cat([grad_hidden_gates[..., : 2 * size], grad_new], dim=-1).view(time * batch, 3 * size)
        grad_w_ih = grad_inputs.t() @ steps
        grad_b_ih = grad_inputs.sum(0)
        grad_x = (grad_inputs @ w_ih).view(time, batch, -1).transpose(0, 1)
        return grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh


class RNNSequence(torch.autograd.Function):
    """One simple-RNN layer (tanh or relu) over `(batch, time, input)` from a zero state."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, relu: bool):
        batch, time, _ = x.shape
        size = w_hh.shape[1]
        steps = x.transpose(0, 1).reshape(time * batch, -1)
        pre = torch.addmm(b_ih + b_hh, steps, w_ih.t()).view(time, batch, size)
        states = x.new_zeros(time + 1, batch, size)
        w_hh_t = w_hh.t()
        for t in range(time):
            step = torch.addmm(pre[t], states[t], w_hh_t, out=states[t + 1])
            if relu:
                step.clamp_min_(0)
            else:
                step.tanh_()
        ctx.relu = relu
        ctx.save_for_backward(steps, w_ih, w_hh, states)
        return states[1:].transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_output):
        steps, w_ih, w_hh, states = ctx.saved_tensors
        time, batch, size = states.shape[0] - 1, states.shape[1], states.shape[2]
        grad_steps = grad_output.transpose(0, 1)
        grad_pre = steps.new_empty(time, batch, size)
        grad_h = steps.new_zeros(batch, size)
        for t in range(time - 1, -1, -1):
            h = states[t + 1]
            grad_h = grad_h + grad_steps[t]
            if ctx.relu:
                torch.mul(grad_h, h > 0, out=grad_pre[t])
            else:
                torch.mul(grad_h, 1 - h * h, out=grad_pre[t])
            grad_h = grad_pre[t] @ w_hh
        flat = grad_pre.view(time * batch, size)
        grad_w_hh = flat.t() @ states[:-1].reshape(time * batch, size)
        grad_b = flat.sum(0)
        grad_w_ih = flat.t() @ steps
        grad_x = (flat @ w_ih).view(time, batch, -1).transpose(0, 1)
        return grad_x, grad_w_ih, grad_w_hh, grad_b, grad_b.clone(), None


def uses_sequence_kernel(cell: nn.RNNBase, inputs: torch.Tensor) -> bool:
    """Whether `run_cell` takes a sequence kernel: a one-layer, one-direction GRU or simple RNN with biases, in
    float32 on CPU, while autograd records (training), outside autocast, tracing and compilation."""
    return (
        isinstance(cell, (nn.GRU, nn.RNN))
        and cell.num_layers == 1
        and not cell.bidirectional
        and cell.bias
        and cell.batch_first
        and inputs.device.type == "cpu"
        and inputs.dtype == torch.float32
        and inputs.dim() == 3
        and inputs.shape[1] > 0
        and torch.is_grad_enabled()
        and (inputs.requires_grad or cell.weight_hh_l0.requires_grad)
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
    )


def run_cell(cell: nn.RNNBase, inputs: torch.Tensor) -> torch.Tensor:
    """`cell(inputs)[0]` from a zero state, through a sequence kernel where one applies (see
    [`uses_sequence_kernel`])."""
    if not uses_sequence_kernel(cell, inputs):
        return cell(inputs)[0]
    weights = (cell.weight_ih_l0, cell.weight_hh_l0, cell.bias_ih_l0, cell.bias_hh_l0)
    if isinstance(cell, nn.GRU):
        return GRUSequence.apply(inputs, *weights)
    return RNNSequence.apply(inputs, *weights, cell.nonlinearity == "relu")
