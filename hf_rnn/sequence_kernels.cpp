// Sequence-level forward and backward of PyTorch's LSTM, GRU and simple-RNN layers on CPU (float32), for hf_rnn.
//
// nn.GRU / nn.RNN on CPU run one step at a time through the autograd engine: per step, a small input projection,
// a small recurrent projection, the gates' elementwise ops, and in the backward pass one small weight-gradient
// product per step. Here the input projections of all steps are one matrix product, so are the weight and input
// gradients of all steps, and only the recurrent products stay per step; the gates' arithmetic runs in plain loops
// over preallocated buffers, in ATen's vector type, with the sigmoid and tanh of ATen's vectorized operators.
//
// Each operator takes the layer's directions as lists (one entry, or two for a bidirectional layer). On a pool of two
// threads (a 2-core machine) the two directions run at the same time, one per thread: a direction's small per-step
// products use one core well, where splitting each of them over two cores mostly waits (64x128x384 products took 68 us
// on one thread and 52 us on two). With one thread, or more than two (not measured: there a direction's products may
// use several cores better), the directions run one after the other on the whole pool.
//
// Padding is skipped: given each sequence's length, the work buffers hold only real positions, packed time-major as
// PyTorch's PackedSequence is (step t's block holds the sequences longer than t, longest first), so that every matrix
// product, per step or over all steps, runs on real positions only; padded positions of the outputs are zeros (as
// `pad_packed_sequence` gives), and their gradients are not used. Inputs and outputs are batch-first (batch, time, ...)
// as hf_rnn's layers use them.
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

// The raw-pointer loops need contiguous float32 CPU tensors of the layer's shapes: checked, since the operators are
// callable through torch.ops as well as through hf_rnn's autograd Functions.
bool raw_floats(const Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(); }

void check_layer(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                 int64_t gates) {
  for (const Tensor* t : {&x, &w_ih, &w_hh, &b_ih, &b_hh}) {
    TORCH_CHECK(raw_floats(*t), "hf_rnn sequence kernels take contiguous float32 CPU tensors");
  }
  const int64_t hidden = w_hh.size(1);
  TORCH_CHECK(x.dim() == 3 && x.size(2) == w_ih.size(1), "input must be (batch, time, input_size)");
  TORCH_CHECK(w_ih.size(0) == gates * hidden && w_hh.size(0) == gates * hidden, "weights do not match hidden size");
  TORCH_CHECK(b_ih.numel() == gates * hidden && b_hh.numel() == gates * hidden, "biases do not match hidden size");
}

// The backward operators' tensors: the gradient of the outputs (batch, time, hidden) and the saved packed tensors,
// contiguous float32 with one row per real position and the widths the forward operator gave them.
void check_saved(const Tensor& grad, const Tensor& w_ih, const Tensor& w_hh, int64_t gates, int64_t total,
                 std::initializer_list<std::pair<const Tensor*, int64_t>> saved) {
  const int64_t hidden = w_hh.size(1);
  for (const Tensor* w : {&w_ih, &w_hh}) {
    TORCH_CHECK(raw_floats(*w) && w->dim() == 2 && w->size(0) == gates * hidden,
                "hf_rnn sequence kernels take contiguous float32 CPU weights of the layer's shapes");
  }
  TORCH_CHECK(raw_floats(grad) && grad.dim() == 3 && grad.size(2) == hidden,
              "the gradient must be a contiguous float32 CPU tensor (batch, time, hidden_size)");
  for (const auto& [t, width] : saved) {
    TORCH_CHECK(raw_floats(*t) && t->dim() == 2 && t->size(0) == total && t->size(1) == width,
                "the saved tensors must be what the forward operator returned for these lengths");
  }
}

// Where a batch's real positions go in the packed, time-major layout.
struct Packing {
  int64_t batch = 0, time = 0, total = 0;
  std::vector<int64_t> sizes;    // per step: how many sequences are longer than it (the first `sizes[t]` rows)
  std::vector<int64_t> offsets;  // per step: its first packed row
  Tensor index;                  // per packed row: its row in the (batch * time) batch-first positions

  int64_t steps() const { return static_cast<int64_t>(sizes.size()); }

  // (batch, time, features) -> (total, features)
  Tensor pack(const Tensor& x) const { return x.reshape({batch * time, x.size(2)}).index_select(0, index); }

  // (total, features) -> (batch, time, features), zeros at padded positions
  // (a tensor of its own, not a view: callers may write into the outputs)
  Tensor unpack(const Tensor& packed) const {
    Tensor unpacked = at::zeros({batch, time, packed.size(1)}, packed.options());
    unpacked.view({batch * time, packed.size(1)}).index_copy_(0, index, packed);
    return unpacked;
  }
};

Packing make_packing(const Tensor& lengths, int64_t batch, int64_t time) {
  TORCH_CHECK(lengths.device().is_cpu() && lengths.scalar_type() == at::kLong && lengths.dim() == 1 &&
                  lengths.size(0) == batch,
              "lengths must be an int64 CPU tensor with one entry per sequence");
  const Tensor lengths_c = lengths.contiguous();
  Packing p;
  p.batch = batch;
  p.time = time;
  // longest first, ties in batch order
  Tensor order = std::get<1>(lengths_c.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true)).contiguous();
  const int64_t* by_length = order.data_ptr<int64_t>();
  const int64_t* length = lengths_c.data_ptr<int64_t>();
  const int64_t longest = batch ? length[by_length[0]] : 0;
  for (int64_t b = 0; b < batch; ++b) {
    TORCH_CHECK(length[b] >= 0 && length[b] <= time, "lengths must lie between 0 and the input's time steps");
  }
  int64_t active = batch;
  for (int64_t t = 0; t < longest; ++t) {
    while (active > 0 && length[by_length[active - 1]] <= t) --active;
    p.offsets.push_back(p.total);
    p.sizes.push_back(active);
    p.total += active;
  }
  p.index = at::empty({p.total}, lengths_c.options());
  int64_t* rows = p.index.data_ptr<int64_t>();
  for (int64_t t = 0; t < longest; ++t) {
    for (int64_t i = 0; i < p.sizes[t]; ++i) rows[p.offsets[t] + i] = by_length[i] * time + t;
  }
  return p;
}

// rows [offset, offset + count) of a 2-D tensor, as a contiguous view
Tensor rows(const Tensor& t, int64_t offset, int64_t count) { return t.narrow(0, offset, count); }

// out = a @ b, into a view (the per-step products write into the first rows of a buffer)
void mm_into(Tensor out, const Tensor& a, const Tensor& b) { at::mm_out(out, a, b); }

// The states each step starts from: `prev` holds h_{t-1} at step t's packed rows (zeros at step 0); step t's outputs
// `out` feed the rows of step t + 1, which are the first `sizes[t + 1]` of them.
void carry(const Packing& p, int64_t t, const Tensor& out, const Tensor& prev) {
  if (t + 1 < p.steps()) rows(prev, p.offsets[t + 1], p.sizes[t + 1]).copy_(rows(out, p.offsets[t], p.sizes[t + 1]));
}

// The forward recurrence every cell shares, from zero initial states: per step t, gh = h_{t-1} W_hh^T for its `m`
// packed rows (from `prev`, starting at row `o`), then `step(o, m, gh)` computes the cell's outputs into `out`, which
// carry on to step t + 1. The product goes to one small buffer that stays in cache: written into a large buffer whose
// pages are touched for the first time, the products took 1.5x as long.
template <typename Step>
void recur(const Packing& p, const Tensor& w_hh, const Tensor& prev, const Tensor& out, const Step& step) {
  Tensor gh = at::empty({p.batch, w_hh.size(0)}, prev.options());
  Tensor w_hh_t = w_hh.t();
  if (p.steps() > 0) rows(prev, 0, p.sizes[0]).zero_();
  for (int64_t t = 0; t < p.steps(); ++t) {
    const int64_t o = p.offsets[t], m = p.sizes[t];
    mm_into(rows(gh, 0, m), rows(prev, o, m), w_hh_t);
    step(t, o, m, gh.data_ptr<float>());
    carry(p, t, out, prev);
  }
}

// The gates' arithmetic of one step, as functions over raw rows. Rows are batch entries; H is the hidden size, G the
// width of all gates. The forward steps run in ATen's vector type (AVX-512 or AVX2 where the build's CPU capability
// has it) with its sigmoid and tanh (SLEEF's, as ATen's own operators use), in one pass per row; the backward steps
// are plain loops the compiler vectorizes (restrict-qualified parameters), or in the vector type as well.
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
// dh_direct is read and written in place, element by element (so it is not restrict-qualified).
void gru_step_backward(int64_t rows, int64_t H, const float* __restrict__ dh_rec, const float* dh_direct,
                       const float* __restrict__ go, const float* __restrict__ rz, const float* __restrict__ n,
                       const float* __restrict__ gh_n, const float* __restrict__ h, float* __restrict__ dgi,
                       float* __restrict__ dgh, float* dh_direct_out) {
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

// Forward of a GRU layer with a zero initial state. Returns the outputs (batch, time, hidden) and, packed, what the
// backward pass needs: the input, h_{t-1}, the gates r and z (2 * hidden), the new gate n and the recurrent projection
// of the new gate h W_hn^T + b_hn.
std::vector<Tensor> gru_forward_one(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                    const Tensor& b_hh, const Packing& p) {
  check_layer(x, w_ih, w_hh, b_ih, b_hh, 3);
  const int64_t H = w_hh.size(1), G = 3 * H;
  auto options = x.options();
  Tensor xp = p.pack(x);
  Tensor gi = at::addmm(b_ih, xp, w_ih.t());  // all input projections at once
  Tensor prev = at::empty({p.total, H}, options), out = at::empty({p.total, H}, options);
  Tensor rz = at::empty({p.total, 2 * H}, options), n = at::empty({p.total, H}, options);
  Tensor gh_n = at::empty({p.total, H}, options);
  const float* bias = b_hh.data_ptr<float>();
  recur(p, w_hh, prev, out, [&](int64_t, int64_t o, int64_t m, const float* gh) {
    gru_step_forward(m, H, gi.data_ptr<float>() + o * G, gh, bias, prev.data_ptr<float>() + o * H,
                     rz.data_ptr<float>() + o * 2 * H, n.data_ptr<float>() + o * H, gh_n.data_ptr<float>() + o * H,
                     out.data_ptr<float>() + o * H);
  });
  return {p.unpack(out), xp, prev, rz, n, gh_n};
}

// The gradients every cell gets from the packed pre-activation gradients of all steps at once: d_gi of the input
// projections, d_gh of the recurrent ones (the same tensor for the LSTM and simple RNN). grad_x is skipped (an empty
// tensor) when the input needs none: cached frontend features, a frozen embedding.
std::vector<Tensor> layer_gradients(const Tensor& d_gi, const Tensor& d_gh, const Tensor& xp, const Tensor& w_ih,
                                    const Tensor& prev, const Packing& p, bool need_grad_x) {
  Tensor grad_x = need_grad_x ? p.unpack(at::mm(d_gi, w_ih)) : at::empty({0}, xp.options());
  Tensor grad_w_ih = at::mm(d_gi.t(), xp);
  Tensor grad_w_hh = at::mm(d_gh.t(), prev);
  Tensor grad_b_ih = d_gi.sum(0);
  Tensor grad_b_hh = d_gh.is_same(d_gi) ? grad_b_ih : d_gh.sum(0);
  return {grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh};
}

// Backward of gru_forward: gradients of x, w_ih, w_hh, b_ih, b_hh from the gradient of the outputs.
std::vector<Tensor> gru_backward_one(const Tensor& grad_outputs, const Tensor& xp, const Tensor& w_ih,
                                     const Tensor& w_hh, const Tensor& prev, const Tensor& rz, const Tensor& n,
                                     const Tensor& gh_n, const Packing& p, bool need_grad_x) {
  const int64_t H = w_hh.size(1), G = 3 * H;
  check_saved(grad_outputs, w_ih, w_hh, 3, p.total,
              {{&xp, w_ih.size(1)}, {&prev, H}, {&rz, 2 * H}, {&n, H}, {&gh_n, H}});
  auto options = xp.options();
  Tensor go = p.pack(grad_outputs);
  Tensor d_gi = at::empty({p.total, G}, options), d_gh = at::empty({p.total, G}, options);
  // rows of sequences that end at step t get no gradient from step t + 1: they are still zeros there
  Tensor dh_rec = at::zeros({p.batch, H}, options), dh_direct = at::zeros({p.batch, H}, options);
  for (int64_t t = p.steps() - 1; t >= 0; --t) {
    const int64_t o = p.offsets[t], m = p.sizes[t];
    gru_step_backward(m, H, dh_rec.data_ptr<float>(), dh_direct.data_ptr<float>(), go.data_ptr<float>() + o * H,
                      rz.data_ptr<float>() + o * 2 * H, n.data_ptr<float>() + o * H, gh_n.data_ptr<float>() + o * H,
                      prev.data_ptr<float>() + o * H, d_gi.data_ptr<float>() + o * G, d_gh.data_ptr<float>() + o * G,
                      dh_direct.data_ptr<float>());
    // the gradient reaching h_{t-1} through W_hh; its direct part (d * z) is added in the next step's loop
    mm_into(rows(dh_rec, 0, m), rows(d_gh, o, m), w_hh);
  }
  return layer_gradients(d_gi, d_gh, xp, w_ih, prev, p, need_grad_x);
}

// Forward of a simple RNN layer (tanh or relu) with a zero initial state: the outputs and, packed, the input, h_{t-1}
// and h_t.
std::vector<Tensor> rnn_forward_one(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                    const Tensor& b_hh, bool relu, const Packing& p) {
  check_layer(x, w_ih, w_hh, b_ih, b_hh, 1);
  const int64_t H = w_hh.size(1);
  auto options = x.options();
  Tensor xp = p.pack(x);
  // both biases go into the input projections, computed for all steps at once
  Tensor gi = at::addmm(b_ih + b_hh, xp, w_ih.t());
  Tensor prev = at::empty({p.total, H}, options), out = at::empty({p.total, H}, options);
  recur(p, w_hh, prev, out, [&](int64_t, int64_t o, int64_t m, const float* gh) {
    rnn_step_forward(m * H, relu, gi.data_ptr<float>() + o * H, gh, out.data_ptr<float>() + o * H);
  });
  return {p.unpack(out), xp, prev, out};
}

std::vector<Tensor> rnn_backward_one(const Tensor& grad_outputs, const Tensor& xp, const Tensor& w_ih,
                                     const Tensor& w_hh, const Tensor& prev, const Tensor& out, bool relu,
                                     const Packing& p, bool need_grad_x) {
  const int64_t H = w_hh.size(1);
  check_saved(grad_outputs, w_ih, w_hh, 1, p.total, {{&xp, w_ih.size(1)}, {&prev, H}, {&out, H}});
  Tensor go = p.pack(grad_outputs);
  Tensor d_pre = at::empty({p.total, H}, xp.options());
  Tensor dh = at::zeros({p.batch, H}, xp.options());
  for (int64_t t = p.steps() - 1; t >= 0; --t) {
    const int64_t o = p.offsets[t], m = p.sizes[t], count = m * H;
    const float* __restrict__ g = go.data_ptr<float>() + o * H;
    const float* __restrict__ h = out.data_ptr<float>() + o * H;
    const float* __restrict__ dhp = dh.data_ptr<float>();
    float* __restrict__ dp = d_pre.data_ptr<float>() + o * H;
    if (relu) {
      for (int64_t i = 0; i < count; ++i) dp[i] = h[i] > 0.0f ? dhp[i] + g[i] : 0.0f;
    } else {
      for (int64_t i = 0; i < count; ++i) dp[i] = (dhp[i] + g[i]) * (1.0f - h[i] * h[i]);
    }
    mm_into(rows(dh, 0, m), rows(d_pre, o, m), w_hh);
  }
  return layer_gradients(d_pre, d_pre, xp, w_ih, prev, p, need_grad_x);
}

// LSTM (PyTorch's gate order i, f, g, o): c' = f * c + i * g, h' = o * tanh(c').

// One LSTM step from gh = h W_hh^T (without its bias): the gates i, f, o = sigmoid and g = tanh of gi + gh + b_hh;
// c' = f * c + i * g, tanh(c'), h' = o * tanh(c').
void lstm_step_forward(int64_t rows, int64_t H, const float* __restrict__ gi, const float* __restrict__ gh,
                       const float* __restrict__ b_hh, const float* __restrict__ c, float* __restrict__ gates,
                       float* __restrict__ c_next, float* __restrict__ tanh_c, float* __restrict__ h_next) {
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

// Forward of an LSTM layer with zero initial states: the outputs and, packed, the input, h_{t-1}, c_{t-1}, the
// activated gates (4 * hidden) and tanh(c_t).
std::vector<Tensor> lstm_forward_one(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                     const Tensor& b_hh, const Packing& p) {
  check_layer(x, w_ih, w_hh, b_ih, b_hh, 4);
  const int64_t H = w_hh.size(1), G = 4 * H;
  auto options = x.options();
  Tensor xp = p.pack(x);
  Tensor gi = at::addmm(b_ih, xp, w_ih.t());
  Tensor prev = at::empty({p.total, H}, options), out = at::empty({p.total, H}, options);
  Tensor c_prev = at::empty({p.total, H}, options), c_out = at::empty({p.total, H}, options);
  Tensor gates = at::empty({p.total, G}, options), tanh_c = at::empty({p.total, H}, options);
  const float* bias = b_hh.data_ptr<float>();
  if (p.steps() > 0) rows(c_prev, 0, p.sizes[0]).zero_();
  recur(p, w_hh, prev, out, [&](int64_t t, int64_t o, int64_t m, const float* gh) {
    lstm_step_forward(m, H, gi.data_ptr<float>() + o * G, gh, bias, c_prev.data_ptr<float>() + o * H,
                      gates.data_ptr<float>() + o * G, c_out.data_ptr<float>() + o * H,
                      tanh_c.data_ptr<float>() + o * H, out.data_ptr<float>() + o * H);
    carry(p, t, c_out, c_prev);  // the cell state carries on as the hidden state does
  });
  return {p.unpack(out), xp, prev, c_prev, gates, tanh_c};
}

std::vector<Tensor> lstm_backward_one(const Tensor& grad_outputs, const Tensor& xp, const Tensor& w_ih,
                                      const Tensor& w_hh, const Tensor& prev, const Tensor& c_prev,
                                      const Tensor& gates, const Tensor& tanh_c, const Packing& p, bool need_grad_x) {
  const int64_t H = w_hh.size(1), G = 4 * H;
  check_saved(grad_outputs, w_ih, w_hh, 4, p.total,
              {{&xp, w_ih.size(1)}, {&prev, H}, {&c_prev, H}, {&gates, G}, {&tanh_c, H}});
  auto options = xp.options();
  Tensor go = p.pack(grad_outputs);
  Tensor d_gates = at::empty({p.total, G}, options);
  Tensor dh_rec = at::zeros({p.batch, H}, options), dc = at::zeros({p.batch, H}, options);
  for (int64_t t = p.steps() - 1; t >= 0; --t) {
    const int64_t o = p.offsets[t], m = p.sizes[t];
    lstm_step_backward(m, H, dh_rec.data_ptr<float>(), go.data_ptr<float>() + o * H, gates.data_ptr<float>() + o * G,
                       c_prev.data_ptr<float>() + o * H, tanh_c.data_ptr<float>() + o * H, dc.data_ptr<float>(),
                       d_gates.data_ptr<float>() + o * G);
    mm_into(rows(dh_rec, 0, m), rows(d_gates, o, m), w_hh);
  }
  return layer_gradients(d_gates, d_gates, xp, w_ih, prev, p, need_grad_x);
}

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
  if (directions == 1 || at::get_num_threads() != 2) {
    at::NoGradGuard no_grad;  // the operators compute values only, as in the parallel branch
    for (int64_t d = 0; d < directions; ++d) results[d] = run(d);
  } else {
    at::parallel_for(0, directions, 1, [&](int64_t begin, int64_t end) {
      at::NoGradGuard no_grad;  // pool threads do not inherit the caller's grad mode
      OneThreadPerDirection one_thread;
      for (int64_t d = begin; d < end; ++d) results[d] = run(d);
    });
  }
  std::vector<Tensor> flat;
  for (auto& result : results) flat.insert(flat.end(), result.begin(), result.end());
  return flat;
}

void check_lists(std::initializer_list<at::TensorList> lists) {
  for (const auto& list : lists) {
    TORCH_CHECK(list.size() == lists.begin()->size(), "every argument needs one tensor per direction");
  }
}

// The directions share the batch's lengths (the backward direction reads each sequence reversed within its length).
Packing packing_for(at::TensorList x, const Tensor& lengths) {
  TORCH_CHECK(!x.empty() && x[0].dim() == 3, "input must be (batch, time, input_size)");
  for (const auto& t : x) TORCH_CHECK(t.sizes() == x[0].sizes(), "the directions' inputs must have one shape");
  return make_packing(lengths, x[0].size(0), x[0].size(1));
}

std::vector<Tensor> gru_forward(at::TensorList x, const Tensor& lengths, at::TensorList w_ih, at::TensorList w_hh,
                                at::TensorList b_ih, at::TensorList b_hh) {
  check_lists({x, w_ih, w_hh, b_ih, b_hh});
  const Packing p = packing_for(x, lengths);
  return per_direction(x.size(),
                       [&](int64_t d) { return gru_forward_one(x[d], w_ih[d], w_hh[d], b_ih[d], b_hh[d], p); });
}

std::vector<Tensor> gru_backward(at::TensorList grad, const Tensor& lengths, at::TensorList xp, at::TensorList w_ih,
                                 at::TensorList w_hh, at::TensorList prev, at::TensorList rz, at::TensorList n,
                                 at::TensorList gh_n, bool need_grad_x) {
  check_lists({grad, xp, w_ih, w_hh, prev, rz, n, gh_n});
  const Packing p = packing_for(grad, lengths);
  return per_direction(grad.size(), [&](int64_t d) {
    return gru_backward_one(grad[d], xp[d], w_ih[d], w_hh[d], prev[d], rz[d], n[d], gh_n[d], p, need_grad_x);
  });
}

std::vector<Tensor> rnn_forward(at::TensorList x, const Tensor& lengths, at::TensorList w_ih, at::TensorList w_hh,
                                at::TensorList b_ih, at::TensorList b_hh, bool relu) {
  check_lists({x, w_ih, w_hh, b_ih, b_hh});
  const Packing p = packing_for(x, lengths);
  return per_direction(x.size(),
                       [&](int64_t d) { return rnn_forward_one(x[d], w_ih[d], w_hh[d], b_ih[d], b_hh[d], relu, p); });
}

std::vector<Tensor> rnn_backward(at::TensorList grad, const Tensor& lengths, at::TensorList xp, at::TensorList w_ih,
                                 at::TensorList w_hh, at::TensorList prev, at::TensorList out, bool relu,
                                 bool need_grad_x) {
  check_lists({grad, xp, w_ih, w_hh, prev, out});
  const Packing p = packing_for(grad, lengths);
  return per_direction(grad.size(), [&](int64_t d) {
    return rnn_backward_one(grad[d], xp[d], w_ih[d], w_hh[d], prev[d], out[d], relu, p, need_grad_x);
  });
}

std::vector<Tensor> lstm_forward(at::TensorList x, const Tensor& lengths, at::TensorList w_ih, at::TensorList w_hh,
                                 at::TensorList b_ih, at::TensorList b_hh) {
  check_lists({x, w_ih, w_hh, b_ih, b_hh});
  const Packing p = packing_for(x, lengths);
  return per_direction(x.size(),
                       [&](int64_t d) { return lstm_forward_one(x[d], w_ih[d], w_hh[d], b_ih[d], b_hh[d], p); });
}

std::vector<Tensor> lstm_backward(at::TensorList grad, const Tensor& lengths, at::TensorList xp, at::TensorList w_ih,
                                  at::TensorList w_hh, at::TensorList prev, at::TensorList c_prev,
                                  at::TensorList gates, at::TensorList tanh_c, bool need_grad_x) {
  check_lists({grad, xp, w_ih, w_hh, prev, c_prev, gates, tanh_c});
  const Packing p = packing_for(grad, lengths);
  return per_direction(grad.size(), [&](int64_t d) {
    return lstm_backward_one(grad[d], xp[d], w_ih[d], w_hh[d], prev[d], c_prev[d], gates[d], tanh_c[d], p,
                             need_grad_x);
  });
}

}  // namespace

TORCH_LIBRARY(hf_rnn_kernels, m) {
  m.def("gru_forward(Tensor[] x, Tensor lengths, Tensor[] w_ih, Tensor[] w_hh, Tensor[] b_ih, Tensor[] b_hh)"
        " -> Tensor[]",
        &gru_forward);
  m.def("gru_backward(Tensor[] grad, Tensor lengths, Tensor[] x, Tensor[] w_ih, Tensor[] w_hh, Tensor[] prev,"
        " Tensor[] rz, Tensor[] n, Tensor[] gh_n, bool need_grad_x) -> Tensor[]",
        &gru_backward);
  m.def("rnn_forward(Tensor[] x, Tensor lengths, Tensor[] w_ih, Tensor[] w_hh, Tensor[] b_ih, Tensor[] b_hh,"
        " bool relu) -> Tensor[]",
        &rnn_forward);
  m.def("rnn_backward(Tensor[] grad, Tensor lengths, Tensor[] x, Tensor[] w_ih, Tensor[] w_hh, Tensor[] prev,"
        " Tensor[] out, bool relu, bool need_grad_x) -> Tensor[]",
        &rnn_backward);
  m.def("lstm_forward(Tensor[] x, Tensor lengths, Tensor[] w_ih, Tensor[] w_hh, Tensor[] b_ih, Tensor[] b_hh)"
        " -> Tensor[]",
        &lstm_forward);
  m.def("lstm_backward(Tensor[] grad, Tensor lengths, Tensor[] x, Tensor[] w_ih, Tensor[] w_hh, Tensor[] prev,"
        " Tensor[] c_prev, Tensor[] gates, Tensor[] tanh_c, bool need_grad_x) -> Tensor[]",
        &lstm_backward);
}
