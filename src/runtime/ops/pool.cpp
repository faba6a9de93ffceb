// MaxPool / AveragePool (1-D and 2-D, ceil_mode, dilations, count_include_pad) and global pools.
#include <algorithm>
#include <limits>
#include <vector>

#include "common.h"
#include "fast_kernels.h"
#include "phase_planes.h"
#include "spatial.h"

namespace ptq::runtime {
namespace {

// One channel of MaxPool from its phase planes; std::max's NaN rule (a NaN tap is skipped).
void max_pool_plane(const float* buf, const PlaneGeo& g, float* y) {
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    float* yr = y + oy * g.wo;
    for (int64_t ox0 = 0; ox0 < g.wo; ox0 += kWindowBlock) {
      float acc[kWindowBlock];
      std::fill(acc, acc + kWindowBlock, -std::numeric_limits<float>::infinity());
      for (int64_t ky = 0; ky < g.kh; ++ky) {
        const int64_t r = oy * g.sh + ky * g.dh;
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const float* p = buf + g.offset(r, kx) + ox0;
          for (int64_t j = 0; j < kWindowBlock; ++j) acc[j] = acc[j] < p[j] ? p[j] : acc[j];
        }
      }
      const int64_t n = std::min(kWindowBlock, g.wo - ox0);
      std::copy(acc, acc + n, yr + ox0);
    }
  }
}

template <bool kMax>
class Pool : public Kernel {
 public:
  explicit Pool(const KernelInit& init)
      : attrs_(WindowAttrs::from_node(init.node, init.opset >= 10)),
        count_include_pad_(init.node.attr_int("count_include_pad", 0) != 0) {
    PTQ_CHECK(!attrs_.kernel.empty(), ModelError, "kernel_shape is required");
    PTQ_CHECK(!(init.node.outputs.size() > 1 && init.node.outputs[1] != ir::kNone),
              UnsupportedError, "MaxPool Indices output is not supported");
  }

  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = float_input(in, 0, "X");
    const size_t r = X.rank();
    PTQ_CHECK(r == 3 || r == 4, UnsupportedError, "pooling over input rank ", r,
              " (only 1-D and 2-D are supported)");
    std::vector<int64_t> sp(X.dims().begin() + 2, X.dims().end());
    const Window w = resolve_window(attrs_, sp, attrs_.kernel);
    // Map 1-D onto 2-D with a unit H axis.
    const bool one = r == 3;
    const int64_t H = one ? 1 : sp[0], W = sp.back(), Ho = one ? 1 : w.out[0], Wo = w.out.back();
    const int64_t kh = one ? 1 : w.kernel[0], kw = w.kernel.back();
    const int64_t sh = one ? 1 : w.stride[0], sw = w.stride.back();
    const int64_t dh = one ? 1 : w.dilation[0], dw = w.dilation.back();
    const int64_t pt = one ? 0 : w.pad_begin[0], pl = w.pad_begin.back();
    const int64_t pb = one ? 0 : w.pad_end[0], pr = w.pad_end.back();
    Dims od{X.dims()[0], X.dims()[1]};
    for (int64_t o : w.out) od.push_back(o);
    out[0] = Tensor::empty(DType::kFloat, od);
    const float* x = X.data<float>();
    float* y = out[0].mutable_data<float>();
    const bool cip = count_include_pad_;
    if (out[0].numel() == 0) return;  // nothing to compute (and no planes of negative size)
    if constexpr (kMax) {
      // Max over -inf-padded stride-phase planes: no bounds checks, kWindowBlock columns at a
      // time. max ignores the -inf padding and is order-free, so the result is the same.
      // The AVX2 kernel gives the same bits (max is exact), so it needs no tolerance.
      const PlaneGeo g{H, W, Ho, Wo, kh, kw, sh, sw, dh, dw, pt, pl};
      const bool fast = fast::available();
      const bool direct = fast && fast::max_s2_direct_supported(g);
      parallel_blocks(ctx, od[0] * od[1], Ho * Wo * kh * kw, [&](int64_t i) {
        if (direct) return fast::max_s2_direct(x + i * H * W, g, y + i * Ho * Wo);
        thread_local std::vector<float> planes;
        build_phase_planes(x + i * H * W, g, -std::numeric_limits<float>::infinity(), planes);
        float* yc = y + i * Ho * Wo;
        if (fast) fast::max_planes(planes.data(), g, yc);
        else max_pool_plane(planes.data(), g, yc);
      });
      return;
    }
    parallel_blocks(ctx, od[0] * od[1], Ho * Wo * kh * kw, [&](int64_t i) {
      const float* xc = x + i * H * W;
      float* yc = y + i * Ho * Wo;
      for (int64_t oy = 0; oy < Ho; ++oy) {
        for (int64_t ox = 0; ox < Wo; ++ox) {
          float acc = kMax ? -std::numeric_limits<float>::infinity() : 0.f;
          int64_t count = 0;
          for (int64_t ky = 0; ky < kh; ++ky) {
            const int64_t iy = oy * sh - pt + ky * dh;
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t ix = ox * sw - pl + kx * dw;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
                // Padding counts toward the average only inside the declared pads.
                if (!kMax && cip && iy < H + pb && ix < W + pr) ++count;
                continue;
              }
              const float v = xc[iy * W + ix];
              if constexpr (kMax) acc = std::max(acc, v);
              else acc += v;
              ++count;
            }
          }
          yc[oy * Wo + ox] = kMax ? acc : (count ? acc / static_cast<float>(count) : 0.f);
        }
      }
    });
  }

 private:
  WindowAttrs attrs_;
  bool count_include_pad_;
};

template <bool kMax>
class GlobalPool : public Kernel {
 public:
  explicit GlobalPool(const KernelInit&) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = float_input(in, 0, "X");
    PTQ_CHECK(X.rank() >= 3, ModelError, "global pooling needs rank >= 3, got ", X.rank());
    Dims od{X.dims()[0], X.dims()[1]};
    int64_t inner = 1;
    for (size_t d = 2; d < X.rank(); ++d) {
      od.push_back(1);
      inner *= X.dims()[d];
    }
    out[0] = Tensor::empty(DType::kFloat, od);
    const float* x = X.data<float>();
    float* y = out[0].mutable_data<float>();
    parallel_blocks(ctx, od[0] * od[1], inner, [&](int64_t i) {
      const float* p = x + i * inner;
      if constexpr (kMax) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < inner; ++j) m = std::max(m, p[j]);
        y[i] = m;
      } else {
        float s = 0.f;
        for (int64_t j = 0; j < inner; ++j) s += p[j];
        y[i] = s / static_cast<float>(inner);
      }
    });
  }
};

}  // namespace

void register_pool(KernelRegistry& r) {
  r.add("MaxPool", make_kernel<Pool<true>>);
  r.add("AveragePool", make_kernel<Pool<false>>);
  r.add("GlobalMaxPool", make_kernel<GlobalPool<true>>);
  r.add("GlobalAveragePool", make_kernel<GlobalPool<false>>);
}

}  // namespace ptq::runtime
