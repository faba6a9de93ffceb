// Softmax / LogSoftmax: before opset 13 the input is coerced to 2-D at `axis` (default 1) and
// normalized over the flattened tail; from 13 a single `axis` (default -1) is normalized.
#include <algorithm>
#include <cmath>

#include "common.h"

namespace ptq::runtime {
namespace {

template <bool kLog>
class Softmax : public Kernel {
 public:
  explicit Softmax(const KernelInit& init)
      : legacy_(init.opset < 13), axis_(init.node.attr_int("axis", init.opset < 13 ? 1 : -1)) {}

  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = float_input(in, 0, "input");
    const int64_t r = static_cast<int64_t>(X.rank());
    const int64_t axis = normalize_axis(axis_, r);
    const Dims& d = X.dims();
    // outer x len x inner: the softmax runs over `len` elements spaced `inner` apart.
    int64_t outer = 1, len = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= d[static_cast<size_t>(i)];
    if (legacy_) {
      for (int64_t i = axis; i < r; ++i) len *= d[static_cast<size_t>(i)];
    } else {
      len = r ? d[static_cast<size_t>(axis)] : 1;
      for (int64_t i = axis + 1; i < r; ++i) inner *= d[static_cast<size_t>(i)];
    }
    out[0] = new_tensor(DType::kFloat, d);
    const float* x = X.data<float>();
    float* y = out[0].mutable_data<float>();
    ctx.parallel_for(static_cast<size_t>(outer), [&](size_t o) {
      for (int64_t j = 0; j < inner; ++j) {
        const float* xs = x + static_cast<int64_t>(o) * len * inner + j;
        float* ys = y + static_cast<int64_t>(o) * len * inner + j;
        float m = -INFINITY;
        for (int64_t k = 0; k < len; ++k) m = std::max(m, xs[k * inner]);
        float sum = 0.f;
        for (int64_t k = 0; k < len; ++k) {
          const float e = std::exp(xs[k * inner] - m);
          sum += e;
          if constexpr (!kLog) ys[k * inner] = e;
        }
        if constexpr (kLog) {
          const float ls = std::log(sum);
          for (int64_t k = 0; k < len; ++k) ys[k * inner] = xs[k * inner] - m - ls;
        } else {
          for (int64_t k = 0; k < len; ++k) ys[k * inner] /= sum;
        }
      }
    });
  }

 private:
  bool legacy_;
  int64_t axis_;
};

}  // namespace

void register_softmax(KernelRegistry& r) {
  r.add("Softmax", make_kernel<Softmax<false>>);
  r.add("LogSoftmax", make_kernel<Softmax<true>>);
}

}  // namespace ptq::runtime
