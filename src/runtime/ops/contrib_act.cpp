// com.microsoft activations the ORT transformer optimizer emits: Gelu, BiasGelu, FastGelu, QuickGelu, BiasAdd.
#include <cmath>

#include "common.h"

namespace ptq::runtime {
namespace {

constexpr size_t kActChunk = 16384;

float gelu_erf(float v) { return 0.5f * v * (1.f + std::erf(v * 0.70710678118654752f)); }
float gelu_tanh(float v) {
  return 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

// y[i] = f(x[i] + bias[i % C]) where bias (optional) holds the last C = bias.numel() elements.
template <typename F>
void biased_map(const KernelContext& ctx, const Tensor& x, const Tensor* bias, Tensor& y, F f) {
  const size_t n = x.numel(), c = bias ? bias->numel() : 0;
  if (bias)
    PTQ_CHECK(c > 0 && x.rank() > 0 && static_cast<size_t>(x.dims().back()) == c, ModelError,
              "bias has ", c, " elements, input shape ", dims_str(x.dims()));
  y = new_tensor(DType::kFloat, x.dims());
  const float* px = x.data<float>();
  const float* pb = bias ? bias->data<float>() : nullptr;
  float* py = y.mutable_data<float>();
  ctx.parallel_for((n + kActChunk - 1) / kActChunk, [&](size_t k) {
    const size_t end = std::min(n, (k + 1) * kActChunk);
    for (size_t i = k * kActChunk; i < end; ++i) py[i] = f(pb ? px[i] + pb[i % c] : px[i]);
  });
}

enum class Act { kGelu, kBiasGelu, kFastGelu, kQuickGelu };

template <Act K>
class ContribAct : public Kernel {
 public:
  explicit ContribAct(const KernelInit& init) : alpha_(init.node.attr_float("alpha", 1.702f)) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = float_input(in, 0, "X");
    const Tensor* bias = nullptr;
    if constexpr (K == Act::kBiasGelu) bias = &float_input(in, 1, "bias");
    if constexpr (K == Act::kFastGelu)
      if (optional_input(in, 1)) bias = &float_input(in, 1, "bias");
    const float a = alpha_;
    biased_map(ctx, x, bias, out[0], [a](float v) -> float {
      if constexpr (K == Act::kFastGelu) return gelu_tanh(v);
      if constexpr (K == Act::kQuickGelu) return v / (1.f + std::exp(-a * v));
      return gelu_erf(v);
    });
  }

 private:
  float alpha_;
};

// BiasAdd: X (N, S, C) + bias (C) + skip (N, S, C).
class BiasAdd : public Kernel {
 public:
  explicit BiasAdd(const KernelInit&) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = float_input(in, 0, "X");
    const Tensor& skip = float_input(in, 2, "skip");
    PTQ_CHECK(skip.dims() == x.dims(), ModelError, "skip shape ", dims_str(skip.dims()),
              " differs from X ", dims_str(x.dims()));
    biased_map(ctx, x, &float_input(in, 1, "bias"), out[0], [](float v) { return v; });
    float* y = out[0].mutable_data<float>();
    const float* s = skip.data<float>();
    for (size_t i = 0; i < x.numel(); ++i) y[i] += s[i];
  }
};

}  // namespace

void register_contrib_act(KernelRegistry& r) {
  r.add(kMs, "Gelu", 1, INT64_MAX, make_kernel<ContribAct<Act::kGelu>>);
  r.add(kMs, "BiasGelu", 1, INT64_MAX, make_kernel<ContribAct<Act::kBiasGelu>>);
  r.add(kMs, "FastGelu", 1, INT64_MAX, make_kernel<ContribAct<Act::kFastGelu>>);
  r.add(kMs, "QuickGelu", 1, INT64_MAX, make_kernel<ContribAct<Act::kQuickGelu>>);
  r.add(kMs, "BiasAdd", 1, INT64_MAX, make_kernel<BiasAdd>);
}

}  // namespace ptq::runtime
