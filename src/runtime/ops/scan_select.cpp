// CumSum (exclusive, reverse), Trilu (upper/lower with diagonal offset k), TopK (largest or smallest).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "common.h"

namespace ptq::runtime {
namespace {

// outer x len x inner view of dims around `axis`.
void split_at(const Dims& d, int64_t axis, int64_t& outer, int64_t& len, int64_t& inner) {
  outer = numel_of(Dims(d.begin(), d.begin() + axis));
  len = d[static_cast<size_t>(axis)];
  inner = numel_of(Dims(d.begin() + axis + 1, d.end()));
}

class CumSum : public Kernel {
 public:
  explicit CumSum(const KernelInit& init)
      : exclusive_(init.node.attr_int("exclusive", 0) != 0), reverse_(init.node.attr_int("reverse", 0) != 0) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "x");
    const int64_t axis = normalize_axis(static_cast<int64_t>(scalar_value(required_input(in, 1, "axis"), "axis")),
                                        static_cast<int64_t>(X.rank()));
    int64_t outer, len, inner;
    split_at(X.dims(), axis, outer, len, inner);
    out[0] = new_tensor(X.dtype(), X.dims());
    dispatch_numeric(X.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!std::is_same_v<T, bool>) {
        const T* x = X.data<T>();
        T* y = out[0].mutable_data<T>();
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t j = 0; j < inner; ++j) {
            T acc = T(0);
            for (int64_t s = 0; s < len; ++s) {
              const int64_t k = reverse_ ? len - 1 - s : s;
              const int64_t i = (o * len + k) * inner + j;
              if (exclusive_) {
                y[i] = acc;
                acc = static_cast<T>(acc + x[i]);
              } else {
                acc = static_cast<T>(acc + x[i]);
                y[i] = acc;
              }
            }
          }
      } else {
        PTQ_CHECK(false, UnsupportedError, "CumSum of bool");
      }
    });
  }

 private:
  bool exclusive_, reverse_;
};

class Trilu : public Kernel {
 public:
  explicit Trilu(const KernelInit& init) : upper_(init.node.attr_int("upper", 1) != 0) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "input");
    PTQ_CHECK(X.rank() >= 2, ModelError, "input must have rank >= 2");
    const int64_t k = optional_input(in, 1) ? static_cast<int64_t>(scalar_value(*in[1], "k")) : 0;
    const int64_t rows = X.dims()[X.rank() - 2], cols = X.dims().back();
    const int64_t mats = rows != 0 && cols != 0 ? static_cast<int64_t>(X.numel()) / (rows * cols) : 0;
    const size_t es = static_cast<size_t>(dtype_bits(X.dtype())) / 8;
    PTQ_CHECK(!X.is_string() && es >= 1, UnsupportedError, "dtype ", dtype_name(X.dtype()));
    out[0] = new_zeros(X.dtype(), X.dims());
    const auto* x = static_cast<const char*>(X.raw());
    auto* y = static_cast<char*>(out[0].mutable_raw());
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const bool keep = upper_ ? j - i >= k : j - i <= k;
          const int64_t e = (m * rows + i) * cols + j;
          if (keep) std::copy(x + e * es, x + (e + 1) * es, y + e * es);
        }
  }

 private:
  bool upper_;
};

// TopK: K from an attribute before opset 10, from input 1 after; ties keep the lower index.
class TopK : public Kernel {
 public:
  explicit TopK(const KernelInit& init)
      : legacy_(init.opset < 10), k_attr_(init.node.attr_int("k", -1)), axis_(init.node.attr_int("axis", -1)),
        largest_(init.node.attr_int("largest", 1) != 0) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "X");
    const int64_t k = legacy_ ? k_attr_ : int_values(required_input(in, 1, "K"), "K").at(0);
    const int64_t axis = normalize_axis(axis_, static_cast<int64_t>(X.rank()));
    int64_t outer, len, inner;
    split_at(X.dims(), axis, outer, len, inner);
    PTQ_CHECK(k >= 0 && k <= len, ModelError, "K ", k, " outside [0, ", len, "]");
    Dims od = X.dims();
    od[static_cast<size_t>(axis)] = k;
    out[0] = new_tensor(X.dtype(), od);
    out[1] = new_tensor(DType::kInt64, od);
    dispatch_numeric(X.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* x = X.data<T>();
      T* y = out[0].mutable_data<T>();
      int64_t* yi = out[1].mutable_data<int64_t>();
      std::vector<int64_t> idx(static_cast<size_t>(len));
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < inner; ++j) {
          const T* xs = x + o * len * inner + j;
          std::iota(idx.begin(), idx.end(), 0);
          // NaN sorts as the largest value, as ORT does.
          auto before = [&](int64_t a, int64_t b) {
            const T va = xs[a * inner], vb = xs[b * inner];
            if constexpr (std::is_floating_point_v<T>) {
              if (std::isnan(va) || std::isnan(vb)) {
                if (std::isnan(va) && std::isnan(vb)) return a < b;
                return largest_ ? std::isnan(va) : std::isnan(vb);
              }
            }
            if (va != vb) return largest_ ? va > vb : va < vb;
            return a < b;
          };
          std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), before);
          for (int64_t t = 0; t < k; ++t) {
            const int64_t oi = (o * k + t) * inner + j;
            y[oi] = xs[idx[static_cast<size_t>(t)] * inner];
            yi[oi] = idx[static_cast<size_t>(t)];
          }
        }
    });
  }

 private:
  bool legacy_;
  int64_t k_attr_, axis_;
  bool largest_;
};

}  // namespace

void register_scan_select(KernelRegistry& r) {
  r.add("CumSum", make_kernel<CumSum>);
  r.add("Trilu", make_kernel<Trilu>);
  r.add("TopK", make_kernel<TopK>);
}

}  // namespace ptq::runtime
