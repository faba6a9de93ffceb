// com.microsoft MatMulIntegerToFloat and DynamicQuantizeMatMul: ORT's fusions of its dynamic pattern.
#include "integer_matmul.h"

namespace ptq::runtime {
namespace {

// y = acc · (a_scale · b_scale[col]) (+ bias[col]), the float product formed first as ORT's
// MatMulIntegerToFloat does (and as the unfused Cast -> Mul(Mul(a_scale, b_scale)) -> Add).
Tensor scale_and_bias(const std::vector<int32_t>& acc, const Dims& od, int64_t N, float a_scale,
                      const std::vector<float>& bs, const Tensor* bias) {
  PTQ_CHECK(bs.size() == 1 || static_cast<int64_t>(bs.size()) == N, ModelError, "b_scale has ", bs.size(),
            " values for ", N, " columns");
  PTQ_CHECK(!bias || (bias->dtype() == DType::kFloat && static_cast<int64_t>(bias->numel()) == N), ModelError,
            "bias must be float with one value per column");
  std::vector<float> mult(bs.size());
  for (size_t i = 0; i < bs.size(); ++i) mult[i] = a_scale * bs[i];
  Tensor out = new_tensor(DType::kFloat, od);
  float* y = out.mutable_data<float>();
  for (size_t i = 0; i < acc.size(); ++i) {
    const size_t c = static_cast<size_t>(static_cast<int64_t>(i) % N);
    y[i] = static_cast<float>(acc[i]) * mult[mult.size() == 1 ? 0 : c];
    if (bias) y[i] += bias->data<float>()[c];
  }
  return out;
}

std::vector<int32_t> zero_points_or_0(const Tensor* t, const char* what) {
  return t ? zero_points(*t, what) : std::vector<int32_t>{0};
}

// Inputs: A (8-bit), B (8-bit), a_scale (scalar), b_scale, a_zero_point?, b_zero_point?, bias?
class MatMulIntegerToFloat : public Kernel {
 public:
  explicit MatMulIntegerToFloat(const KernelInit& init) : b_(constant_b(init, 1, false)) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& A = required_input(in, 0, "A");
    const Tensor& B = required_input(in, 1, "B");
    const std::vector<float> as = scales(required_input(in, 2, "a_scale"), "a_scale");
    PTQ_CHECK(as.size() == 1, UnsupportedError, "MatMulIntegerToFloat: a_scale must be a scalar");
    const std::vector<float> bs = scales(required_input(in, 3, "b_scale"), "b_scale");
    Dims od;
    int64_t N = 0;
    const std::vector<int32_t> acc = integer_matmul(ctx, A, zero_points_or_0(optional_input(in, 4), "a_zero_point"), B,
                                                    *use_b(b_, B, false),
                                                    zero_points_or_0(optional_input(in, 5), "b_zero_point"), false, od, N);
    out[0] = scale_and_bias(acc, od, N, as[0], bs, optional_input(in, 6));
  }

 private:
  std::shared_ptr<const MatB> b_;
};

// Inputs: A (float), B (8-bit), b_scale, b_zero_point?, bias?; A quantized as DynamicQuantizeLinear.
class DynamicQuantizeMatMul : public Kernel {
 public:
  explicit DynamicQuantizeMatMul(const KernelInit& init) : b_(constant_b(init, 1, false)) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& A = float_input(in, 0, "A");
    const Tensor& B = required_input(in, 1, "B");
    const std::vector<float> bs = scales(required_input(in, 2, "b_scale"), "b_scale");
    const QParam aq = dynamic_qparam(A.data<float>(), A.numel());
    Tensor Aq = new_tensor(DType::kUint8, A.dims());
    for (size_t i = 0; i < A.numel(); ++i)
      Aq.mutable_data<uint8_t>()[i] = quantize_value<uint8_t>(A.data<float>()[i], aq.scale, aq.zero);
    Dims od;
    int64_t N = 0;
    const std::vector<int32_t> acc = integer_matmul(ctx, Aq, {aq.zero}, B, *use_b(b_, B, false),
                                                    zero_points_or_0(optional_input(in, 3), "b_zero_point"), false, od, N);
    out[0] = scale_and_bias(acc, od, N, aq.scale, bs, optional_input(in, 4));
  }

 private:
  std::shared_ptr<const MatB> b_;
};

}  // namespace

void register_matmul_integer_to_float(KernelRegistry& r) {
  r.add(kMs, "MatMulIntegerToFloat", 1, INT64_MAX, make_kernel<MatMulIntegerToFloat>);
  r.add(kMs, "DynamicQuantizeMatMul", 1, INT64_MAX, make_kernel<DynamicQuantizeMatMul>);
}

}  // namespace ptq::runtime
