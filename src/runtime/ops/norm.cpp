// Normalizations: BatchNormalization (inference), LayerNormalization, InstanceNormalization.
#include <cmath>

#include "common.h"

namespace ptq::runtime {
namespace {

class BatchNorm : public Kernel {
 public:
  explicit BatchNorm(const KernelInit& init) : eps_(init.node.attr_float("epsilon", 1e-5f)) {
    PTQ_CHECK(init.node.attr_int("training_mode", 0) == 0, UnsupportedError,
              "BatchNormalization training_mode=1");
    for (size_t i = 1; i < init.node.outputs.size(); ++i)
      PTQ_CHECK(init.node.outputs[i] == ir::kNone, UnsupportedError,
                "BatchNormalization training outputs (mean/var) are not supported");
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = float_input(in, 0, "X");
    const Tensor* p[4] = {&float_input(in, 1, "scale"), &float_input(in, 2, "B"),
                          &float_input(in, 3, "mean"), &float_input(in, 4, "var")};
    PTQ_CHECK(X.rank() >= 2, ModelError, "X must have rank >= 2");
    const int64_t n = X.dims()[0], c = X.dims()[1];
    const int64_t inner = numel_of(Dims(X.dims().begin() + 2, X.dims().end()));
    for (const Tensor* t : p)
      PTQ_CHECK(t->numel() == static_cast<size_t>(c), ModelError, "parameters must have C=", c,
                " elements, got ", dims_str(t->dims()));
    // y = x * a + b with a = scale / sqrt(var + eps), b = B - mean * a.
    std::vector<float> a(static_cast<size_t>(c)), b(static_cast<size_t>(c));
    for (int64_t i = 0; i < c; ++i) {
      a[i] = p[0]->data<float>()[i] / std::sqrt(p[3]->data<float>()[i] + eps_);
      b[i] = p[1]->data<float>()[i] - p[2]->data<float>()[i] * a[i];
    }
    out[0] = new_tensor(DType::kFloat, X.dims());
    const float* x = X.data<float>();
    float* y = out[0].mutable_data<float>();
    ctx.parallel_for(static_cast<size_t>(n * c), [&](size_t i) {
      const size_t ch = i % static_cast<size_t>(c);
      const float* xs = x + static_cast<int64_t>(i) * inner;
      float* ys = y + static_cast<int64_t>(i) * inner;
      for (int64_t j = 0; j < inner; ++j) ys[j] = xs[j] * a[ch] + b[ch];
    });
  }

 private:
  float eps_;
};

// Normalizes groups of `len` contiguous elements: LayerNorm (tail from axis) or InstanceNorm.
void normalize_rows(const KernelContext& ctx, const float* x, float* y, int64_t rows, int64_t len,
                    float eps, const std::function<void(int64_t row, float* y)>& affine) {
  ctx.parallel_for(static_cast<size_t>(rows), [&](size_t r) {
    const float* xs = x + static_cast<int64_t>(r) * len;
    float* ys = y + static_cast<int64_t>(r) * len;
    double mean = 0;
    for (int64_t j = 0; j < len; ++j) mean += xs[j];
    mean /= static_cast<double>(len);
    double var = 0;
    for (int64_t j = 0; j < len; ++j) var += (xs[j] - mean) * (xs[j] - mean);
    var /= static_cast<double>(len);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < len; ++j) ys[j] = static_cast<float>((xs[j] - mean) * inv);
    affine(static_cast<int64_t>(r), ys);
  });
}

class LayerNorm : public Kernel {
 public:
  explicit LayerNorm(const KernelInit& init)
      : axis_(init.node.attr_int("axis", -1)), eps_(init.node.attr_float("epsilon", 1e-5f)) {
    for (size_t i = 1; i < init.node.outputs.size(); ++i)
      PTQ_CHECK(init.node.outputs[i] == ir::kNone, UnsupportedError,
                "LayerNormalization Mean/InvStdDev outputs are not supported");
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = float_input(in, 0, "X");
    const Tensor& S = float_input(in, 1, "Scale");
    const Tensor* B = optional_input(in, 2);
    const int64_t axis = normalize_axis(axis_, static_cast<int64_t>(X.rank()));
    const Dims tail(X.dims().begin() + axis, X.dims().end());
    const int64_t len = numel_of(tail), rows = len ? static_cast<int64_t>(X.numel()) / len : 0;
    const Dims sd = broadcast_dims(S.dims(), tail);
    PTQ_CHECK(sd == tail && (!B || broadcast_dims(B->dims(), tail) == tail), ModelError,
              "Scale/B must broadcast to ", dims_str(tail));
    const std::vector<int64_t> ss = broadcast_strides(S.dims(), tail);
    out[0] = new_tensor(DType::kFloat, X.dims());
    // Materialize scale and bias over the normalized tail once.
    std::vector<float> s(static_cast<size_t>(len)), b(static_cast<size_t>(len), 0.f);
    strided_copy(S.raw(), broadcast_strides(S.dims(), tail), 0, s.data(), tail, sizeof(float));
    if (B) strided_copy(B->raw(), broadcast_strides(B->dims(), tail), 0, b.data(), tail, sizeof(float));
    normalize_rows(ctx, X.data<float>(), out[0].mutable_data<float>(), rows, len, eps_,
                   [&](int64_t, float* y) {
                     for (int64_t j = 0; j < len; ++j) y[j] = y[j] * s[j] + b[j];
                   });
  }

 private:
  int64_t axis_;
  float eps_;
};

class InstanceNorm : public Kernel {
 public:
  explicit InstanceNorm(const KernelInit& init) : eps_(init.node.attr_float("epsilon", 1e-5f)) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = float_input(in, 0, "input");
    const Tensor& S = float_input(in, 1, "scale");
    const Tensor& B = float_input(in, 2, "B");
    PTQ_CHECK(X.rank() >= 2, ModelError, "input must have rank >= 2");
    const int64_t c = X.dims()[1];
    PTQ_CHECK(S.numel() == static_cast<size_t>(c) && B.numel() == static_cast<size_t>(c),
              ModelError, "scale and B must have C=", c, " elements");
    const int64_t len = numel_of(Dims(X.dims().begin() + 2, X.dims().end()));
    out[0] = new_tensor(DType::kFloat, X.dims());
    const float* s = S.data<float>();
    const float* b = B.data<float>();
    normalize_rows(ctx, X.data<float>(), out[0].mutable_data<float>(), X.dims()[0] * c, len, eps_,
                   [&](int64_t row, float* y) {
                     const int64_t ch = row % c;
                     for (int64_t j = 0; j < len; ++j) y[j] = y[j] * s[ch] + b[ch];
                   });
  }

 private:
  float eps_;
};

}  // namespace

void register_norm(KernelRegistry& r) {
  r.add("BatchNormalization", make_kernel<BatchNorm>);
  r.add("", "LayerNormalization", 17, INT64_MAX, make_kernel<LayerNorm>);
  r.add("InstanceNormalization", make_kernel<InstanceNorm>);
}

}  // namespace ptq::runtime
