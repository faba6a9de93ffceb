// Elementwise float tests with bool output: IsNaN, IsInf (detect_negative / detect_positive).
#include <cmath>
#include <type_traits>

#include "common.h"

namespace ptq::runtime {
namespace {

template <bool kInf>
class FloatTest : public Kernel {
 public:
  explicit FloatTest(const KernelInit& init)
      : neg_(init.node.attr_int("detect_negative", 1) != 0), pos_(init.node.attr_int("detect_positive", 1) != 0) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "X");
    PTQ_CHECK(X.dtype() == DType::kFloat || X.dtype() == DType::kDouble, UnsupportedError, "dtype ",
              dtype_name(X.dtype()));
    out[0] = new_tensor(DType::kBool, X.dims());
    bool* y = out[0].mutable_data<bool>();
    dispatch_numeric(X.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_floating_point_v<T>) {
        const T* x = X.data<T>();
        for (size_t i = 0; i < X.numel(); ++i) {
          if constexpr (kInf) y[i] = std::isinf(x[i]) && (x[i] > 0 ? pos_ : neg_);
          else y[i] = std::isnan(x[i]);
        }
      }
    });
  }

 private:
  bool neg_, pos_;
};

}  // namespace

void register_predicates(KernelRegistry& r) {
  r.add("IsNaN", make_kernel<FloatTest<false>>);
  r.add("IsInf", make_kernel<FloatTest<true>>);
}

}  // namespace ptq::runtime
