// com.microsoft Attention (BERT form: fused QKV projection, mask_index as lengths or 2-D/3-D/4-D
// mask) and MultiHeadAttention (Q, K, V already projected), without past/present state.
#include <Eigen/Core>
#include <cmath>
#include <functional>

#include "common.h"
#include "eigen_types.h"

namespace ptq::runtime {
namespace {

// Q rows (B*S, stride qs), K and V rows (B*L, strides ks, vs); head n reads columns
// [n*Hq, (n+1)*Hq) of Q and K and [n*Hv, (n+1)*Hv) of V. masked(b, s, t) adds `filter` to the
// score; bias (B or 1, N or 1, S, L) is added too. Writes (B, S, N*Hv).
struct AttentionShape {
  int64_t B, N, S, L, Hq, Hv;
};
void attend(const KernelContext& ctx, const AttentionShape& d, const float* q, int64_t qs,
            const float* k, int64_t ks, const float* v, int64_t vs, float scale, float filter,
            const std::function<bool(int64_t, int64_t, int64_t)>& masked, const Tensor* bias,
            float* y) {
  if (bias)
    PTQ_CHECK(bias->rank() == 4 && (bias->dims()[0] == 1 || bias->dims()[0] == d.B) &&
                  (bias->dims()[1] == 1 || bias->dims()[1] == d.N) && bias->dims()[2] == d.S &&
                  bias->dims()[3] == d.L,
              ModelError, "attention_bias shape ", dims_str(bias->dims()), " is not (B|1, N|1, S, L)");
  ctx.parallel_for(static_cast<size_t>(d.B * d.N), [&](size_t i) {
    const int64_t b = static_cast<int64_t>(i) / d.N, n = static_cast<int64_t>(i) % d.N;
    std::vector<float> p(static_cast<size_t>(d.L));
    const float* pb = nullptr;
    if (bias)
      pb = bias->data<float>() + ((bias->dims()[0] == 1 ? 0 : b) * bias->dims()[1] +
                                  (bias->dims()[1] == 1 ? 0 : n)) * d.S * d.L;
    for (int64_t s = 0; s < d.S; ++s) {
      const float* qr = q + (b * d.S + s) * qs + n * d.Hq;
      float m = -INFINITY;
      for (int64_t t = 0; t < d.L; ++t) {
        const float* kr = k + (b * d.L + t) * ks + n * d.Hq;
        float dot = 0.f;
        for (int64_t h = 0; h < d.Hq; ++h) dot += qr[h] * kr[h];
        float x = dot * scale + (masked(b, s, t) ? filter : 0.f);
        if (pb) x += pb[s * d.L + t];
        p[t] = x;
        m = std::max(m, x);
      }
      double sum = 0;
      for (int64_t t = 0; t < d.L; ++t) sum += (p[t] = std::exp(p[t] - m));
      float* yr = y + (b * d.S + s) * d.N * d.Hv + n * d.Hv;
      std::fill(yr, yr + d.Hv, 0.f);
      for (int64_t t = 0; t < d.L; ++t) {
        const float w = static_cast<float>(p[t] / sum);
        const float* vr = v + (b * d.L + t) * vs + n * d.Hv;
        for (int64_t h = 0; h < d.Hv; ++h) yr[h] += w * vr[h];
      }
    }
  });
}

// The mask_index / key_padding_mask forms ORT's CPU kernels accept (no past): lengths (B),
// end and start positions (2B), or 0/1 masks (B, L), (B, S, L). ORT's CPU kernel has no 4-D mask.
std::function<bool(int64_t, int64_t, int64_t)> mask_fn(const Tensor* m, const AttentionShape& d) {
  if (!m) return [](int64_t, int64_t, int64_t) { return false; };
  PTQ_CHECK(m->dtype() == DType::kInt32 || m->dtype() == DType::kInt64, ModelError,
            "mask must be int32, got ", dtype_name(m->dtype()));
  const Dims& md = m->dims();
  const int64_t B = d.B, S = d.S, L = d.L;
  if (md.size() == 1 && md[0] == B)
    return [m](int64_t b, int64_t, int64_t t) { return t >= int_at(*m, b); };
  if (md.size() == 1 && md[0] == 2 * B)
    return [m, B](int64_t b, int64_t, int64_t t) { return t >= int_at(*m, b) || t < int_at(*m, B + b); };
  if (md.size() == 2 && md[0] == B && md[1] == L)
    return [m, L](int64_t b, int64_t, int64_t t) { return int_at(*m, b * L + t) == 0; };
  if (md.size() == 3 && md[0] == B && md[1] == S && md[2] == L)
    return [m, S, L](int64_t b, int64_t s, int64_t t) { return int_at(*m, (b * S + s) * L + t) == 0; };
  PTQ_CHECK(false, UnsupportedError, "mask shape ", dims_str(md), " for batch ", B, ", sequence ", S,
            ", total ", L);
  return nullptr;
}

struct Common {
  explicit Common(const KernelInit& init)
      : heads(init.node.attr_int("num_heads", 0)),
        causal(init.node.attr_int("unidirectional", 0) != 0),
        filter(init.node.attr_float("mask_filter_value", -10000.f)),
        scale(init.node.attr_float("scale", 0.f)) {
    PTQ_CHECK(heads > 0, ModelError, "num_heads must be positive");
    PTQ_CHECK(init.node.attr_int("do_rotary", 0) == 0, UnsupportedError, "do_rotary=1 is not supported");
    for (size_t i = 1; i < init.node.outputs.size(); ++i)
      PTQ_CHECK(init.node.outputs[i] == ir::kNone, UnsupportedError, "present outputs are not supported");
  }
  int64_t head(int64_t width, const char* what) const {
    PTQ_CHECK(width % heads == 0, ModelError, what, " width ", width, " is not a multiple of num_heads ", heads);
    return width / heads;
  }
  int64_t heads;
  bool causal;
  float filter, scale;
};

class Attention : public Kernel {
 public:
  explicit Attention(const KernelInit& init)
      : c_(init), sizes_(init.node.attr_ints("qkv_hidden_sizes")) {
    PTQ_CHECK(sizes_.empty() || sizes_.size() == 3, ModelError, "qkv_hidden_sizes must have 3 entries");
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = float_input(in, 0, "input");
    const Tensor& w = float_input(in, 1, "weights");
    PTQ_CHECK(!optional_input(in, 4), UnsupportedError, "past state is not supported");
    PTQ_CHECK(x.rank() == 3 && w.rank() == 2 && w.dims()[0] == x.dims()[2], ModelError,
              "input ", dims_str(x.dims()), " and weights ", dims_str(w.dims()), " do not match");
    const int64_t B = x.dims()[0], S = x.dims()[1], D = x.dims()[2], T = w.dims()[1];
    std::vector<int64_t> hs = sizes_.empty() ? std::vector<int64_t>(3, T / 3) : sizes_;
    PTQ_CHECK(hs[0] == hs[1] && hs[0] + hs[1] + hs[2] == T, ModelError, "qkv sizes do not add up to ", T);
    RowMat qkv = Eigen::Map<const RowMat>(x.data<float>(), B * S, D) *
                 Eigen::Map<const RowMat>(w.data<float>(), D, T);
    if (const Tensor* bias = optional_input(in, 2)) {
      PTQ_CHECK(bias->dtype() == DType::kFloat && static_cast<int64_t>(bias->numel()) == T, ModelError,
                "bias must have ", T, " float elements");
      qkv.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias->data<float>(), T);
    }
    const AttentionShape d{B, c_.heads, S, S, c_.head(hs[0], "Q"), c_.head(hs[2], "V")};
    const auto mask = mask_fn(optional_input(in, 3), d);
    const bool causal = c_.causal;
    const auto masked = [&](int64_t b, int64_t s, int64_t t) { return (causal && t > s) || mask(b, s, t); };
    const Tensor* ab = optional_input(in, 5);
    out[0] = new_tensor(DType::kFloat, {B, S, hs[2]});
    const float scale = c_.scale != 0.f ? c_.scale : 1.f / std::sqrt(static_cast<float>(d.Hq));
    attend(ctx, d, qkv.data(), T, qkv.data() + hs[0], T, qkv.data() + 2 * hs[0], T, scale, c_.filter,
           masked, ab, out[0].mutable_data<float>());
  }

 private:
  Common c_;
  std::vector<int64_t> sizes_;
};

class MultiHeadAttention : public Kernel {
 public:
  explicit MultiHeadAttention(const KernelInit& init) : c_(init) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& q = float_input(in, 0, "query");
    PTQ_CHECK(optional_input(in, 1) && optional_input(in, 2), UnsupportedError,
              "packed QKV/KV forms of MultiHeadAttention are not supported");
    const Tensor& k = float_input(in, 1, "key");
    const Tensor& v = float_input(in, 2, "value");
    PTQ_CHECK(!optional_input(in, 6) && !optional_input(in, 7), UnsupportedError, "past state is not supported");
    PTQ_CHECK(q.rank() == 3 && k.rank() == 3 && v.rank() == 3 && k.dims()[0] == q.dims()[0] &&
                  v.dims()[0] == q.dims()[0] && v.dims()[1] == k.dims()[1] && k.dims()[2] == q.dims()[2],
              UnsupportedError, "query/key/value must be (B, S, D), (B, L, D), (B, L, Dv); got ",
              dims_str(q.dims()), ", ", dims_str(k.dims()), ", ", dims_str(v.dims()));
    const int64_t B = q.dims()[0], S = q.dims()[1], L = k.dims()[1], D = q.dims()[2], Dv = v.dims()[2];
    std::vector<float> qb(q.data<float>(), q.data<float>() + q.numel());
    std::vector<float> kb(k.data<float>(), k.data<float>() + k.numel());
    std::vector<float> vb(v.data<float>(), v.data<float>() + v.numel());
    if (const Tensor* bias = optional_input(in, 3)) {
      PTQ_CHECK(bias->dtype() == DType::kFloat && static_cast<int64_t>(bias->numel()) == 2 * D + Dv,
                ModelError, "bias must have ", 2 * D + Dv, " float elements");
      const float* pb = bias->data<float>();
      for (size_t i = 0; i < qb.size(); ++i) qb[i] += pb[i % D];
      for (size_t i = 0; i < kb.size(); ++i) kb[i] += pb[D + i % D];
      for (size_t i = 0; i < vb.size(); ++i) vb[i] += pb[2 * D + i % Dv];
    }
    const AttentionShape d{B, c_.heads, S, L, c_.head(D, "query"), c_.head(Dv, "value")};
    const auto mask = mask_fn(optional_input(in, 4), d);
    const bool causal = c_.causal;
    const auto masked = [&](int64_t b, int64_t s, int64_t t) { return (causal && t > s) || mask(b, s, t); };
    out[0] = new_tensor(DType::kFloat, {B, S, Dv});
    const float scale = c_.scale != 0.f ? c_.scale : 1.f / std::sqrt(static_cast<float>(d.Hq));
    attend(ctx, d, qb.data(), D, kb.data(), D, vb.data(), Dv, scale, c_.filter, masked,
           optional_input(in, 5), out[0].mutable_data<float>());
  }

 private:
  Common c_;
};

}  // namespace

void register_contrib_attention(KernelRegistry& r) {
  r.add(kMs, "Attention", 1, INT64_MAX, make_kernel<Attention>);
  r.add(kMs, "MultiHeadAttention", 1, INT64_MAX, make_kernel<MultiHeadAttention>);
}

}  // namespace ptq::runtime
