// Quantization-parameter helpers shared by the integer kernels (see qlinear.h).
#include "qlinear.h"

namespace ptq::runtime {

std::vector<int32_t> zero_points(const Tensor& zp, const char* what) {
  std::vector<int32_t> v(zp.numel());
  switch (zp.dtype()) {
    case DType::kInt8: for (size_t i = 0; i < v.size(); ++i) v[i] = zp.data<int8_t>()[i]; break;
    case DType::kUint8: for (size_t i = 0; i < v.size(); ++i) v[i] = zp.data<uint8_t>()[i]; break;
    case DType::kInt32: for (size_t i = 0; i < v.size(); ++i) v[i] = zp.data<int32_t>()[i]; break;
    default:
      PTQ_CHECK(false, UnsupportedError, what, " has dtype ", dtype_name(zp.dtype()));
  }
  return v;
}

std::vector<float> scales(const Tensor& s, const char* what) {
  PTQ_CHECK(s.dtype() == DType::kFloat, UnsupportedError, what, " has dtype ",
            dtype_name(s.dtype()), "; only float scales are supported");
  PTQ_CHECK(s.numel() >= 1, ModelError, what, " is empty");
  return std::vector<float>(s.data<float>(), s.data<float>() + s.numel());
}

QParam scalar_qparam(const std::vector<const Tensor*>& in, size_t scale_slot, size_t zp_slot,
                     const char* what) {
  QParam p;
  const std::vector<float> s = scales(required_input(in, scale_slot, what), what);
  PTQ_CHECK(s.size() == 1, UnsupportedError, what, " scale with ", s.size(),
            " values (only per-tensor is supported here)");
  p.scale = s[0];
  if (const Tensor* z = optional_input(in, zp_slot)) {
    const std::vector<int32_t> zs = zero_points(*z, what);
    PTQ_CHECK(zs.size() == 1, UnsupportedError, what, " zero point with ", zs.size(), " values");
    p.zero = zs[0];
  }
  return p;
}

}  // namespace ptq::runtime
