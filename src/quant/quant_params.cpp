// Scale and zero point as ONNX Runtime's quantizer computes them (quant_utils.compute_scale_zp).
#include "ptq/quant/quant_params.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ptq/core/error.h"

namespace ptq::quant {

IntRange full_range(DType type) {
  switch (type) {
    case DType::kInt8: return {-128, 127};
    case DType::kUint8: return {0, 255};
    case DType::kInt16: return {-32768, 32767};
    case DType::kUint16: return {0, 65535};
    case DType::kInt32: return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
    default: throw UnsupportedError(str_cat("no integer range for ", dtype_name(type)));
  }
}

IntRange symmetric_range(DType type) {
  switch (type) {
    case DType::kInt8: return {-127, 127};
    case DType::kUint8: return {0, 254};
    case DType::kInt16: return {-32767, 32767};
    case DType::kUint16: return {0, 65534};
    default: return full_range(type);
  }
}

IntRange reduced_range(DType type, Symmetry symmetry) {
  switch (type) {
    case DType::kInt8: return symmetry == Symmetry::kSymmetric ? IntRange{-64, 64} : IntRange{-64, 63};
    case DType::kUint8: return {0, 127};
    default: return symmetry == Symmetry::kSymmetric ? symmetric_range(type) : full_range(type);
  }
}

QuantParams compute_scale_zp(float rmin, float rmax, DType type, Symmetry symmetry) {
  return compute_scale_zp(rmin, rmax, symmetry == Symmetry::kSymmetric ? symmetric_range(type) : full_range(type),
                          symmetry);
}

QuantParams compute_scale_zp(float rmin, float rmax, IntRange r, Symmetry symmetry) {
  rmin = std::min(rmin, 0.f);
  rmax = std::max(rmax, 0.f);
  if (symmetry == Symmetry::kSymmetric) {
    const float absmax = std::max(std::fabs(rmin), std::fabs(rmax));
    rmin = -absmax;
    rmax = absmax;
  }
  // The difference is taken in float32, then widened, as ORT does with numpy float32 inputs.
  const double scale = static_cast<double>(rmax - rmin) / static_cast<double>(r.qmax - r.qmin);
  if (!(scale >= static_cast<double>(std::numeric_limits<float>::min()))) return {1.f, 0};
  // Ranges near float's limits (rmax - rmin overflowed to inf): the largest float scale, so
  // callers such as mse's loss search see a defined value. The planner keeps ranges beyond 1e30
  // fp32, and the emitter refuses to write a non-finite scale (scale_tensor).
  if (!(scale <= static_cast<double>(std::numeric_limits<float>::max())))
    return {std::numeric_limits<float>::max(), symmetry == Symmetry::kSymmetric
                                                   ? static_cast<int32_t>(std::nearbyint((r.qmin + r.qmax) / 2.0))
                                                   : r.qmin};
  QuantParams p;
  if (symmetry == Symmetry::kSymmetric) {
    p.zero_point = static_cast<int32_t>(std::nearbyint((r.qmin + r.qmax) / 2.0));
  } else {
    const double zp = std::nearbyint(static_cast<double>(r.qmin) - static_cast<double>(rmin) / scale);
    p.zero_point = static_cast<int32_t>(std::clamp(zp, static_cast<double>(r.qmin), static_cast<double>(r.qmax)));
  }
  p.scale = static_cast<float>(scale);
  return p;
}

}  // namespace ptq::quant
