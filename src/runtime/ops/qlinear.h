// Helpers for the integer kernels: 8-bit dispatch, quantization parameters, ORT-style rounding.
#pragma once

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common.h"

namespace ptq::runtime {

// Calls f(tag) with int8_t or uint8_t for an 8-bit quantized dtype; UnsupportedError otherwise.
template <typename F>
void dispatch_8bit(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::kInt8: f(int8_t{}); break;
    case DType::kUint8: f(uint8_t{}); break;
    default:
      PTQ_CHECK(false, UnsupportedError, what, " has dtype ", dtype_name(t),
                "; only int8 and uint8 are supported");
  }
}

// One zero point per element of an int8/uint8/int32 tensor, widened to int32.
std::vector<int32_t> zero_points(const Tensor& zp, const char* what);
// Scales of a float tensor (one per element).
std::vector<float> scales(const Tensor& s, const char* what);

// A per-tensor (scale, zero point) pair from optional inputs; a missing zero point is 0.
struct QParam {
  float scale = 1.f;
  int32_t zero = 0;
};
QParam scalar_qparam(const std::vector<const Tensor*>& in, size_t scale_slot, size_t zp_slot,
                     const char* what);

// DynamicQuantizeLinear's parameters as ORT computes them (GetQuantizationParameter): the range
// widened to include 0, scale = (max - min) / 255 in float32 (1 when the range is empty), zero
// point = round_half_even(clamp(0 - min / scale, 0, 255)).
inline QParam dynamic_qparam(const float* x, size_t n) {
  float lo = 0.f, hi = 0.f;
  for (size_t i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  QParam p;
  p.scale = hi == lo ? 1.f : (hi - lo) / 255.f;
  p.zero = static_cast<int32_t>(std::nearbyint(std::min(std::max(0.f - lo / p.scale, 0.f), 255.f)));
  return p;
}

// `acc · multiplier` rounded half to even, plus the zero point, saturated: MLAS's
// MlasRequantizeOutput (float requantization; clamping before or after rounding is the same
// because the bounds are integers).
template <typename Q>
inline Q requantize(float value, int32_t zero) {
  const float r = std::nearbyint(value) + static_cast<float>(zero);
  const float lo = static_cast<float>(std::numeric_limits<Q>::min());
  const float hi = static_cast<float>(std::numeric_limits<Q>::max());
  return static_cast<Q>(std::min(std::max(r, lo), hi));
}

// QuantizeLinear of one float: saturate(nearbyint(x / s) + z) with float32 division.
template <typename Q>
inline Q quantize_value(float x, float scale, int32_t zero) {
  return requantize<Q>(x / scale, zero);
}

// A 256-entry table mapping every input code to an output code: ORT evaluates QLinearSigmoid,
// QLinearLeakyRelu and requantizing QLinearConcat inputs this way (dequantize, f, quantize).
template <typename Q, typename F>
std::vector<Q> lookup_table(QParam x, QParam y, F&& f) {
  std::vector<Q> table(256);
  for (int v = std::numeric_limits<Q>::min(); v <= std::numeric_limits<Q>::max(); ++v) {
    const float real = static_cast<float>(v - x.zero) * x.scale;
    table[static_cast<uint8_t>(static_cast<Q>(v))] = quantize_value<Q>(f(real), y.scale, y.zero);
  }
  return table;
}

template <typename Q>
inline Q lookup(const std::vector<Q>& table, Q v) {
  return table[static_cast<uint8_t>(v)];
}

}  // namespace ptq::runtime
