// com.microsoft fused normalizations: SkipLayerNormalization, SkipSimplifiedLayerNormalization,
// EmbedLayerNormalization (BERT embeddings: word + position + segment, then LayerNorm).
#include <cmath>

#include "common.h"

namespace ptq::runtime {
namespace {

// Normalizes one row of `len` in place: LayerNorm (mean and variance) or RMS (simplified).
void norm_row(float* v, int64_t len, float eps, bool simplified, const float* gamma,
              const float* beta) {
  double mean = 0, sq = 0;
  if (!simplified) {
    for (int64_t j = 0; j < len; ++j) mean += v[j];
    mean /= static_cast<double>(len);
  }
  for (int64_t j = 0; j < len; ++j) sq += (v[j] - mean) * (v[j] - mean);
  const double inv = 1.0 / std::sqrt(sq / static_cast<double>(len) + eps);
  for (int64_t j = 0; j < len; ++j)
    v[j] = static_cast<float>((v[j] - mean) * inv) * gamma[j] + (beta ? beta[j] : 0.f);
}

const float* vector_input(const std::vector<const Tensor*>& in, size_t i, int64_t len,
                          const char* what) {
  if (!optional_input(in, i)) return nullptr;
  const Tensor& t = float_input(in, i, what);
  PTQ_CHECK(static_cast<int64_t>(t.numel()) == len, ModelError, what, " has ", t.numel(),
            " elements, hidden size is ", len);
  return t.data<float>();
}

// Inputs: input, skip, gamma, [beta,] bias; outputs: output, mean, inv_std_var, input_skip_bias_sum.
template <bool kSimplified>
class SkipLayerNorm : public Kernel {
 public:
  explicit SkipLayerNorm(const KernelInit& init) : eps_(init.node.attr_float("epsilon", 1e-12f)) {
    for (size_t i = 1; i < 3 && i < init.node.outputs.size(); ++i)
      PTQ_CHECK(init.node.outputs[i] == ir::kNone, UnsupportedError,
                "mean/inv_std_var outputs are not supported");
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = float_input(in, 0, "input");
    const Tensor& skip = float_input(in, 1, "skip");
    PTQ_CHECK(x.rank() >= 1 && x.numel() > 0, ModelError, "input must be non-empty");
    const int64_t len = x.dims().back(), rows = static_cast<int64_t>(x.numel()) / len;
    // skip is (B, S, H), (1, S, H) or (S, H): read cyclically over the input.
    PTQ_CHECK(skip.numel() > 0 && x.numel() % skip.numel() == 0 && skip.dims().back() == len,
              ModelError, "skip shape ", dims_str(skip.dims()), " does not fit input ", dims_str(x.dims()));
    const float* gamma = vector_input(in, 2, len, "gamma");
    PTQ_CHECK(gamma, ModelError, "gamma is required");
    const float* beta = kSimplified ? nullptr : vector_input(in, 3, len, "beta");
    const float* bias = vector_input(in, kSimplified ? 3 : 4, len, "bias");
    out[0] = new_tensor(DType::kFloat, x.dims());
    const bool want_sum = out.size() > 3;
    if (want_sum) out[3] = new_tensor(DType::kFloat, x.dims());
    const float* px = x.data<float>();
    const float* ps = skip.data<float>();
    const size_t sn = skip.numel();
    float* py = out[0].mutable_data<float>();
    float* psum = want_sum ? out[3].mutable_data<float>() : nullptr;
    const float eps = eps_;
    ctx.parallel_for(static_cast<size_t>(rows), [&](size_t r) {
      const size_t o = r * static_cast<size_t>(len);
      float* y = py + o;
      for (int64_t j = 0; j < len; ++j)
        y[j] = px[o + j] + ps[(o + j) % sn] + (bias ? bias[j] : 0.f);
      if (psum) std::copy(y, y + len, psum + o);
      norm_row(y, len, eps, kSimplified, gamma, beta);
    });
  }

 private:
  float eps_;
};

const Tensor* int_input(const std::vector<const Tensor*>& in, size_t i, const char* what) {
  const Tensor* t = optional_input(in, i);
  if (t)
    PTQ_CHECK(t->dtype() == DType::kInt32 || t->dtype() == DType::kInt64, ModelError, what,
              " must be int32 or int64, got ", dtype_name(t->dtype()));
  return t;
}

// Inputs: input_ids, segment_ids, word_embedding, position_embedding, segment_embedding, gamma,
// beta, mask, position_ids. Outputs: output, mask_index (count of non-zero mask entries per
// row, int32), embedding_sum.
class EmbedLayerNorm : public Kernel {
 public:
  explicit EmbedLayerNorm(const KernelInit& init) : eps_(init.node.attr_float("epsilon", 1e-12f)) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor* ids = int_input(in, 0, "input_ids");
    PTQ_CHECK(ids && ids->rank() == 2, ModelError, "input_ids must be 2-D (batch, sequence)");
    const int64_t B = ids->dims()[0], S = ids->dims()[1];
    const Tensor* seg = int_input(in, 1, "segment_ids");
    const Tensor& word = float_input(in, 2, "word_embedding");
    const Tensor& pos = float_input(in, 3, "position_embedding");
    const Tensor* segemb = optional_input(in, 4) ? &float_input(in, 4, "segment_embedding") : nullptr;
    PTQ_CHECK(word.rank() == 2 && pos.rank() == 2 && pos.dims()[1] == word.dims()[1] &&
                  (!segemb || (segemb->rank() == 2 && segemb->dims()[1] == word.dims()[1])),
              ModelError, "embeddings must be 2-D with the same hidden size");
    const int64_t H = word.dims()[1];
    const float* gamma = vector_input(in, 5, H, "gamma");
    const float* beta = vector_input(in, 6, H, "beta");
    PTQ_CHECK(gamma && beta, ModelError, "gamma and beta are required");
    const Tensor* mask = int_input(in, 7, "mask");
    const Tensor* pids = int_input(in, 8, "position_ids");
    PTQ_CHECK(!seg || seg->dims() == ids->dims(), ModelError, "segment_ids shape differs from input_ids");
    PTQ_CHECK(!seg || segemb, ModelError, "segment_ids without segment_embedding");
    PTQ_CHECK(!mask || mask->dims() == ids->dims(), ModelError, "mask shape differs from input_ids");
    PTQ_CHECK(!pids || (pids->numel() == static_cast<size_t>(B * S) || pids->numel() == static_cast<size_t>(S)),
              ModelError, "position_ids must be (batch, sequence) or (1, sequence)");
    out[0] = new_tensor(DType::kFloat, {B, S, H});
    const bool want_sum = out.size() > 2;
    if (want_sum) out[2] = new_tensor(DType::kFloat, {B, S, H});
    auto row_of = [](const Tensor& table, int64_t id, const char* what) {
      const int64_t n = table.dims()[0];
      PTQ_CHECK(id >= 0 && id < n, ModelError, what, " index ", id, " outside [0, ", n, ")");
      return table.data<float>() + id * table.dims()[1];
    };
    float* py = out[0].mutable_data<float>();
    float* psum = want_sum ? out[2].mutable_data<float>() : nullptr;
    const float eps = eps_;
    ctx.parallel_for(static_cast<size_t>(B * S), [&](size_t r) {
      const int64_t s = static_cast<int64_t>(r) % S;
      const int64_t p = pids ? int_at(*pids, pids->numel() == static_cast<size_t>(S) ? static_cast<size_t>(s) : r) : s;
      const float* w = row_of(word, int_at(*ids, r), "input_ids");
      const float* pe = row_of(pos, p, "position");
      const float* se = seg ? row_of(*segemb, int_at(*seg, r), "segment_ids") : nullptr;
      float* y = py + static_cast<int64_t>(r) * H;
      for (int64_t j = 0; j < H; ++j) y[j] = w[j] + pe[j] + (se ? se[j] : 0.f);
      if (psum) std::copy(y, y + H, psum + static_cast<int64_t>(r) * H);
      norm_row(y, H, eps, false, gamma, beta);
    });
    if (out.size() > 1) {
      out[1] = new_zeros(DType::kInt32, {B});
      int32_t* mi = out[1].mutable_data<int32_t>();
      if (mask)
        for (int64_t b = 0; b < B; ++b)
          for (int64_t s = 0; s < S; ++s) mi[b] += int_at(*mask, static_cast<size_t>(b * S + s)) != 0;
    }
  }

 private:
  float eps_;
};

}  // namespace

void register_contrib_norm(KernelRegistry& r) {
  r.add(kMs, "SkipLayerNormalization", 1, INT64_MAX, make_kernel<SkipLayerNorm<false>>);
  r.add(kMs, "SkipSimplifiedLayerNormalization", 1, INT64_MAX, make_kernel<SkipLayerNorm<true>>);
  r.add(kMs, "EmbedLayerNormalization", 1, INT64_MAX, make_kernel<EmbedLayerNorm>);
}

}  // namespace ptq::runtime
