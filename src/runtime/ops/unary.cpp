// Elementwise unary ops: activations (Relu, Sigmoid, HardSigmoid, Clip, ...), math, Not, Identity.
#include <algorithm>
#include <cmath>
#include <limits>

#include "common.h"
#include "fast_kernels.h"

namespace ptq::runtime {
namespace {

constexpr size_t kChunk = 1 << 14;  // elements per parallel chunk (fixed: thread-count independent)

// y = a new float tensor like x, filled by block(in, out, count) over fixed parallel chunks.
template <typename B>
void map_float_chunks(const KernelContext& ctx, const Tensor& x, Tensor& y, B block) {
  y = new_tensor(DType::kFloat, x.dims());
  const float* px = x.data<float>();
  float* py = y.mutable_data<float>();
  const size_t n = x.numel();
  ctx.parallel_for((n + kChunk - 1) / kChunk, [&](size_t c) {
    block(px + c * kChunk, py + c * kChunk, std::min(n, (c + 1) * kChunk) - c * kChunk);
  });
}

// A float → float map applied in parallel chunks.
template <typename F>
void map_float(const KernelContext& ctx, const Tensor& x, Tensor& y, F f) {
  map_float_chunks(ctx, x, y, [&f](const float* in, float* out, size_t count) {
    for (size_t i = 0; i < count; ++i) out[i] = f(in[i]);
  });
}

enum class Op { kRelu, kSigmoid, kTanh, kExp, kLog, kSqrt, kReciprocal, kFloor, kCeil, kRound,
                kErf, kSoftplus, kSin, kCos, kHardSwish };

template <Op K>
class FloatUnary : public Kernel {
 public:
  explicit FloatUnary(const KernelInit&) {}
  bool fuse_multiply_by_input(bool input_first) override {
    times_input_ = K == Op::kSigmoid;
    input_first_ = input_first;
    return times_input_;
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = float_input(in, 0, "X");
    if constexpr (K == Op::kSigmoid) {
      // SiLU: x · Sigmoid(x) in the same chunk, each product the Mul's float multiply.
      const bool fast_exp = fast::available();  // the AVX2 exp: yolox-nano spent half its fp32 time in std::exp
      if (times_input_ || fast_exp) {
        map_float_chunks(ctx, x, out[0], [this, fast_exp](const float* a, float* y, size_t n) {
          if (fast_exp) fast::sigmoid(a, y, n);
          else for (size_t i = 0; i < n; ++i) y[i] = 1.f / (1.f + std::exp(-a[i]));
          if (times_input_ && input_first_)
            for (size_t i = 0; i < n; ++i) y[i] = a[i] * y[i];
          else if (times_input_)
            for (size_t i = 0; i < n; ++i) y[i] = y[i] * a[i];
        });
        return;
      }
    }
    map_float(ctx, x, out[0], [](float v) -> float {
      if constexpr (K == Op::kRelu) return std::max(v, 0.f);
      if constexpr (K == Op::kSigmoid) return 1.f / (1.f + std::exp(-v));
      if constexpr (K == Op::kTanh) return std::tanh(v);
      if constexpr (K == Op::kExp) return std::exp(v);
      if constexpr (K == Op::kLog) return std::log(v);
      if constexpr (K == Op::kSqrt) return std::sqrt(v);
      if constexpr (K == Op::kReciprocal) return 1.f / v;
      if constexpr (K == Op::kFloor) return std::floor(v);
      if constexpr (K == Op::kCeil) return std::ceil(v);
      if constexpr (K == Op::kRound) return std::nearbyint(v);  // ties to even
      if constexpr (K == Op::kErf) return std::erf(v);
      if constexpr (K == Op::kSoftplus) return std::log1p(std::exp(-std::abs(v))) + std::max(v, 0.f);
      if constexpr (K == Op::kSin) return std::sin(v);
      if constexpr (K == Op::kCos) return std::cos(v);
      if constexpr (K == Op::kHardSwish) return v * std::max(0.f, std::min(1.f, v / 6.f + 0.5f));
    });
  }

 private:
  bool times_input_ = false;  // fused SiLU: run() writes x · f(x)
  bool input_first_ = true;   // as Mul(x, f(x)), else Mul(f(x), x)
};

// Ops with float attributes alpha/beta.
enum class AOp { kHardSigmoid, kLeakyRelu, kElu, kSelu, kGelu };

template <AOp K>
class AttrUnary : public Kernel {
 public:
  explicit AttrUnary(const KernelInit& init) {
    const ir::Node& n = init.node;
    if constexpr (K == AOp::kHardSigmoid) {
      alpha_ = n.attr_float("alpha", 0.2f);
      beta_ = n.attr_float("beta", 0.5f);
    } else if constexpr (K == AOp::kLeakyRelu) {
      alpha_ = n.attr_float("alpha", 0.01f);
    } else if constexpr (K == AOp::kElu) {
      alpha_ = n.attr_float("alpha", 1.f);
    } else if constexpr (K == AOp::kSelu) {
      alpha_ = n.attr_float("alpha", 1.67326319217681884765625f);
      beta_ = n.attr_float("gamma", 1.05070102214813232421875f);
    } else {
      const std::string a = n.attr_string("approximate", "none");
      PTQ_CHECK(a == "none" || a == "tanh", ModelError, "Gelu approximate must be none or tanh, got '",
                a, "'");
      tanh_ = a == "tanh";
    }
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = float_input(in, 0, "X");
    const float a = alpha_, b = beta_;
    const bool th = tanh_;
    map_float(ctx, x, out[0], [a, b, th](float v) -> float {
      if constexpr (K == AOp::kHardSigmoid) return std::max(0.f, std::min(1.f, a * v + b));
      if constexpr (K == AOp::kLeakyRelu) return v >= 0 ? v : a * v;
      if constexpr (K == AOp::kElu) return v >= 0 ? v : a * (std::exp(v) - 1.f);
      if constexpr (K == AOp::kSelu) return v > 0 ? b * v : b * (a * std::exp(v) - a);
      if constexpr (K == AOp::kGelu) {
        if (th) {
          const float c = std::sqrt(2.f / static_cast<float>(M_PI));
          return 0.5f * v * (1.f + std::tanh(c * (v + 0.044715f * v * v * v)));
        }
        return 0.5f * v * (1.f + std::erf(v / std::sqrt(2.f)));
      }
    });
  }

 private:
  float alpha_ = 0, beta_ = 0;
  bool tanh_ = false;
};

// Clip: min/max are attributes before opset 11 and optional inputs from 11.
class Clip : public Kernel {
 public:
  explicit Clip(const KernelInit& init) : attrs_(init.opset < 11) {
    if (attrs_) {
      lo_ = init.node.attr_float("min", std::numeric_limits<float>::lowest());
      hi_ = init.node.attr_float("max", std::numeric_limits<float>::max());
    }
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = required_input(in, 0, "input");
    if (x.dtype() != DType::kFloat) return run_generic(in, out);
    float lo = lo_, hi = hi_;
    if (!attrs_) {
      lo = std::numeric_limits<float>::lowest();
      hi = std::numeric_limits<float>::max();
      if (const Tensor* t = optional_input(in, 1)) lo = static_cast<float>(scalar_value(*t, "min"));
      if (const Tensor* t = optional_input(in, 2)) hi = static_cast<float>(scalar_value(*t, "max"));
    }
    map_float(ctx, x, out[0], [lo, hi](float v) { return std::min(std::max(v, lo), hi); });
  }

 private:
  void run_generic(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) const {
    const Tensor& x = *in[0];
    PTQ_CHECK(!attrs_, UnsupportedError, "Clip on ", dtype_name(x.dtype()), " before opset 11");
    out[0] = new_tensor(x.dtype(), x.dims());
    dispatch_numeric(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
      if (const Tensor* t = optional_input(in, 1)) lo = static_cast<T>(scalar_value(*t, "min"));
      if (const Tensor* t = optional_input(in, 2)) hi = static_cast<T>(scalar_value(*t, "max"));
      const T* px = x.data<T>();
      T* py = out[0].mutable_data<T>();
      for (size_t i = 0; i < x.numel(); ++i) py[i] = std::min(std::max(px[i], lo), hi);
    });
  }
  bool attrs_;
  float lo_ = 0, hi_ = 0;
};

// Neg and Abs work on every signed numeric type.
template <bool kNeg>
class SignOp : public Kernel {
 public:
  explicit SignOp(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = required_input(in, 0, "X");
    out[0] = new_tensor(x.dtype(), x.dims());
    dispatch_numeric(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!std::is_same_v<T, bool>) {
        const T* px = x.data<T>();
        T* py = out[0].mutable_data<T>();
        for (size_t i = 0; i < x.numel(); ++i) {
          if constexpr (kNeg) py[i] = static_cast<T>(-px[i]);
          else if constexpr (std::is_signed_v<T>) py[i] = px[i] < 0 ? static_cast<T>(-px[i]) : px[i];
          else py[i] = px[i];
        }
      }
    });
  }
};

class Not : public Kernel {
 public:
  explicit Not(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = required_input(in, 0, "X");
    PTQ_CHECK(x.dtype() == DType::kBool, ModelError, "Not needs bool input");
    out[0] = new_tensor(DType::kBool, x.dims());
    for (size_t i = 0; i < x.numel(); ++i) out[0].mutable_data<bool>()[i] = !x.data<bool>()[i];
  }
};

// Identity and inference-mode Dropout: the output shares the input's storage (no copy);
// Dropout's optional mask output is all true.
class Identity : public Kernel {
 public:
  explicit Identity(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = required_input(in, 0, "input");
    out[0] = x;
    if (out.size() > 1) {
      out[1] = new_tensor(DType::kBool, x.dims());
      std::fill_n(out[1].mutable_data<bool>(), x.numel(), true);
    }
  }
};

// Dropout in inference mode is Identity; training mode (input 2 true) is refused.
class Dropout : public Identity {
 public:
  explicit Dropout(const KernelInit& init) : Identity(init) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor* training = optional_input(in, 2);
    PTQ_CHECK(!training || scalar_value(*training, "training_mode") == 0, UnsupportedError,
              "Dropout with training_mode=true");
    Identity::run(ctx, in, out);
  }
};

}  // namespace

void register_unary(KernelRegistry& r) {
  r.add("Relu", make_kernel<FloatUnary<Op::kRelu>>);
  r.add("Sigmoid", make_kernel<FloatUnary<Op::kSigmoid>>);
  r.add("Tanh", make_kernel<FloatUnary<Op::kTanh>>);
  r.add("Exp", make_kernel<FloatUnary<Op::kExp>>);
  r.add("Log", make_kernel<FloatUnary<Op::kLog>>);
  r.add("Sqrt", make_kernel<FloatUnary<Op::kSqrt>>);
  r.add("Reciprocal", make_kernel<FloatUnary<Op::kReciprocal>>);
  r.add("Floor", make_kernel<FloatUnary<Op::kFloor>>);
  r.add("Ceil", make_kernel<FloatUnary<Op::kCeil>>);
  r.add("Round", make_kernel<FloatUnary<Op::kRound>>);
  r.add("Erf", make_kernel<FloatUnary<Op::kErf>>);
  r.add("Softplus", make_kernel<FloatUnary<Op::kSoftplus>>);
  r.add("Sin", make_kernel<FloatUnary<Op::kSin>>);
  r.add("Cos", make_kernel<FloatUnary<Op::kCos>>);
  r.add("HardSwish", make_kernel<FloatUnary<Op::kHardSwish>>);
  r.add("HardSigmoid", make_kernel<AttrUnary<AOp::kHardSigmoid>>);
  r.add("LeakyRelu", make_kernel<AttrUnary<AOp::kLeakyRelu>>);
  r.add("Elu", make_kernel<AttrUnary<AOp::kElu>>);
  r.add("Selu", make_kernel<AttrUnary<AOp::kSelu>>);
  r.add("", "Gelu", 20, INT64_MAX, make_kernel<AttrUnary<AOp::kGelu>>);
  r.add("Clip", make_kernel<Clip>);
  r.add("Neg", make_kernel<SignOp<true>>);
  r.add("Abs", make_kernel<SignOp<false>>);
  r.add("Not", make_kernel<Not>);
  r.add("Identity", make_kernel<Identity>);
  r.add("Dropout", make_kernel<Dropout>);
}

}  // namespace ptq::runtime
