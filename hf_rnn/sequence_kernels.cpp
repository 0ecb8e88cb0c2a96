// Sequence-level forward and backward of PyTorch's LSTM, GRU and simple-RNN layers on CPU (float32), for hf_rnn.
//
// nn.GRU / nn.RNN on CPU run one step at a time through the autograd engine: per step, a small input projection,
// a small recurrent projection, the gates' elementwise ops, and in the backward pass one small weight-gradient
// product per step. Here the input projections of all steps are one matrix product, so are the weight and input
// gradients of all steps, and only the recurrent products stay per step; the gates' arithmetic runs in plain loops
// over preallocated buffers, in ATen's vector type, with the sigmoid and tanh of ATen's vectorized operators.
//
// Each operator takes the layer's directions as lists (one entry, or two for a bidirectional layer) and runs them at
// the same time, one direction per thread of ATen's pool: a direction's small per-step products use one core well,
// where splitting each of them over two cores mostly waits (on 2 cores, 64x128x384 products take 68 us on one thread
// and 52 us on two). With one thread the directions run one after the other.
//
// Layout: inputs are batch-first (batch, time, features) as hf_rnn's layers use them; work buffers are time-major.
// The formulas are PyTorch's (torch.nn.GRU docs): r, z = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr), ...;
// n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)); h' = (1 - z) * n + z * h.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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

// The gates' arithmetic of one step, as functions over raw rows. Rows are batch entries; H is the hidden size, G the
// width of all gates. The forward steps run in ATen's vector type (AVX-512 or AVX2 where the build's CPU capability
// has it) with its sigmoid and tanh (SLEEF's, as ATen's own operators use), in one pass per row; the backward steps
// are plain loops the compiler vectorizes (restrict-qualified parameters).
using Vec = at::vec::Vectorized<float>;

inline Vec sigmoid(const Vec& a) { return (Vec(1.0f) + a.neg().exp()).reciprocal(); }

// f(j, count) over [0, n) in vector-wide chunks, the last one partial
template <typename F>
inline void vectorized(int64_t n, const F& f) {
  int64_t j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) f(j, Vec::size());
  if (j < n) f(j, n - j);
}

// One GRU step from gh = h W_hh^T (without its bias): r, z = sigmoid(gi + gh + b_hh) over the first 2H,
// gh_n = gh[2H:] + b_hh[2H:], n = tanh(gi[2H:] + r * gh_n), h' = n + z * (h - n) (PyTorch's order of operations).
void gru_step_forward(int64_t rows, int64_t H, const float* __restrict__ gi, const float* __restrict__ gh,
                      const float* __restrict__ b_hh, const float* __restrict__ h, float* __restrict__ rz,
                      float* __restrict__ n, float* __restrict__ gh_n, float* __restrict__ h_next) {
  const int64_t G = 3 * H;
  for (int64_t b = 0; b < rows; ++b) {
    const float *gi_b = gi + b * G, *gh_b = gh + b * G;
    float* rz_b = rz + b * 2 * H;
    vectorized(2 * H, [&](int64_t j, int64_t c) {
      sigmoid(Vec::loadu(gi_b + j, c) + Vec::loadu(gh_b + j, c) + Vec::loadu(b_hh + j, c)).store(rz_b + j, c);
    });
    vectorized(H, [&](int64_t j, int64_t c) {
      const int64_t k = b * H + j;
      const Vec hn = Vec::loadu(gh_b + 2 * H + j, c) + Vec::loadu(b_hh + 2 * H + j, c);
      const Vec nv = (Vec::loadu(gi_b + 2 * H + j, c) + Vec::loadu(rz_b + j, c) * hn).tanh();
      hn.store(gh_n + k, c);
      nv.store(n + k, c);
      (nv + Vec::loadu(rz_b + H + j, c) * (Vec::loadu(h + k, c) - nv)).store(h_next + k, c);
    });
  }
}

// One simple-RNN step from gh = h W_hh^T: h' = tanh(gh + gi) or relu(gh + gi), gi holding both biases
void rnn_step_forward(int64_t count, bool relu, const float* __restrict__ gi, const float* __restrict__ gh,
                      float* __restrict__ h_next) {
  vectorized(count, [&](int64_t j, int64_t c) {
    const Vec pre = Vec::loadu(gh + j, c) + Vec::loadu(gi + j, c);
    (relu ? at::vec::clamp_min(pre, Vec(0.0f)) : pre.tanh()).store(h_next + j, c);
  });
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
std::vector<Tensor> gru_forward_one(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
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
    gru_step_forward(batch, H, gi[t].data_ptr<float>(), gh.data_ptr<float>(), bias, states[t].data_ptr<float>(),
                     rz[t].data_ptr<float>(), n[t].data_ptr<float>(), gh_n[t].data_ptr<float>(),
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
std::vector<Tensor> gru_backward_one(const Tensor& grad_outputs, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh,
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
std::vector<Tensor> rnn_forward_one(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                const Tensor& b_hh, bool relu) {
  check_layer(x, w_ih, w_hh, b_ih, b_hh, 1);
  const int64_t batch = x.size(0), time = x.size(1), hidden = w_hh.size(1);
  // both biases go into the input projections, computed for all steps at once
  Tensor gi = at::addmm(b_ih + b_hh, time_major(x), w_ih.t()).view({time, batch, hidden});
  Tensor states = at::zeros({time + 1, batch, hidden}, x.options());
  Tensor w_hh_t = w_hh.t();
  Tensor gh = at::empty({batch, hidden}, x.options());  // a small buffer that stays in cache (see lstm_forward_one below)
  for (int64_t t = 0; t < time; ++t) {
    at::mm_out(gh, states[t], w_hh_t);
    rnn_step_forward(batch * hidden, relu, gi[t].data_ptr<float>(), gh.data_ptr<float>(),
                     states[t + 1].data_ptr<float>());
  }
  return {states.narrow(0, 1, time).transpose(0, 1).contiguous(), states};
}

std::vector<Tensor> rnn_backward_one(const Tensor& grad_outputs, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh,
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


// LSTM (PyTorch's gate order i, f, g, o): c' = f * c + i * g, h' = o * tanh(c').

// One LSTM step from gh = h W_hh^T (without its bias): the gates i, f, o = sigmoid and g = tanh of gi + gh + b_hh;
// c' = f * c + i * g, tanh(c'), h' = o * tanh(c').
void lstm_step_forward(int64_t rows, int64_t H, const float* __restrict__ gi, const float* __restrict__ gh,
                       const float* __restrict__ b_hh, const float* __restrict__ c, float* __restrict__ gates,
                       float* __restrict__ c_next,
                       float* __restrict__ tanh_c, float* __restrict__ h_next) {
  const int64_t G = 4 * H;
  for (int64_t b = 0; b < rows; ++b) {
    const float *gi_b = gi + b * G, *gh_b = gh + b * G;
    float* g = gates + b * G;
    vectorized(H, [&](int64_t j, int64_t n) {
      auto pre = [&](int64_t gate) {
        const int64_t at = gate * H + j;
        return Vec::loadu(gh_b + at, n) + Vec::loadu(gi_b + at, n) + Vec::loadu(b_hh + at, n);
      };
      const Vec i = sigmoid(pre(0)), f = sigmoid(pre(1)), cand = pre(2).tanh(), o = sigmoid(pre(3));
      const int64_t k = b * H + j;
      const Vec cv = f * Vec::loadu(c + k, n) + i * cand, tc = cv.tanh();
      i.store(g + j, n);
      f.store(g + H + j, n);
      cand.store(g + 2 * H + j, n);
      o.store(g + 3 * H + j, n);
      cv.store(c_next + k, n);
      tc.store(tanh_c + k, n);
      (o * tc).store(h_next + k, n);
    });
  }
}

// From the gradient reaching h_t (dh_rec through W_hh from step t+1, go from the outputs) and c_t (dc, updated in
// place to the gradient reaching c_{t-1}): the pre-activation gradients of the four gates.
void lstm_step_backward(int64_t rows, int64_t H, const float* __restrict__ dh_rec, const float* __restrict__ go,
                        const float* __restrict__ gates, const float* __restrict__ c_prev,
                        const float* __restrict__ tanh_c, float* __restrict__ dc, float* __restrict__ d_gates) {
  const int64_t G = 4 * H;
  const Vec one(1.0f);
  for (int64_t b = 0; b < rows; ++b) {
    const float* g = gates + b * G;
    float* dg = d_gates + b * G;
    vectorized(H, [&](int64_t j, int64_t n) {
      const int64_t k = b * H + j;
      const Vec i = Vec::loadu(g + j, n), f = Vec::loadu(g + H + j, n), cand = Vec::loadu(g + 2 * H + j, n);
      const Vec o = Vec::loadu(g + 3 * H + j, n), tc = Vec::loadu(tanh_c + k, n);
      const Vec dh = Vec::loadu(dh_rec + k, n) + Vec::loadu(go + k, n);
      const Vec dct = Vec::loadu(dc + k, n) + dh * o * (one - tc * tc);
      (dct * cand * i * (one - i)).store(dg + j, n);
      (dct * Vec::loadu(c_prev + k, n) * f * (one - f)).store(dg + H + j, n);
      (dct * i * (one - cand * cand)).store(dg + 2 * H + j, n);
      (dh * tc * o * (one - o)).store(dg + 3 * H + j, n);
      (dct * f).store(dc + k, n);
    });
  }
}

// Forward of an LSTM layer with zero initial states: the outputs, the states h_0..h_T and c_0..c_T, the activated
// gates (time, batch, 4 * hidden) and tanh(c_1..c_T).
std::vector<Tensor> lstm_forward_one(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                     const Tensor& b_hh) {
  check_layer(x, w_ih, w_hh, b_ih, b_hh, 4);
  const int64_t batch = x.size(0), time = x.size(1), H = w_hh.size(1), G = 4 * H;
  auto options = x.options();
  Tensor gi = at::addmm(b_ih, time_major(x), w_ih.t()).view({time, batch, G});
  Tensor states = at::zeros({time + 1, batch, H}, options);
  Tensor cells = at::zeros({time + 1, batch, H}, options);
  Tensor gates = at::empty({time, batch, G}, options);
  Tensor tanh_c = at::empty({time, batch, H}, options);
  Tensor w_hh_t = w_hh.t();
  const float* bias = b_hh.data_ptr<float>();
  // the recurrent product goes to one small buffer that stays in cache: written into the large gates buffer, whose
  // pages are touched for the first time, the products took 1.5x as long
  Tensor gh = at::empty({batch, G}, options);
  for (int64_t t = 0; t < time; ++t) {
    at::mm_out(gh, states[t], w_hh_t);
    lstm_step_forward(batch, H, gi[t].data_ptr<float>(), gh.data_ptr<float>(), bias, cells[t].data_ptr<float>(),
                      gates[t].data_ptr<float>(), cells[t + 1].data_ptr<float>(), tanh_c[t].data_ptr<float>(),
                      states[t + 1].data_ptr<float>());
  }
  Tensor outputs = states.narrow(0, 1, time).transpose(0, 1).contiguous();
  return {outputs, states, cells, gates, tanh_c};
}

std::vector<Tensor> lstm_backward_one(const Tensor& grad_outputs, const Tensor& x, const Tensor& w_ih,
                                      const Tensor& w_hh, const Tensor& states, const Tensor& cells,
                                      const Tensor& gates, const Tensor& tanh_c, bool need_grad_x) {
  const int64_t batch = x.size(0), time = x.size(1), H = w_hh.size(1), G = 4 * H;
  auto options = x.options();
  Tensor grad_tm = grad_outputs.transpose(0, 1).contiguous();
  Tensor d_gates = at::empty({time, batch, G}, options);
  Tensor dh_rec = at::zeros({batch, H}, options);
  Tensor dc = at::zeros({batch, H}, options);
  for (int64_t t = time - 1; t >= 0; --t) {
    lstm_step_backward(batch, H, dh_rec.data_ptr<float>(), grad_tm[t].data_ptr<float>(), gates[t].data_ptr<float>(),
                       cells[t].data_ptr<float>(), tanh_c[t].data_ptr<float>(), dc.data_ptr<float>(),
                       d_gates[t].data_ptr<float>());
    at::mm_out(dh_rec, d_gates[t], w_hh);
  }
  Tensor d_flat = d_gates.view({-1, G});
  return layer_gradients(d_flat, d_flat, x, w_ih, states, need_grad_x);
}

// The operators: each argument is a list with one entry per direction, the results are flattened direction by
// direction. The directions run concurrently (see the top of this file); ATen's operators called inside a parallel
// region run on their calling thread.
// Inside one direction's thread of a parallel region, MKL's matrix products must not start threads of their own (4
// threads on 2 cores made each product 1.7x slower than on one thread): the thread's OpenMP team size is 1 meanwhile.
struct OneThreadPerDirection {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  bool in_team = omp_get_num_threads() > 1;
  OneThreadPerDirection() {
    if (in_team) omp_set_num_threads(1);
  }
  ~OneThreadPerDirection() {
    if (in_team) omp_set_num_threads(saved);
  }
#endif
};

template <typename F>
std::vector<Tensor> per_direction(int64_t directions, const F& run) {
  TORCH_CHECK(directions == 1 || directions == 2, "hf_rnn sequence kernels take one or two directions");
  std::vector<std::vector<Tensor>> results(directions);
  at::parallel_for(0, directions, 1, [&](int64_t begin, int64_t end) {
    at::NoGradGuard no_grad;  // pool threads do not inherit the caller's grad mode
    OneThreadPerDirection one_thread;
    for (int64_t d = begin; d < end; ++d) results[d] = run(d);
  });
  std::vector<Tensor> flat;
  for (auto& result : results) flat.insert(flat.end(), result.begin(), result.end());
  return flat;
}

void check_lists(std::initializer_list<at::TensorList> lists) {
  for (const auto& list : lists) {
    TORCH_CHECK(list.size() == lists.begin()->size(), "every argument needs one tensor per direction");
  }
}

std::vector<Tensor> gru_forward(at::TensorList x, at::TensorList w_ih, at::TensorList w_hh, at::TensorList b_ih,
                                at::TensorList b_hh) {
  check_lists({x, w_ih, w_hh, b_ih, b_hh});
  return per_direction(x.size(), [&](int64_t d) { return gru_forward_one(x[d], w_ih[d], w_hh[d], b_ih[d], b_hh[d]); });
}

std::vector<Tensor> gru_backward(at::TensorList grad, at::TensorList x, at::TensorList w_ih, at::TensorList w_hh,
                                 at::TensorList states, at::TensorList rz, at::TensorList n, at::TensorList gh_n,
                                 bool need_grad_x) {
  check_lists({grad, x, w_ih, w_hh, states, rz, n, gh_n});
  return per_direction(x.size(), [&](int64_t d) {
    return gru_backward_one(grad[d], x[d], w_ih[d], w_hh[d], states[d], rz[d], n[d], gh_n[d], need_grad_x);
  });
}

std::vector<Tensor> rnn_forward(at::TensorList x, at::TensorList w_ih, at::TensorList w_hh, at::TensorList b_ih,
                                at::TensorList b_hh, bool relu) {
  check_lists({x, w_ih, w_hh, b_ih, b_hh});
  return per_direction(x.size(),
                       [&](int64_t d) { return rnn_forward_one(x[d], w_ih[d], w_hh[d], b_ih[d], b_hh[d], relu); });
}

std::vector<Tensor> rnn_backward(at::TensorList grad, at::TensorList x, at::TensorList w_ih, at::TensorList w_hh,
                                 at::TensorList states, bool relu, bool need_grad_x) {
  check_lists({grad, x, w_ih, w_hh, states});
  return per_direction(x.size(), [&](int64_t d) {
    return rnn_backward_one(grad[d], x[d], w_ih[d], w_hh[d], states[d], relu, need_grad_x);
  });
}

std::vector<Tensor> lstm_forward(at::TensorList x, at::TensorList w_ih, at::TensorList w_hh, at::TensorList b_ih,
                                 at::TensorList b_hh) {
  check_lists({x, w_ih, w_hh, b_ih, b_hh});
  return per_direction(x.size(),
                       [&](int64_t d) { return lstm_forward_one(x[d], w_ih[d], w_hh[d], b_ih[d], b_hh[d]); });
}

std::vector<Tensor> lstm_backward(at::TensorList grad, at::TensorList x, at::TensorList w_ih, at::TensorList w_hh,
                                  at::TensorList states, at::TensorList cells, at::TensorList gates,
                                  at::TensorList tanh_c, bool need_grad_x) {
  check_lists({grad, x, w_ih, w_hh, states, cells, gates, tanh_c});
  return per_direction(x.size(), [&](int64_t d) {
    return lstm_backward_one(grad[d], x[d], w_ih[d], w_hh[d], states[d], cells[d], gates[d], tanh_c[d], need_grad_x);
  });
}

}  // namespace

TORCH_LIBRARY(hf_rnn_kernels, m) {
  m.def("gru_forward(Tensor[] x, Tensor[] w_ih, Tensor[] w_hh, Tensor[] b_ih, Tensor[] b_hh) -> Tensor[]",
        &gru_forward);
  m.def("gru_backward(Tensor[] grad, Tensor[] x, Tensor[] w_ih, Tensor[] w_hh, Tensor[] states, Tensor[] rz,"
        " Tensor[] n, Tensor[] gh_n, bool need_grad_x) -> Tensor[]",
        &gru_backward);
  m.def("rnn_forward(Tensor[] x, Tensor[] w_ih, Tensor[] w_hh, Tensor[] b_ih, Tensor[] b_hh, bool relu) -> Tensor[]",
        &rnn_forward);
  m.def("rnn_backward(Tensor[] grad, Tensor[] x, Tensor[] w_ih, Tensor[] w_hh, Tensor[] states, bool relu,"
        " bool need_grad_x) -> Tensor[]",
        &rnn_backward);
  m.def("lstm_forward(Tensor[] x, Tensor[] w_ih, Tensor[] w_hh, Tensor[] b_ih, Tensor[] b_hh) -> Tensor[]",
        &lstm_forward);
  m.def("lstm_backward(Tensor[] grad, Tensor[] x, Tensor[] w_ih, Tensor[] w_hh, Tensor[] states, Tensor[] cells,"
        " Tensor[] gates, Tensor[] tanh_c, bool need_grad_x) -> Tensor[]",
        &lstm_backward);
}
