// QLinearConv and ConvInteger: exact integer accumulation (on centred values), float requantization.
#include <cmath>
#include <vector>

#include "conv_core.h"
#include "qlinear.h"

namespace ptq::runtime {
namespace {

// Below this bound every partial sum of the centred products is an integer a float holds exactly,
// so a float GEMM gives the exact int32 accumulator whatever its summation order.
constexpr double kFloatExact = 16777216.0;  // 2^24

// acc[n, m, p] = Σ (x − z_x)(w − z_w[m]) with the padding reading z_x (a centred 0). Runs a float
// convolution when the bound above allows it and a double one otherwise (exact below 2^53).
std::vector<int32_t> integer_conv(const KernelContext& ctx, const Tensor& X, int32_t zx,
                                  const Tensor& W, const std::vector<int32_t>& zw,
                                  const WindowAttrs& attrs, int64_t group, ConvGeo& g, Dims& od) {
  g = conv_geometry(attrs, group, X.dims(), W.dims(), od);
  PTQ_CHECK(zw.size() == 1 || static_cast<int64_t>(zw.size()) == g.m, ModelError,
            "w_zero_point has ", zw.size(), " values for ", g.m, " output channels");
  const int64_t per_m = static_cast<int64_t>(W.numel()) / std::max<int64_t>(g.m, 1);
  std::vector<double> xc(X.numel()), wc(W.numel());
  double xmax = 0, wsum_max = 0;
  dispatch_8bit(X.dtype(), "x", [&](auto tag) {
    using Q = decltype(tag);
    const Q* p = X.data<Q>();
    for (size_t i = 0; i < xc.size(); ++i) {
      xc[i] = static_cast<double>(static_cast<int32_t>(p[i]) - zx);
      xmax = std::max(xmax, std::abs(xc[i]));
    }
  });
  // Padding contributes centred zeros, so only real inputs matter for the bound.
  dispatch_8bit(W.dtype(), "w", [&](auto tag) {
    using Q = decltype(tag);
    const Q* p = W.data<Q>();
    for (int64_t m = 0; m < g.m; ++m) {
      const int32_t z = zw.size() == 1 ? zw[0] : zw[static_cast<size_t>(m)];
      double sum = 0;
      for (int64_t k = 0; k < per_m; ++k) {
        const size_t i = static_cast<size_t>(m * per_m + k);
        wc[i] = static_cast<double>(static_cast<int32_t>(p[i]) - z);
        sum += std::abs(wc[i]);
      }
      wsum_max = std::max(wsum_max, sum);
    }
  });
  const size_t ny = static_cast<size_t>(numel_of(od));
  std::vector<int32_t> acc(ny);
  if (xmax * wsum_max < kFloatExact) {
    std::vector<float> xf(xc.begin(), xc.end()), wf(wc.begin(), wc.end()), y(ny);
    conv_forward<float>(ctx, xf.data(), wf.data(), nullptr, g, y.data());
    for (size_t i = 0; i < ny; ++i) acc[i] = static_cast<int32_t>(y[i]);
  } else {
    std::vector<double> y(ny);
    conv_forward<double>(ctx, xc.data(), wc.data(), nullptr, g, y.data());
    for (size_t i = 0; i < ny; ++i) acc[i] = static_cast<int32_t>(y[i]);
  }
  return acc;
}

class QLinearConv : public Kernel {
 public:
  explicit QLinearConv(const KernelInit& init)
      : attrs_(WindowAttrs::from_node(init.node, false)), group_(init.node.attr_int("group", 1)) {
    PTQ_CHECK(group_ >= 1, ModelError, "group must be >= 1, got ", group_);
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "x");
    const QParam xq = scalar_qparam(in, 1, 2, "x");
    const Tensor& W = required_input(in, 3, "w");
    const std::vector<float> ws = scales(required_input(in, 4, "w_scale"), "w_scale");
    const Tensor* wzt = optional_input(in, 5);
    const std::vector<int32_t> wz = wzt ? zero_points(*wzt, "w_zero_point") : std::vector<int32_t>{0};
    const QParam yq = scalar_qparam(in, 6, 7, "y");
    const Tensor* B = optional_input(in, 8);
    ConvGeo g{};
    Dims od;
    std::vector<int32_t> acc = integer_conv(ctx, X, xq.zero, W, wz, attrs_, group_, g, od);
    PTQ_CHECK(ws.size() == 1 || static_cast<int64_t>(ws.size()) == g.m, ModelError,
              "w_scale has ", ws.size(), " values for ", g.m, " output channels");
    if (B) {
      PTQ_CHECK(B->dtype() == DType::kInt32 && static_cast<int64_t>(B->numel()) == g.m, ModelError,
                "B must be int32 with ", g.m, " elements");
    }
    // x_scale · w_scale[m] / y_scale in float32, in that order (ORT's ComputeOutputScale).
    std::vector<float> mult(static_cast<size_t>(g.m));
    for (size_t m = 0; m < mult.size(); ++m) mult[m] = xq.scale * ws[ws.size() == 1 ? 0 : m] / yq.scale;
    const int64_t P = g.ho * g.wo;
    out[0] = Tensor::empty(X.dtype(), od);
    dispatch_8bit(X.dtype(), "x", [&](auto tag) {
      using Q = decltype(tag);
      Q* y = out[0].mutable_data<Q>();
      for (size_t i = 0; i < acc.size(); ++i) {
        const size_t m = static_cast<size_t>(static_cast<int64_t>(i) / P % g.m);
        const int32_t a = acc[i] + (B ? B->data<int32_t>()[m] : 0);
        y[i] = requantize<Q>(static_cast<float>(a) * mult[m], yq.zero);
      }
    });
  }

 private:
  WindowAttrs attrs_;
  int64_t group_;
};

class ConvInteger : public Kernel {
 public:
  explicit ConvInteger(const KernelInit& init)
      : attrs_(WindowAttrs::from_node(init.node, false)), group_(init.node.attr_int("group", 1)) {
    PTQ_CHECK(group_ >= 1, ModelError, "group must be >= 1, got ", group_);
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "x");
    const Tensor& W = required_input(in, 1, "w");
    const Tensor* xz = optional_input(in, 2);
    const Tensor* wz = optional_input(in, 3);
    int32_t zx = 0;
    if (xz) {
      const std::vector<int32_t> v = zero_points(*xz, "x_zero_point");
      PTQ_CHECK(v.size() == 1, UnsupportedError, "x_zero_point with ", v.size(), " values");
      zx = v[0];
    }
    const std::vector<int32_t> zw = wz ? zero_points(*wz, "w_zero_point") : std::vector<int32_t>{0};
    ConvGeo g{};
    Dims od;
    std::vector<int32_t> acc = integer_conv(ctx, X, zx, W, zw, attrs_, group_, g, od);
    out[0] = Tensor::from_vector(od, acc);
  }

 private:
  WindowAttrs attrs_;
  int64_t group_;
};

}  // namespace

void register_qlinear_conv(KernelRegistry& r) {
  r.add("", "QLinearConv", 10, INT64_MAX, make_kernel<QLinearConv>);
  r.add("", "ConvInteger", 10, INT64_MAX, make_kernel<ConvInteger>);
}

}  // namespace ptq::runtime
