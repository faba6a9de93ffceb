// Variadic elementwise ops with numpy broadcasting over all inputs: Max, Min, Sum, Mean.
#include <cmath>
#include <type_traits>

#include "common.h"

namespace ptq::runtime {
namespace {

enum class VOp { kMax, kMin, kSum, kMean };

// Calls f(out_index, in_index) over the broadcast of `in` dims into `od`.
template <typename F>
void for_each_index(const Dims& in, const Dims& od, F&& f) {
  const int64_t n = numel_of(od);
  const std::vector<int64_t> st = broadcast_strides(in, od);
  std::vector<int64_t> idx(od.size(), 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, off);
    for (size_t d = od.size(); d-- > 0;) {
      off += st[d];
      if (++idx[d] < od[d]) break;
      off -= st[d] * od[d];
      idx[d] = 0;
    }
  }
}

template <VOp K>
class Variadic : public Kernel {
 public:
  explicit Variadic(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& first = required_input(in, 0, "data_0");
    Dims od = first.dims();
    for (size_t k = 1; k < in.size(); ++k) {
      const Tensor& x = required_input(in, k, "data");
      PTQ_CHECK(x.dtype() == first.dtype(), ModelError, "input ", k, " has dtype ", dtype_name(x.dtype()),
                ", input 0 ", dtype_name(first.dtype()));
      od = broadcast_dims(od, x.dims());
    }
    out[0] = new_tensor(first.dtype(), od);
    dispatch_numeric(first.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, bool>) {
        PTQ_CHECK(false, UnsupportedError, "bool inputs");
      } else {
        T* y = out[0].mutable_data<T>();
        const T* x0 = first.data<T>();
        for_each_index(first.dims(), od, [&](int64_t i, int64_t j) { y[i] = x0[j]; });
        for (size_t k = 1; k < in.size(); ++k) {
          const T* x = in[k]->data<T>();
          for_each_index(in[k]->dims(), od, [&](int64_t i, int64_t j) {
            const T v = x[j];
            if constexpr (K == VOp::kMax) {
              if constexpr (std::is_floating_point_v<T>) y[i] = std::isnan(v) || v > y[i] ? v : y[i];
              else y[i] = v > y[i] ? v : y[i];
            } else if constexpr (K == VOp::kMin) {
              if constexpr (std::is_floating_point_v<T>) y[i] = std::isnan(v) || v < y[i] ? v : y[i];
              else y[i] = v < y[i] ? v : y[i];
            } else {
              y[i] = static_cast<T>(y[i] + v);
            }
          });
        }
        if constexpr (K == VOp::kMean) {
          PTQ_CHECK(std::is_floating_point_v<T>, UnsupportedError, "Mean of ", dtype_name(first.dtype()));
          for (size_t i = 0; i < out[0].numel(); ++i) y[i] = static_cast<T>(y[i] / static_cast<T>(in.size()));
        }
      }
    });
  }
};

}  // namespace

void register_variadic(KernelRegistry& r) {
  r.add("Max", make_kernel<Variadic<VOp::kMax>>);
  r.add("Min", make_kernel<Variadic<VOp::kMin>>);
  r.add("Sum", make_kernel<Variadic<VOp::kSum>>);
  r.add("Mean", make_kernel<Variadic<VOp::kMean>>);
}

}  // namespace ptq::runtime
