// Sequence-level forward and backward of PyTorch's GRU and simple-RNN layers on CPU (float32), for hf_rnn.
//
// nn.GRU / nn.RNN on CPU run one step at a time through the autograd engine: per step, a small input projection,
// a small recurrent projection, the gates' elementwise ops, and in the backward pass one small weight-gradient
// product per step. Here the input projections of all steps are one matrix product, so are the weight and input
// gradients of all steps, and only the recurrent products stay per step; the gates' arithmetic runs in plain loops
// over preallocated buffers, and the nonlinearities through ATen's own vectorized sigmoid and tanh.
//
// Layout: inputs are batch-first (batch, time, features) as hf_rnn's layers use them; work buffers are time-major.
// The formulas are PyTorch's (torch.nn.GRU docs): r, z = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr), ...;
// n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)); h' = (1 - z) * n + z * h.

#include <ATen/ATen.h>
#include <torch/library.h>

namespace {

using at::Tensor;

// The raw-pointer loops need contiguous float32 tensors of the layer's shapes: checked, since the operators are
// callable through torch.ops as well as through hf_rnn's autograd Functions.
void check_layer(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                 int64_t gates) {
  for (const Tensor* t : {&x, &w_ih, &w_hh, &b_ih, &b_hh}) {
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == at::kFloat && t->is_contiguous(),
                "hf_rnn sequence kernels take contiguous float32 CPU tensors");
  }
  const int64_t hidden = w_hh.size(1);
  TORCH_CHECK(x.dim() == 3 && x.size(2) == w_ih.size(1), "input must be (batch, time, input_size)");
  TORCH_CHECK(w_ih.size(0) == gates * hidden && w_hh.size(0) == gates * hidden, "weights do not match hidden size");
  TORCH_CHECK(b_ih.numel() == gates * hidden && b_hh.numel() == gates * hidden, "biases do not match hidden size");
}

// x (batch, time, input) -> time-major (time * batch, input), contiguous
Tensor time_major(const Tensor& x) { return x.transpose(0, 1).contiguous().view({-1, x.size(2)}); }

// The gates' arithmetic of one step, as functions so that the compiler sees restrict-qualified parameters and
// vectorizes the loops. Rows are batch entries; H is the hidden size, G = 3 * H the width of the three gates.

// rz = gi[:, :2H] + gh[:, :2H] + b_hh[:2H] (then sigmoid); gh_n = gh[:, 2H:] + b_hh[2H:]
void gru_gates_in(int64_t rows, int64_t H, const float* __restrict__ gi, const float* __restrict__ gh,
                  const float* __restrict__ b_hh, float* __restrict__ rz, float* __restrict__ gh_n) {
  const int64_t G = 3 * H;
  for (int64_t b = 0; b < rows; ++b) {
    for (int64_t j = 0; j < 2 * H; ++j) rz[b * 2 * H + j] = gi[b * G + j] + gh[b * G + j] + b_hh[j];
    for (int64_t j = 0; j < H; ++j) gh_n[b * H + j] = gh[b * G + 2 * H + j] + b_hh[2 * H + j];
  }
}

// n = gi[:, 2H:] + r * gh_n (then tanh)
void gru_new_gate_in(int64_t rows, int64_t H, const float* __restrict__ gi, const float* __restrict__ rz,
                     const float* __restrict__ gh_n, float* __restrict__ n) {
  const int64_t G = 3 * H;
  for (int64_t b = 0; b < rows; ++b) {
    for (int64_t j = 0; j < H; ++j) n[b * H + j] = gi[b * G + 2 * H + j] + rz[b * 2 * H + j] * gh_n[b * H + j];
  }
}

// h' = n + z * (h - n), PyTorch's order of operations
void gru_state(int64_t rows, int64_t H, const float* __restrict__ rz, const float* __restrict__ n,
               const float* __restrict__ h, float* __restrict__ h_next) {
  for (int64_t b = 0; b < rows; ++b) {
    for (int64_t j = 0; j < H; ++j) {
      const float z = rz[b * 2 * H + H + j], nv = n[b * H + j];
      h_next[b * H + j] = nv + z * (h[b * H + j] - nv);
    }
  }
}

// From the gradient reaching h_t (dh_rec from step t+1 through W_hh, dh_direct = the previous step's d * z, go from
// the outputs): the gradients of the input projections (dgi) and recurrent projections (dgh), and d * z for step t-1.
void gru_step_backward(int64_t rows, int64_t H, const float* __restrict__ dh_rec, const float* __restrict__ dh_direct,
                       const float* __restrict__ go, const float* __restrict__ rz, const float* __restrict__ n,
                       const float* __restrict__ gh_n, const float* __restrict__ h, float* __restrict__ dgi,
                       float* __restrict__ dgh, float* __restrict__ dh_direct_out) {
  const int64_t G = 3 * H;
  for (int64_t b = 0; b < rows; ++b) {
    for (int64_t j = 0; j < H; ++j) {
      const int64_t i = b * H + j;
      const float d = dh_rec[i] + dh_direct[i] + go[i];
      const float r = rz[b * 2 * H + j], z = rz[b * 2 * H + H + j], nv = n[i];
      const float dn = d * (1.0f - z) * (1.0f - nv * nv);
      const float dz = d * (h[i] - nv) * z * (1.0f - z);
      const float dr = dn * gh_n[i] * r * (1.0f - r);
      dgi[b * G + j] = dr;
      dgi[b * G + H + j] = dz;
      dgi[b * G + 2 * H + j] = dn;
      dgh[b * G + j] = dr;
      dgh[b * G + H + j] = dz;
      dgh[b * G + 2 * H + j] = dn * r;
      dh_direct_out[i] = d * z;
    }
  }
}

// Forward of a GRU layer with a zero initial state. Returns the outputs (batch, time, hidden) and what the backward
// pass needs: the states h_0..h_T (time + 1, batch, hidden), the gates r and z (time, batch, 2 * hidden), the new
// gate n (time, batch, hidden) and the recurrent projection of the new gate h W_hn^T + b_hn (time, batch, hidden).
std::vector<Tensor> gru_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                const Tensor& b_hh) {
  check_layer(x, w_ih, w_hh, b_ih, b_hh, 3);
  const int64_t batch = x.size(0), time = x.size(1), H = w_hh.size(1), G = 3 * H;
  auto options = x.options();
  // all input projections at once: (time, batch, 3 * hidden)
  Tensor gi = at::addmm(b_ih, time_major(x), w_ih.t()).view({time, batch, G});
  Tensor states = at::zeros({time + 1, batch, H}, options);
  Tensor rz = at::empty({time, batch, 2 * H}, options);
  Tensor n = at::empty({time, batch, H}, options);
  Tensor gh_n = at::empty({time, batch, H}, options);
  Tensor gh = at::empty({batch, G}, options);
  Tensor w_hh_t = w_hh.t();
  const float* bias = b_hh.data_ptr<float>();
  for (int64_t t = 0; t < time; ++t) {
    at::mm_out(gh, states[t], w_hh_t);
    Tensor rz_t = rz[t], n_t = n[t];
    const float* gi_t = gi[t].data_ptr<float>();
    gru_gates_in(batch, H, gi_t, gh.data_ptr<float>(), bias, rz_t.data_ptr<float>(), gh_n[t].data_ptr<float>());
    rz_t.sigmoid_();
    gru_new_gate_in(batch, H, gi_t, rz_t.data_ptr<float>(), gh_n[t].data_ptr<float>(), n_t.data_ptr<float>());
    n_t.tanh_();
    gru_state(batch, H, rz_t.data_ptr<float>(), n_t.data_ptr<float>(), states[t].data_ptr<float>(),
              states[t + 1].data_ptr<float>());
  }
  // the outputs are a tensor of their own, not a view of the saved states: callers may write into them
  Tensor outputs = states.narrow(0, 1, time).transpose(0, 1).contiguous();
  return {outputs, states, rz, n, gh_n};
}

// The gradients both layers get from the pre-activation gradients of all steps at once, (time * batch, gates * hidden):
// d_gi of the input projections, d_gh of the recurrent ones (the same tensor for the simple RNN). grad_x is skipped
// (an empty tensor) when the input needs none: cached frontend features, a frozen embedding.
std::vector<Tensor> layer_gradients(const Tensor& d_gi, const Tensor& d_gh, const Tensor& x, const Tensor& w_ih,
                                    const Tensor& states, bool need_grad_x) {
  const int64_t batch = x.size(0), time = x.size(1), H = states.size(2);
  Tensor grad_x = need_grad_x ? at::mm(d_gi, w_ih).view({time, batch, -1}).transpose(0, 1).contiguous()
                              : at::empty({0}, x.options());
  Tensor grad_w_ih = at::mm(d_gi.t(), time_major(x));
  Tensor grad_w_hh = at::mm(d_gh.t(), states.narrow(0, 0, time).reshape({-1, H}));
  Tensor grad_b_ih = d_gi.sum(0);
  Tensor grad_b_hh = d_gh.is_same(d_gi) ? grad_b_ih : d_gh.sum(0);
  return {grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh};
}

// Backward of gru_forward: gradients of x, w_ih, w_hh, b_ih, b_hh from the gradient of the outputs.
std::vector<Tensor> gru_backward(const Tensor& grad_outputs, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh,
                                 const Tensor& states, const Tensor& rz, const Tensor& n, const Tensor& gh_n,
                                 bool need_grad_x) {
  const int64_t batch = x.size(0), time = x.size(1), H = w_hh.size(1), G = 3 * H;
  auto options = x.options();
  Tensor grad_tm = grad_outputs.transpose(0, 1).contiguous();  // (time, batch, hidden)
  Tensor d_gi = at::empty({time, batch, G}, options);
  Tensor d_gh = at::empty({time, batch, G}, options);
  Tensor dh_rec = at::zeros({batch, H}, options);
  Tensor dh_direct = at::zeros({batch, H}, options);
  for (int64_t t = time - 1; t >= 0; --t) {
    gru_step_backward(batch, H, dh_rec.data_ptr<float>(), dh_direct.data_ptr<float>(), grad_tm[t].data_ptr<float>(),
                      rz[t].data_ptr<float>(), n[t].data_ptr<float>(), gh_n[t].data_ptr<float>(),
                      states[t].data_ptr<float>(), d_gi[t].data_ptr<float>(), d_gh[t].data_ptr<float>(),
                      dh_direct.data_ptr<float>());
    // the gradient reaching h_{t-1} through W_hh; its direct part (d * z) is added in the next step's loop
    at::mm_out(dh_rec, d_gh[t], w_hh);
  }
  return layer_gradients(d_gi.view({-1, G}), d_gh.view({-1, G}), x, w_ih, states, need_grad_x);
}

// Forward of a simple RNN layer (tanh or relu) with a zero initial state: outputs and states h_0..h_T.
std::vector<Tensor> rnn_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                const Tensor& b_hh, bool relu) {
  check_layer(x, w_ih, w_hh, b_ih, b_hh, 1);
  const int64_t batch = x.size(0), time = x.size(1), hidden = w_hh.size(1);
  // both biases go into the input projections, computed for all steps at once
  Tensor gi = at::addmm(b_ih + b_hh, time_major(x), w_ih.t()).view({time, batch, hidden});
  Tensor states = at::zeros({time + 1, batch, hidden}, x.options());
  Tensor w_hh_t = w_hh.t();
  for (int64_t t = 0; t < time; ++t) {
    Tensor h = states[t + 1];
    at::addmm_out(h, gi[t], states[t], w_hh_t);
    relu ? at::relu_(h) : at::tanh_(h);
  }
  return {states.narrow(0, 1, time).transpose(0, 1).contiguous(), states};
}

std::vector<Tensor> rnn_backward(const Tensor& grad_outputs, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh,
                                 const Tensor& states, bool relu, bool need_grad_x) {
  const int64_t batch = x.size(0), time = x.size(1), H = w_hh.size(1);
  Tensor grad_tm = grad_outputs.transpose(0, 1).contiguous();
  Tensor d_pre = at::empty({time, batch, H}, x.options());
  Tensor dh = at::zeros({batch, H}, x.options());
  for (int64_t t = time - 1; t >= 0; --t) {
    const float* __restrict__ go = grad_tm[t].data_ptr<float>();
    const float* __restrict__ h = states[t + 1].data_ptr<float>();
    const float* __restrict__ dhp = dh.data_ptr<float>();
    float* __restrict__ dp = d_pre[t].data_ptr<float>();
    const int64_t count = batch * H;
    if (relu) {
      for (int64_t i = 0; i < count; ++i) dp[i] = h[i] > 0.0f ? dhp[i] + go[i] : 0.0f;
    } else {
      for (int64_t i = 0; i < count; ++i) dp[i] = (dhp[i] + go[i]) * (1.0f - h[i] * h[i]);
    }
    at::mm_out(dh, d_pre[t], w_hh);
  }
  Tensor d_flat = d_pre.view({-1, H});
  return layer_gradients(d_flat, d_flat, x, w_ih, states, need_grad_x);
}

}  // namespace

TORCH_LIBRARY(hf_rnn_kernels, m) {
  m.def("gru_forward(Tensor x, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh) -> Tensor[]", &gru_forward);
  m.def("gru_backward(Tensor grad, Tensor x, Tensor w_ih, Tensor w_hh, Tensor states, Tensor rz, Tensor n, Tensor gh_n,"
        " bool need_grad_x)"
        " -> Tensor[]",
        &gru_backward);
  m.def("rnn_forward(Tensor x, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, bool relu) -> Tensor[]",
        &rnn_forward);
  m.def("rnn_backward(Tensor grad, Tensor x, Tensor w_ih, Tensor w_hh, Tensor states, bool relu, bool need_grad_x)"
        " -> Tensor[]",
        &rnn_backward);
}
