// DynamicQuantizeLinear: uint8 codes with a scale and zero point from the tensor's own range, as ORT.
#include <algorithm>
#include <cmath>

#include "qlinear.h"

namespace ptq::runtime {
namespace {

// ORT (GetQuantizationParameter + MlasQuantizeLinear): the range is widened to include 0,
// scale = (max - min) / 255 in float32 (1 when the range is empty), zero point =
// round_half_even(clamp(0 - min / scale, 0, 255)), codes = saturate(round_half_even(x / scale) + zp).
class DynamicQuantizeLinear : public Kernel {
 public:
  explicit DynamicQuantizeLinear(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = float_input(in, 0, "x");
    const float* px = x.data<float>();
    const size_t n = x.numel();
    float lo = 0.f, hi = 0.f;
    for (size_t i = 0; i < n; ++i) {
      lo = std::min(lo, px[i]);
      hi = std::max(hi, px[i]);
    }
    const float scale = hi == lo ? 1.f : (hi - lo) / 255.f;
    const float zf = std::clamp(0.f - lo / scale, 0.f, 255.f);
    const auto zero = static_cast<uint8_t>(std::nearbyint(zf));
    out[0] = new_tensor(DType::kUint8, x.dims());
    uint8_t* py = out[0].mutable_data<uint8_t>();
    for (size_t i = 0; i < n; ++i) py[i] = quantize_value<uint8_t>(px[i], scale, zero);
    if (out.size() > 1) out[1] = Tensor::scalar<float>(scale);
    if (out.size() > 2) out[2] = Tensor::scalar<uint8_t>(zero);
  }
};

}  // namespace

void register_dynamic_quantize(KernelRegistry& r) {
  r.add("", "DynamicQuantizeLinear", 11, INT64_MAX, make_kernel<DynamicQuantizeLinear>);
}

}  // namespace ptq::runtime
