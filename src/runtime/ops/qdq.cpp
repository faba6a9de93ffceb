// QuantizeLinear / DequantizeLinear: per-tensor and per-axis; int8/uint8/int16/uint16/int32.
// Quantize is saturate(nearbyint(x / s) + z) with float32 division and ties to even.
#include <cfenv>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "common.h"

namespace ptq::runtime {
namespace {

// Scale/zero-point layout: one value, or one per index along `axis`.
struct Params {
  int64_t channels = 1, inner = 1;  // element i uses channel (i / inner) % channels
};

Params layout(const Tensor& x, const Tensor& scale, int64_t axis_attr) {
  Params p;
  if (scale.numel() == 1 && scale.rank() <= 1) return p;
  PTQ_CHECK(scale.rank() == 1, UnsupportedError, "blocked quantization (scale of rank ", scale.rank(), ")");
  const int64_t axis = normalize_axis(axis_attr, static_cast<int64_t>(x.rank()));
  p.channels = x.dims()[static_cast<size_t>(axis)];
  PTQ_CHECK(static_cast<int64_t>(scale.numel()) == p.channels, ModelError, "scale has ", scale.numel(),
            " values for axis ", axis, " of size ", p.channels);
  p.inner = numel_of(Dims(x.dims().begin() + axis + 1, x.dims().end()));
  return p;
}

template <typename F>
void dispatch_quant(DType t, F&& f) {
  switch (t) {
    case DType::kInt8: f(int8_t{}); break;
    case DType::kUint8: f(uint8_t{}); break;
    case DType::kInt16: f(int16_t{}); break;
    case DType::kUint16: f(uint16_t{}); break;
    case DType::kInt32: f(int32_t{}); break;
    default: PTQ_CHECK(false, UnsupportedError, "quantized dtype ", dtype_name(t), " is not supported");
  }
}

// QuantizeLinear on one value: saturate(nearbyint(x / scale) + zp).
template <typename Q>
inline Q quantize_one(float x, float scale, float zp, float lo, float hi) {
  float q = std::nearbyint(x / scale) + zp;
  // NaN has no integer: converting it is undefined behaviour (found by the fuzz regression once
  // the placement search ran int8 models on NaN data). It becomes the zero point.
  q = q != q ? zp : q;
  // int32's max is not representable in float; clamp in double for it.
  if constexpr (std::is_same_v<Q, int32_t>)
    return static_cast<Q>(std::min(std::max(double(q), double(INT32_MIN)), double(INT32_MAX)));
  else
    return static_cast<Q>(std::min(std::max(q, lo), hi));
}

// One scale and zero point for the whole tensor. Restrict pointers and a local count: a byte
// store may alias anything, which kept the general loop scalar.
template <typename Q>
void quantize_per_tensor(const float* __restrict x, size_t n, float scale, float zp, float lo, float hi,
                         Q* __restrict y) {
  for (size_t i = 0; i < n; ++i) y[i] = quantize_one<Q>(x[i], scale, zp, lo, hi);
}

// DequantizeLinear on `n` codes sharing one scale and zero point: (x - zp) * scale.
template <typename Q>
void dequantize_block(const Q* __restrict x, size_t n, Q zp, float scale, float* __restrict y) {
  using Wide = std::conditional_t<sizeof(Q) < 4, int32_t, int64_t>;
  const Wide z = zp;
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<Wide>(x[i]) - z) * scale;
}

// The same along a row whose every element has its own scale and zero point.
template <typename Q>
void dequantize_row(const Q* __restrict x, size_t n, const Q* __restrict zp, const float* __restrict scale,
                    float* __restrict y) {
  using Wide = std::conditional_t<sizeof(Q) < 4, int32_t, int64_t>;
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<Wide>(x[i]) - static_cast<Wide>(zp[i])) * scale[i];
}

class QuantizeLinear : public Kernel {
 public:
  explicit QuantizeLinear(const KernelInit& init)
      : axis_(init.node.attr_int("axis", 1)),
        output_dtype_(static_cast<DType>(init.node.attr_int("output_dtype", 0))) {
    PTQ_CHECK(init.node.attr_int("block_size", 0) == 0, UnsupportedError, "blocked quantization");
  }
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = float_input(in, 0, "x");
    const Tensor& s = float_input(in, 1, "y_scale");
    const Tensor* z = optional_input(in, 2);
    const DType qt = z ? z->dtype() : output_dtype_ != DType::kUndefined ? output_dtype_ : DType::kUint8;
    PTQ_CHECK(!z || z->numel() == s.numel(), ModelError, "y_zero_point and y_scale differ in size");
    const Params p = layout(x, s, axis_);
    out[0] = Tensor::empty(qt, x.dims());
    // nearbyint rounds in the current mode; make sure it is ties-to-even.
    PTQ_ASSERT(std::fegetround() == FE_TONEAREST);
    dispatch_quant(qt, [&](auto tag) {
      using Q = decltype(tag);
      const float lo = static_cast<float>(std::numeric_limits<Q>::min());
      const float hi = static_cast<float>(std::numeric_limits<Q>::max());
      const float* px = x.data<float>();
      const float* ps = s.data<float>();
      Q* py = out[0].mutable_data<Q>();
      if constexpr (sizeof(Q) == 1) {
        if (p.channels == 1) {  // per tensor: the same arithmetic in a loop the compiler vectorizes
          quantize_per_tensor(px, x.numel(), ps[0], z ? static_cast<float>(z->data<Q>()[0]) : 0.f, lo, hi, py);
          return;
        }
      }
      for (size_t i = 0; i < x.numel(); ++i) {
        const size_t c = p.channels == 1 ? 0 : (i / static_cast<size_t>(p.inner)) % static_cast<size_t>(p.channels);
        py[i] = quantize_one<Q>(px[i], ps[c], z ? static_cast<float>(z->data<Q>()[c]) : 0.f, lo, hi);
      }
    });
  }

 private:
  int64_t axis_;
  DType output_dtype_;
};

class DequantizeLinear : public Kernel {
 public:
  explicit DequantizeLinear(const KernelInit& init) : axis_(init.node.attr_int("axis", 1)) {
    PTQ_CHECK(init.node.attr_int("block_size", 0) == 0, UnsupportedError, "blocked quantization");
  }
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& x = required_input(in, 0, "x");
    const Tensor& s = float_input(in, 1, "x_scale");
    const Tensor* z = optional_input(in, 2);
    PTQ_CHECK(!z || (z->dtype() == x.dtype() && z->numel() == s.numel()), ModelError,
              "x_zero_point must match x's dtype and x_scale's size");
    const Params p = layout(x, s, axis_);
    out[0] = Tensor::empty(DType::kFloat, x.dims());
    dispatch_quant(x.dtype(), [&](auto tag) {
      using Q = decltype(tag);
      const Q* px = x.data<Q>();
      const float* ps = s.data<float>();
      float* py = out[0].mutable_data<float>();
      // Block by block of one channel, so the loop vectorizes (an index division per element made
      // this the slowest kernel of fake-quant runs). Codes below 32 bits minus their zero point fit
      // int32 and convert to float exactly, as through int64.
      const size_t channels = static_cast<size_t>(p.channels), inner = static_cast<size_t>(p.inner);
      if (x.numel() == 0) return;
      if (channels > 1 && inner == 1) {  // the last axis (MatMul weights): rows of all channels
        std::vector<Q> zero(channels, Q{0});
        const Q* pz = z ? z->data<Q>() : zero.data();
        for (size_t r = 0; r < x.numel() / channels; ++r) dequantize_row(px + r * channels, channels, pz, ps, py + r * channels);
        return;
      }
      const size_t blocks = channels == 1 ? 1 : x.numel() / inner;
      const size_t block = channels == 1 ? x.numel() : inner;
      for (size_t b = 0; b < blocks; ++b) {
        const size_t c = b % channels;
        dequantize_block(px + b * block, block, z ? z->data<Q>()[c] : Q{0}, ps[c], py + b * block);
      }
    });
  }

 private:
  int64_t axis_;
};

}  // namespace

void register_qdq(KernelRegistry& r) {
  r.add("", "QuantizeLinear", 10, INT64_MAX, make_kernel<QuantizeLinear>);
  r.add("", "DequantizeLinear", 10, INT64_MAX, make_kernel<DequantizeLinear>);
}

}  // namespace ptq::runtime
