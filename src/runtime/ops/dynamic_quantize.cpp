// DynamicQuantizeLinear: uint8 codes with a scale and zero point from the tensor's own range, as ORT.
#include "qlinear.h"

namespace ptq::runtime {
namespace {

// ORT: parameters from dynamic_qparam, codes = saturate(round_half_even(x / scale) + zp)
// (MlasQuantizeLinear).
class DynamicQuantizeLinear : public Kernel {
 public:
  explicit DynamicQuantizeLinear(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = float_input(in, 0, "x");
    const float* px = x.data<float>();
    const QParam p = dynamic_qparam(px, x.numel());
    out[0] = new_tensor(DType::kUint8, x.dims());
    uint8_t* py = out[0].mutable_data<uint8_t>();
    for (size_t i = 0; i < x.numel(); ++i) py[i] = quantize_value<uint8_t>(px[i], p.scale, p.zero);
    if (out.size() > 1) out[1] = Tensor::scalar<float>(p.scale);
    if (out.size() > 2) out[2] = Tensor::scalar<uint8_t>(static_cast<uint8_t>(p.zero));
  }
};

}  // namespace

void register_dynamic_quantize(KernelRegistry& r) {
  r.add("", "DynamicQuantizeLinear", 11, INT64_MAX, make_kernel<DynamicQuantizeLinear>);
}

}  // namespace ptq::runtime
