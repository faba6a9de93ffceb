// ConvTranspose (1-D and 2-D, groups, pads/strides/dilations/output_padding/output_shape/auto_pad):
// a GEMM per group (W^T · X gives every input pixel's kernel-sized contribution), then col2im.
#include <Eigen/Core>
#include <algorithm>

#include "common.h"
#include "eigen_types.h"
#include "spatial.h"

namespace ptq::runtime {
namespace {

// Output channels per task: fixed by the shape alone, so each element's arithmetic (and thus
// the result) is the same for any thread count.
constexpr int64_t kTransposeChannelBlock = 16;
// The GEMM's result (kernel-sized contributions of a tile of input pixels) stays this small.
constexpr int64_t kColFloats = int64_t{1} << 20;

// Resolved 2-D geometry (1-D maps onto H = 1): input h×w, output ho×wo, pt/pl the leading pads.
struct Geo {
  int64_t n, c, h, w, m, kh, kw, ho, wo, sh, sw, dh, dw, pt, pl, group;
};

class ConvTranspose : public Kernel {
 public:
  explicit ConvTranspose(const KernelInit& init)
      : attrs_(WindowAttrs::from_node(init.node, false)),
        group_(init.node.attr_int("group", 1)),
        output_padding_(init.node.attr_ints("output_padding")),
        output_shape_(init.node.attr_ints("output_shape")) {
    PTQ_CHECK(group_ >= 1, ModelError, "group must be >= 1, got ", group_);
    for (int64_t p : output_padding_) PTQ_CHECK(p >= 0, ModelError, "output_padding must be non-negative");
    for (int64_t s : output_shape_) PTQ_CHECK(s >= 0, ModelError, "output_shape must be non-negative");
  }

  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = float_input(in, 0, "X");
    const Tensor& W = float_input(in, 1, "W");
    const Tensor* B = optional_input(in, 2);
    Dims od;
    const Geo g = geometry(X.dims(), W.dims(), od);
    if (B) {
      PTQ_CHECK(B->dtype() == DType::kFloat && B->numel() == static_cast<size_t>(g.m), ModelError,
                "B must be float with ", g.m, " elements");
    }
    out[0] = new_tensor(DType::kFloat, od);
    forward(ctx, X.data<float>(), W.data<float>(), B ? B->data<float>() : nullptr, g,
            out[0].mutable_data<float>());
  }

 private:
  // Output size and leading pad per spatial axis, as the ONNX reference computes them for
  // explicit pads and auto_pad SAME_*; with output_shape, as ONNX Runtime does (the runtime that
  // executes the emitted model): total padding max(0, natural - wanted), the odd pixel at the
  // head for SAME_UPPER and at the tail otherwise.
  Geo geometry(const Dims& xd, const Dims& wd, Dims& od) const {
    const size_t r = xd.size();
    PTQ_CHECK(r == 3 || r == 4, UnsupportedError, "ConvTranspose with input rank ", r,
              " (only 1-D and 2-D are supported)");
    PTQ_CHECK(wd.size() == r, ModelError, "W rank ", wd.size(), " differs from X rank ", r);
    const int64_t n = xd[0], c = xd[1];
    PTQ_CHECK(wd[0] == c, ModelError, "W has ", wd[0], " input channels, X has ", c);
    PTQ_CHECK(c % group_ == 0, ModelError, "input channels C=", c, " must be divisible by group=", group_);
    const int64_t m = checked_mul(wd[1], group_, "output channels");
    const size_t sp = r - 2;
    std::vector<int64_t> ks(wd.begin() + 2, wd.end());
    PTQ_CHECK(attrs_.kernel.empty() || attrs_.kernel == ks, ModelError,
              "kernel_shape does not match W's spatial dims ", dims_str(ks));
    auto get = [&](const std::vector<int64_t>& v, size_t i, int64_t fallback, const char* what) {
      if (v.empty()) return fallback;
      PTQ_CHECK(v.size() == sp, ModelError, what, " has ", v.size(), " values for ", sp, " spatial axes");
      return v[i];
    };
    PTQ_CHECK(attrs_.pads.empty() || attrs_.pads.size() == 2 * sp, ModelError, "pads has ",
              attrs_.pads.size(), " values for ", sp, " spatial axes");
    PTQ_CHECK(output_shape_.empty() || output_shape_.size() == sp || output_shape_.size() == sp + 2,
              ModelError, "output_shape has ", output_shape_.size(), " values for ", sp, " spatial axes");
    const bool same = attrs_.auto_pad == "SAME_UPPER" || attrs_.auto_pad == "SAME_LOWER";
    const bool upper = attrs_.auto_pad == "SAME_UPPER";
    std::vector<int64_t> out(sp), head(sp), stride(sp), dil(sp);
    for (size_t i = 0; i < sp; ++i) {
      stride[i] = get(attrs_.strides, i, 1, "strides");
      dil[i] = get(attrs_.dilations, i, 1, "dilations");
      const int64_t adj = get(output_padding_, i, 0, "output_padding");
      // (in - 1)·stride + output_padding + (kernel - 1)·dilation + 1, overflow-checked.
      const int64_t natural = checked_add(
          checked_add(checked_mul(std::max<int64_t>(xd[2 + i] - 1, 0), stride[i], "strides"), adj),
          checked_add(checked_mul(ks[i] - 1, dil[i], "dilations"), 1));
      if (!output_shape_.empty()) {
        out[i] = output_shape_[output_shape_.size() == sp ? i : i + 2];
        const int64_t total = std::max<int64_t>(0, natural - out[i]);
        head[i] = upper ? total - total / 2 : total / 2;
      } else if (same && attrs_.pads.empty()) {
        out[i] = checked_mul(xd[2 + i], stride[i], "strides");
        const int64_t total = natural - out[i];
        head[i] = upper ? total / 2 : total - total / 2;
      } else {
        const int64_t pb = attrs_.pads.empty() ? 0 : attrs_.pads[i];
        const int64_t pe = attrs_.pads.empty() ? 0 : attrs_.pads[i + sp];
        out[i] = natural - pb - pe;
        head[i] = pb;
      }
      PTQ_CHECK(out[i] >= 0, ModelError, "pads leave a negative output size on spatial axis ", i);
    }
    od = Dims{n, m};
    for (int64_t o : out) od.push_back(o);
    if (sp == 1)
      return Geo{n, c, 1, xd[2], m, 1, ks[0], 1, out[0], 1, stride[0], 1, dil[0], 0, head[0], group_};
    return Geo{n,       c,         xd[2],   xd[3],   m,       ks[0],   ks[1],  out[0],
               out[1],  stride[0], stride[1], dil[0], dil[1], head[0], head[1], group_};
  }

  // y = bias, then for every group: col[mg·kh·kw, pixels] = W_gᵀ · X_g, scattered into y (col2im),
  // over tiles of input pixels that keep col within kColFloats. Each task owns a block of output
  // channels of one image and group, so no two tasks write the same element, and every element
  // sums its contributions in an order fixed by the shape (tile, ky, kx, pixel).
  static void forward(const KernelContext& ctx, const float* x, const float* w, const float* b,
                      const Geo& g, float* y) {
    const int64_t cg = g.c / g.group, mg = g.m / g.group, HW = g.h * g.w, P = g.ho * g.wo;
    const int64_t kk = g.kh * g.kw;
    if (g.n == 0 || g.m == 0 || P == 0) return;
    const int64_t mblocks = (mg + kTransposeChannelBlock - 1) / kTransposeChannelBlock;
    const int64_t tile = std::clamp<int64_t>(kColFloats / std::max<int64_t>(std::min(kTransposeChannelBlock, mg) * kk, 1),
                                             1, std::max<int64_t>(HW, 1));
    ctx.parallel_for(static_cast<size_t>(g.n * g.group * mblocks), [&](size_t item) {
      const int64_t i = static_cast<int64_t>(item);
      const int64_t mb = i % mblocks, gi = i / mblocks % g.group, ni = i / mblocks / g.group;
      const int64_t m0 = mb * kTransposeChannelBlock, rows = std::min(kTransposeChannelBlock, mg - m0);
      float* yb = y + (ni * g.m + gi * mg + m0) * P;
      for (int64_t oc = 0; oc < rows; ++oc)
        std::fill(yb + oc * P, yb + (oc + 1) * P, b ? b[gi * mg + m0 + oc] : 0.f);
      if (cg == 0 || HW == 0) return;
      // W_g is [cg, mg·kk] row-major; this block's columns are [m0·kk, (m0 + rows)·kk).
      using Strided = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
      const Strided wg(w + gi * cg * mg * kk + m0 * kk, cg, rows * kk, Eigen::OuterStride<>(mg * kk));
      const float* xg = x + (ni * g.c + gi * cg) * HW;
      thread_local RowMat col;
      for (int64_t p0 = 0; p0 < HW; p0 += tile) {
        const int64_t cols = std::min(tile, HW - p0);
        col.noalias() = wg.transpose() * Strided(xg + p0, cg, cols, Eigen::OuterStride<>(HW));
        for (int64_t oc = 0; oc < rows; ++oc) {
          float* yc = yb + oc * P;
          for (int64_t ky = 0; ky < g.kh; ++ky) {
            for (int64_t kx = 0; kx < g.kw; ++kx) {
              const float* cr = col.data() + ((oc * g.kh + ky) * g.kw + kx) * cols;  // cr[p - p0]: pixel p
              // Input column ix lands on output column ix·sw + off; [lo, hi] land inside.
              const int64_t off = kx * g.dw - g.pl;
              const int64_t lo = off >= 0 ? 0 : (-off + g.sw - 1) / g.sw;
              const int64_t hi = std::min(g.w - 1, g.wo - 1 - off < 0 ? -1 : (g.wo - 1 - off) / g.sw);
              if (lo > hi) continue;
              for (int64_t p = p0; p < p0 + cols;) {  // one input row segment at a time
                const int64_t iy = p / g.w, ix0 = p % g.w, n = std::min(g.w - ix0, p0 + cols - p);
                const int64_t oy = iy * g.sh - g.pt + ky * g.dh;
                if (oy >= 0 && oy < g.ho) {
                  float* yr = yc + oy * g.wo;
                  const int64_t base = p - p0 - ix0;  // cr[base + ix]: pixel (iy, ix)
                  for (int64_t ix = std::max(ix0, lo), e = std::min(ix0 + n - 1, hi); ix <= e; ++ix)
                    yr[ix * g.sw + off] += cr[base + ix];
                }
                p += n;
              }
            }
          }
        }
      }
    });
  }

  WindowAttrs attrs_;
  int64_t group_;
  std::vector<int64_t> output_padding_, output_shape_;
};

}  // namespace

void register_conv_transpose(KernelRegistry& r) { r.add("ConvTranspose", make_kernel<ConvTranspose>); }

}  // namespace ptq::runtime
