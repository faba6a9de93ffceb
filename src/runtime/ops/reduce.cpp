// ReduceMean/Sum/Max/Min/Prod/L2/SumSquare: axes are an attribute before opset 18 (13 for
// ReduceSum) and an optional input after; keepdims default 1; noop_with_empty_axes.
#include <algorithm>
#include <cmath>
#include <limits>

#include "common.h"

namespace ptq::runtime {
namespace {

enum class R { kMean, kSum, kMax, kMin, kProd, kL2, kSumSquare };

template <R K>
class Reduce : public Kernel {
 public:
  Reduce(const KernelInit& init, int64_t axes_input_since)
      : axes_from_input_(init.opset >= axes_input_since),
        keepdims_(init.node.attr_int("keepdims", 1) != 0),
        noop_empty_(init.node.attr_int("noop_with_empty_axes", 0) != 0),
        axes_(init.node.attr_ints("axes")) {
    PTQ_CHECK(!(axes_from_input_ && init.node.attr("axes")), ModelError,
              "axes is an input at opset ", init.opset, ", not an attribute");
  }

  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = float_input(in, 0, "data");
    const int64_t r = static_cast<int64_t>(X.rank());
    std::vector<int64_t> axes = axes_;
    if (axes_from_input_)
      if (const Tensor* a = optional_input(in, 1)) axes = int_values(*a, "axes");
    if (axes.empty() && noop_empty_ && axes_from_input_) {
      out[0] = X;
      return;
    }
    std::vector<bool> red(static_cast<size_t>(r), axes.empty());
    for (int64_t a : axes) red[static_cast<size_t>(normalize_axis(a, r))] = true;
    Dims keep_dims;  // output dims with reduced axes as 1
    Dims od;
    for (int64_t i = 0; i < r; ++i) {
      const int64_t d = red[static_cast<size_t>(i)] ? 1 : X.dims()[static_cast<size_t>(i)];
      keep_dims.push_back(d);
      if (!red[static_cast<size_t>(i)] || keepdims_) od.push_back(d);
    }
    const int64_t on = numel_of(keep_dims);
    const int64_t count = on ? static_cast<int64_t>(X.numel()) / on : 0;
    double init = 0;
    if constexpr (K == R::kMax) init = -std::numeric_limits<double>::infinity();
    if constexpr (K == R::kMin) init = std::numeric_limits<double>::infinity();
    if constexpr (K == R::kProd) init = 1;
    std::vector<double> acc(static_cast<size_t>(on), init);
    // Walk the input in order; each element lands in the output slot with reduced axes zeroed.
    const std::vector<int64_t> os = broadcast_strides(keep_dims, X.dims());
    const float* x = X.data<float>();
    std::vector<int64_t> idx(static_cast<size_t>(r), 0);
    int64_t o = 0;
    for (size_t i = 0; i < X.numel(); ++i) {
      const double v = x[i];
      double& a = acc[static_cast<size_t>(o)];
      if constexpr (K == R::kMax) a = std::max(a, v);
      else if constexpr (K == R::kMin) a = std::min(a, v);
      else if constexpr (K == R::kProd) a *= v;
      else if constexpr (K == R::kL2 || K == R::kSumSquare) a += v * v;
      else a += v;
      for (int64_t d = r; d-- > 0;) {
        o += os[static_cast<size_t>(d)];
        if (++idx[static_cast<size_t>(d)] < X.dims()[static_cast<size_t>(d)]) break;
        o -= os[static_cast<size_t>(d)] * X.dims()[static_cast<size_t>(d)];
        idx[static_cast<size_t>(d)] = 0;
      }
    }
    out[0] = new_tensor(DType::kFloat, od);
    float* y = out[0].mutable_data<float>();
    for (int64_t j = 0; j < on; ++j) {
      double v = acc[static_cast<size_t>(j)];
      if constexpr (K == R::kMean) v /= static_cast<double>(count);
      if constexpr (K == R::kL2) v = std::sqrt(v);
      y[j] = static_cast<float>(v);
    }
  }

 private:
  bool axes_from_input_, keepdims_, noop_empty_;
  std::vector<int64_t> axes_;
};

template <R K, int64_t kSince>
std::unique_ptr<Kernel> make_reduce(const KernelInit& init) {
  return std::make_unique<Reduce<K>>(init, kSince);
}

}  // namespace

void register_reduce(KernelRegistry& r) {
  r.add("ReduceMean", make_reduce<R::kMean, 18>);
  r.add("ReduceSum", make_reduce<R::kSum, 13>);
  r.add("ReduceMax", make_reduce<R::kMax, 18>);
  r.add("ReduceMin", make_reduce<R::kMin, 18>);
  r.add("ReduceProd", make_reduce<R::kProd, 18>);
  r.add("ReduceL2", make_reduce<R::kL2, 18>);
  r.add("ReduceSumSquare", make_reduce<R::kSumSquare, 18>);
}

}  // namespace ptq::runtime
