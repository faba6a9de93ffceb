// Scale / zero-point / rounding math: the one place ptq computes them (ONNX and ORT semantics).
#pragma once

#include <cmath>
#include <cstdint>

#include "ptq/core/dtype.h"

namespace ptq::quant {

enum class Symmetry { kAsymmetric, kSymmetric };

struct IntRange {
  int32_t qmin = 0;
  int32_t qmax = 0;
};

// ONNX saturation range of an integer type: int8 [-128, 127], uint8 [0, 255], int32 [INT32_MIN, INT32_MAX].
IntRange full_range(DType type);
// ORT's symmetric range: int8 [-127, 127] (z = 0), uint8 [0, 254] (z = 127).
IntRange symmetric_range(DType type);

// ORT's reduce_range: 7-bit weights, int8 [-64, 64] symmetric ([-64, 63] asymmetric), uint8 [0, 127].
// On x86 without VNNI, ORT multiplies uint8 activations by int8 weights with vpmaddubsw, which
// saturates the sum of two products to int16: 255·127·2 overflows it, 255·64·2 does not.
IntRange reduced_range(DType type, Symmetry symmetry);

struct QuantParams {
  float scale = 1.f;
  int32_t zero_point = 0;
};

// ORT's compute_scale_zp: forces 0 into [rmin, rmax], widens to +-absmax when symmetric, computes
// the scale in double from the float32 difference, zp with ties-to-even, scale cast to float last.
// A degenerate range (all zeros or constant 0) gives scale 1, zp 0.
QuantParams compute_scale_zp(float rmin, float rmax, DType type, Symmetry symmetry);
// The same onto an explicit integer range (e.g. reduced_range).
QuantParams compute_scale_zp(float rmin, float rmax, IntRange r, Symmetry symmetry);

// ONNX QuantizeLinear: saturate(rint(x / scale) + zp), the division in float32, ties to even.
inline int32_t quantize_value(float x, float scale, int32_t zero_point, IntRange range) {
  const float v = std::nearbyint(x / scale) + static_cast<float>(zero_point);
  if (!(v >= static_cast<float>(range.qmin))) return range.qmin;  // also catches NaN
  // >=: float(INT32_MAX) rounds up to 2^31, whose cast to int32 would be undefined.
  if (v >= static_cast<float>(range.qmax)) return range.qmax;
  return static_cast<int32_t>(v);
}

// ONNX DequantizeLinear: (q - zp) * scale in float32.
inline float dequantize_value(int32_t q, float scale, int32_t zero_point) {
  return static_cast<float>(int64_t{q} - zero_point) * scale;  // int64: no overflow at int32 ends
}

// Quantize then dequantize (what a Q/DQ pair does to a float).
inline float fake_quantize(float x, QuantParams p, IntRange range) {
  return dequantize_value(quantize_value(x, p.scale, p.zero_point, range), p.scale, p.zero_point);
}

}  // namespace ptq::quant
