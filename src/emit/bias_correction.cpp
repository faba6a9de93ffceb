// Bias correction for weight quantization: the analytic per-channel mean shift.
#include "bias_correction.h"

namespace ptq::emit {
namespace {

// The dequantized weight at flat index i whose output channel is c.
double dequantized(const QuantizedWeight& qw, size_t i, size_t c) {
  const int32_t code = qw.q.dtype() == DType::kInt8 ? qw.q.data<int8_t>()[i] : qw.q.data<uint8_t>()[i];
  const size_t k = qw.scale.size() == 1 ? 0 : c;
  return static_cast<double>(code - qw.zero_point[k]) * static_cast<double>(qw.scale[k]);
}

}  // namespace

std::vector<double> weight_bias_shift(const ir::Node& n, const Tensor& w, const QuantizedWeight& qw,
                                      const std::vector<double>& x_mean) {
  if (!n.is_default_domain() || w.dtype() != DType::kFloat) return {};
  if (qw.q.dtype() != DType::kInt8 && qw.q.dtype() != DType::kUint8) return {};
  const float* wf = w.data<float>();
  const Dims& d = w.dims();
  if (n.op_type == "Conv" && d.size() >= 3 && qw.axis <= 0) {
    const size_t m = static_cast<size_t>(d[0]), cg = static_cast<size_t>(d[1]);
    const int64_t group = n.attr_int("group", 1);
    if (group < 1 || m % static_cast<size_t>(group) || x_mean.size() != cg * static_cast<size_t>(group)) return {};
    const size_t taps = w.numel() / (m * cg), per_group = m / static_cast<size_t>(group);
    std::vector<double> shift(m, 0.0);
    for (size_t oc = 0; oc < m; ++oc) {
      const size_t first_in = (oc / per_group) * cg;
      for (size_t j = 0; j < cg; ++j) {
        double e = 0;
        for (size_t t = 0; t < taps; ++t) {
          const size_t i = (oc * cg + j) * taps + t;
          e += static_cast<double>(wf[i]) - dequantized(qw, i, oc);
        }
        shift[oc] += e * x_mean[first_in + j];
      }
    }
    return shift;
  }
  if (n.op_type == "Gemm" && d.size() == 2 && n.attr_int("transA", 0) == 0) {
    const bool trans_b = n.attr_int("transB", 0) != 0;
    const size_t k = static_cast<size_t>(trans_b ? d[1] : d[0]), cols = static_cast<size_t>(trans_b ? d[0] : d[1]);
    const int64_t out_axis = trans_b ? 0 : 1;
    if (x_mean.size() != k || (qw.axis >= 0 && qw.axis != out_axis)) return {};
    const double alpha = n.attr_float("alpha", 1.f);
    std::vector<double> shift(cols, 0.0);
    for (size_t c = 0; c < cols; ++c)
      for (size_t j = 0; j < k; ++j) {
        const size_t i = trans_b ? c * k + j : j * cols + c;
        shift[c] += alpha * (static_cast<double>(wf[i]) - dequantized(qw, i, c)) * x_mean[j];
      }
    return shift;
  }
  return {};
}

}  // namespace ptq::emit
