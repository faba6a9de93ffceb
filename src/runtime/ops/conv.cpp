// Conv (1-D and 2-D, groups, pads/strides/dilations/auto_pad): im2col + GEMM, direct depthwise.
#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <optional>

#include "common.h"
#include "conv_core.h"
#include "eigen_types.h"
#include "fast_kernels.h"
#include "phase_planes.h"
#include "shared_packs.h"
#include "spatial.h"

namespace ptq::runtime {
namespace {

template <typename T>
using ConstStrided = Eigen::Map<const RowMatOf<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using Strided = Eigen::Map<RowMatOf<T>, 0, Eigen::OuterStride<>>;

// Output columns per GEMM tile: keeps the im2col buffer in L2 and fixes the work split
// independently of the thread count (each tile is computed the same way by whichever thread).
constexpr int64_t kTile = 256;
// Output channels per GEMM when an image has fewer than four tiles.
constexpr int64_t kChannelBlock = 64;

// Fills col[K, cols] for output positions [p0, p0 + cols) of channel block starting at `x`.
// Works one output row at a time: the columns whose input lies inside the image are found once
// per (row, tap) and copied, the rest are zero, so the inner loops have no bounds checks.
template <typename T>
void im2col(const T* x, const ConvGeo& g, int64_t cg, int64_t p0, int64_t cols, T* col) {
  for (int64_t c = 0; c < cg; ++c) {
    const T* xc = x + c * g.h * g.w;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        T* row = col + ((c * g.kh + ky) * g.kw + kx) * cols;
        // Output column ox reads input column ox·sw + off; [lo, hi] are the ones inside.
        const int64_t off = kx * g.dw - g.pl;
        const int64_t lo = off >= 0 ? 0 : (-off + g.sw - 1) / g.sw;
        const int64_t hi = g.w - 1 - off < 0 ? -1 : (g.w - 1 - off) / g.sw;
        int64_t oy = p0 / g.wo, ox = p0 % g.wo;
        for (int64_t j = 0; j < cols; ox = 0, ++oy) {
          const int64_t n = std::min(g.wo - ox, cols - j);
          T* dst = row + j - ox;  // dst[ox'] is output column ox' of this row
          const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
          const int64_t a = std::max(ox, lo), b = std::min(ox + n - 1, hi);
          if (iy < 0 || iy >= g.h || a > b) {
            std::fill(dst + ox, dst + ox + n, T(0));
          } else {
            std::fill(dst + ox, dst + a, T(0));
            const T* xr = xc + iy * g.w + off;
            if (g.sw == 1) {
              std::memcpy(dst + a, xr + a, static_cast<size_t>(b - a + 1) * sizeof(T));
            } else {
              for (int64_t o = a; o <= b; ++o) dst[o] = xr[o * g.sw];
            }
            std::fill(dst + b + 1, dst + ox + n, T(0));
          }
          j += n;
        }
      }
    }
  }
}

// Depthwise (one input and one output channel per group): the channel is copied once into
// zero-padded stride-phase planes (phase_planes.h), then each block of kWindowBlock output
// columns sums its kh·kw taps in a register-sized accumulator with no bounds checks. Every pixel
// sums its taps in (ky, kx) order starting from 0 and adds the bias last; taps in the padding
// add w·0, which leaves the sum unchanged.
// One image plane's window geometry (the window kernels' view of a Conv).
PlaneGeo plane_geo(const ConvGeo& g) {
  return PlaneGeo{g.h, g.w, g.ho, g.wo, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl};
}

template <typename T>
void depthwise(const T* x, const T* w, T bias, const ConvGeo& cg, T* y) {
  const PlaneGeo g = plane_geo(cg);
  thread_local std::vector<T> planes;
  build_phase_planes(x, g, T(0), planes);
  const T* buf = planes.data();
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    T* yr = y + oy * g.wo;
    for (int64_t ox0 = 0; ox0 < g.wo; ox0 += kWindowBlock) {
      T acc[kWindowBlock] = {};
      for (int64_t ky = 0; ky < g.kh; ++ky) {
        const int64_t r = oy * g.sh + ky * g.dh;
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const T wv = w[ky * g.kw + kx];
          const T* p = buf + g.offset(r, kx) + ox0;
          for (int64_t j = 0; j < kWindowBlock; ++j) acc[j] += wv * p[j];
        }
      }
      const int64_t n = std::min(kWindowBlock, g.wo - ox0);
      for (int64_t j = 0; j < n; ++j) yr[ox0 + j] = acc[j] + bias;
    }
  }
}

// Fast path: B tiles (im2col or input columns) of at most this many floats stay in L2.
constexpr int64_t kBTileFloats = 64 * 1024;
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t ceil_to(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

class Conv : public Kernel {
 public:
  explicit Conv(const KernelInit& init)
      : attrs_(WindowAttrs::from_node(init.node, false)), group_(init.node.attr_int("group", 1)) {
    PTQ_CHECK(group_ >= 1, ModelError, "group must be >= 1, got ", group_);
    // A constant W is packed for the fast GEMM once here, not on every run.
    if (fast::cpu_supported() && init.node.inputs.size() > 1 && init.node.inputs[1] != ir::kNone) {
      const Tensor* w = init.graph.constant(init.node.inputs[1]);
      if (w && w->dtype() == DType::kFloat && w->rank() >= 3 && w->dims()[0] > 0 &&
          w->dims()[0] % group_ == 0 && !(w->dims()[1] == 1 && w->dims()[0] == group_)) {
        w_pinned_ = *w;  // shares the storage: the address below stays W's while we live
        packed_ = shared_pack(*w, group_, [&] { return pack_conv_weights(w->data<float>(), w->dims(), group_); });
      }
    }
  }

  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    Dims od;
    const ConvGeo g = geometry(in, od);
    out[0] = Tensor::empty(DType::kFloat, od);
    compute(ctx, in, g, out[0].mutable_data<float>(), out[0].numel());
  }

  bool supports_run_into() const override { return true; }
  std::optional<Dims> run_into_dims(const std::vector<const Tensor*>& in) const override {
    if (in.size() < 2 || !in[0] || !in[1] || in[0]->dtype() != DType::kFloat || in[1]->dtype() != DType::kFloat)
      return std::nullopt;
    Dims od;
    geometry(in, od);
    return od;
  }
  void run_into(const KernelContext& ctx, const std::vector<const Tensor*>& in, float* y) override {
    Dims od;
    const ConvGeo g = geometry(in, od);
    compute(ctx, in, g, y, checked_numel(od));
  }

  // The geometry of run()'s output (dims in od), with the inputs checked.
  ConvGeo geometry(const std::vector<const Tensor*>& in, Dims& od) const {
    const Tensor& X = float_input(in, 0, "X");
    const Tensor& W = float_input(in, 1, "W");
    const Tensor* B = optional_input(in, 2);
    const ConvGeo g = conv_geometry(attrs_, group_, X.dims(), W.dims(), od);
    if (B) {
      PTQ_CHECK(B->dtype() == DType::kFloat && B->numel() == static_cast<size_t>(g.m), ModelError,
                "B must be float with ", g.m, " elements");
    }
    return g;
  }

  // The output (numel floats) written to y.
  void compute(const KernelContext& ctx, const std::vector<const Tensor*>& in, const ConvGeo& g, float* y,
               size_t numel) const {
    const Tensor& X = *in[0];
    const Tensor& W = *in[1];
    const Tensor* B = optional_input(in, 2);
    const float* b = B ? B->data<float>() : nullptr;
    if (fast::available()) {
      const bool pinned = packed_ && W.data<float>() == w_pinned_.data<float>() && W.dims() == w_pinned_.dims();
      conv_forward_fast(ctx, X.data<float>(), W.data<float>(), pinned ? packed_->data() : nullptr, b, g, y,
                        act_ ? &*act_ : nullptr);
      return;
    }
    conv_forward<float>(ctx, X.data<float>(), W.data<float>(), b, g, y);
    if (act_) {
      for (size_t i = 0; i < numel; ++i) y[i] = (*act_)(y[i]);
    }
  }

  bool fuse_activation(const Activation& a) override {
    if (act_) return false;  // two in a row do not compose into one min/max pair
    act_ = a;
    return true;
  }

  bool fuse_input_pads(const std::vector<int64_t>& pads) override {
    if (attrs_.auto_pad != "NOTSET") return false;
    if (attrs_.pads.empty()) attrs_.pads.assign(pads.size(), 0);
    if (attrs_.pads.size() != pads.size()) return false;
    for (size_t i = 0; i < pads.size(); ++i) attrs_.pads[i] += pads[i];
    return true;
  }

 private:
  std::optional<Activation> act_;
  WindowAttrs attrs_;
  int64_t group_;
  Tensor w_pinned_;
  SharedPack packed_;  // pack_conv_weights(W), shared with other kernels over the same W
};

}  // namespace

ConvGeo conv_geometry(const WindowAttrs& attrs, int64_t group, const Dims& xd, const Dims& wd,
                      Dims& od) {
  const size_t r = xd.size();
  PTQ_CHECK(r == 3 || r == 4, UnsupportedError, "Conv with input rank ", r,
            " (only 1-D and 2-D convolutions are supported)");
  PTQ_CHECK(wd.size() == r, ModelError, "W rank ", wd.size(), " differs from X rank ", r);
  const int64_t n = xd[0], c = xd[1], m = wd[0];
  PTQ_CHECK(c % group == 0 && m % group == 0, ModelError, "channels C=", c, " and M=", m,
            " must be divisible by group=", group);
  PTQ_CHECK(wd[1] == c / group, ModelError, "W has ", wd[1], " input channels per group, expected ",
            c / group);
  std::vector<int64_t> sp(xd.begin() + 2, xd.end());
  std::vector<int64_t> ks(wd.begin() + 2, wd.end());
  PTQ_CHECK(attrs.kernel.empty() || attrs.kernel == ks, ModelError,
            "kernel_shape does not match W's spatial dims ", dims_str(ks));
  const Window win = resolve_window(attrs, sp, ks);
  ConvGeo g{};
  if (r == 3) {
    g = ConvGeo{n, c, 1, sp[0], m, 1, ks[0], 1, win.out[0], 1, win.stride[0], 1, win.dilation[0],
                0, win.pad_begin[0], group};
  } else {
    g = ConvGeo{n, c, sp[0], sp[1], m, ks[0], ks[1], win.out[0], win.out[1], win.stride[0],
                win.stride[1], win.dilation[0], win.dilation[1], win.pad_begin[0],
                win.pad_begin[1], group};
  }
  od = Dims{n, m};
  for (int64_t o : win.out) od.push_back(o);
  return g;
}

template <typename T>
void conv_forward(const KernelContext& ctx, const T* x, const T* w, const T* b, const ConvGeo& g,
                  T* y) {
  const int64_t n = g.n, c = g.c, m = g.m, group = g.group;
  const int64_t cg = c / group, mg = m / group, P = g.ho * g.wo, HW = g.h * g.w;
  if (n == 0 || m == 0 || P == 0) return;  // empty output (and no division by mg == 0 below)
  if (cg == 1 && mg == 1) {
    parallel_blocks(ctx, n * m, P, [&](int64_t i) {
      const int64_t ch = i % m;
      depthwise(x + i * HW, w + ch * g.kh * g.kw, b ? b[ch] : T(0), g, y + i * P);
    });
    return;
  }
  const int64_t K = cg * g.kh * g.kw;
  const bool pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 &&
                         g.pl == 0 && g.ho == g.h && g.wo == g.w;
  const int64_t tiles = (P + kTile - 1) / kTile;
  // Small images give few tiles, so output channels are split too (by the shape alone, so the
  // split and each element's arithmetic are the same for any thread count).
  const int64_t mblock = tiles >= 4 ? mg : std::min(mg, kChannelBlock);
  const int64_t mblocks = (mg + mblock - 1) / mblock;
  ctx.parallel_for(static_cast<size_t>(n * group * tiles * mblocks), [&](size_t item) {
    const int64_t i = static_cast<int64_t>(item);
    const int64_t mb = i % mblocks;
    const int64_t t = i / mblocks % tiles;
    const int64_t gi = i / mblocks / tiles % group;
    const int64_t ni = i / mblocks / tiles / group;
    const int64_t p0 = t * kTile, cols = std::min(kTile, P - p0);
    const int64_t m0 = mb * mblock, rows = std::min(mblock, mg - m0);
    const T* xg = x + (ni * c + gi * cg) * HW;
    T* yg = y + (ni * m + gi * mg + m0) * P + p0;
    Eigen::Map<const RowMatOf<T>> wg(w + (gi * mg + m0) * K, rows, K);
    Strided<T> yt(yg, rows, cols, Eigen::OuterStride<>(P));
    // Start from the bias and accumulate: Eigen's `=` would zero the tile first and the bias
    // would be a third pass. bias + sum equals sum + bias exactly (addition commutes).
    for (int64_t oc = 0; oc < rows; ++oc) yt.row(oc).setConstant(b ? b[gi * mg + m0 + oc] : T(0));
    if (pointwise) {
      yt.noalias() += wg * ConstStrided<T>(xg + p0, K, cols, Eigen::OuterStride<>(P));
    } else {
      thread_local std::vector<T> col;
      col.resize(static_cast<size_t>(K * cols));
      im2col(xg, g, cg, p0, cols, col.data());
      yt.noalias() += wg * Eigen::Map<const RowMatOf<T>>(col.data(), K, cols);
    }
  });
}

std::vector<float> pack_conv_weights(const float* w, const Dims& wd, int64_t group) {
  const int64_t m = wd[0], mg = m / group;
  int64_t k = 1;
  for (size_t d = 1; d < wd.size(); ++d) k *= wd[d];
  const int64_t asz = fast::packed_a_size(mg, k);
  std::vector<float> packed(static_cast<size_t>(group * asz));
  for (int64_t gi = 0; gi < group; ++gi)
    fast::pack_a(w + gi * mg * k, k, 1, mg, k, packed.data() + gi * asz);
  return packed;
}

namespace {

// Where a 1x1 Conv with k input and m output channels sums its input channels in two halves
// (see conv_forward_fast): the first half's size, a multiple of 16 (the depthwise kernel's
// channel block, so a producer's thread shares end on it), or 0 for one FMA chain over all.
int64_t pointwise_k_half(int64_t k, int64_t m) {
  if (k < 64 || k < 3 * m) return 0;
  const int64_t half = ceil_to(ceil_div(k, 2), 16);
  return half < k ? half : 0;
}

}  // namespace

void conv_forward_fast(const KernelContext& ctx, const float* x, const float* w,
                       const float* packed, const float* b, const ConvGeo& g, float* y,
                       const Activation* act) {
  const int64_t n = g.n, c = g.c, m = g.m, group = g.group;
  const int64_t cg = c / group, mg = m / group, P = g.ho * g.wo, HW = g.h * g.w;
  if (n == 0 || m == 0 || P == 0) return;
  const PlaneGeo pg = plane_geo(g);
  if (cg == 1 && mg == 1) {
    // Eight (AVX-512: sixteen) channels per task, in the vector lanes (the last group of an
    // image may be short).
    const int64_t lanes = fast::depthwise_block_channels(), groups = (m + lanes - 1) / lanes;
    parallel_blocks(ctx, n * groups, lanes * P, [&](int64_t i) {
      const int64_t img = i / groups, ch = i % groups * lanes, cn = std::min<int64_t>(lanes, m - ch);
      fast::depthwise_channels(x + (img * m + ch) * HW, cn, HW, pg, w + ch * g.kh * g.kw, b ? b + ch : nullptr,
                               y + (img * m + ch) * P, act);
    });
    return;
  }
  const int64_t K = cg * g.kh * g.kw;
  std::vector<float> local;
  if (!packed) {
    local = pack_conv_weights(w, Dims{m, cg, g.kh, g.kw}, group);
    packed = local.data();
  }
  if (group == 1 && fast::conv_s2_small_supported(pg, c)) {  // an image model's first layer: no im2col
    parallel_blocks(ctx, n * g.ho, m * g.wo * c * 9, [&](int64_t i) {
      const int64_t img = i / g.ho;
      fast::conv_s2_small(x + img * c * HW, c, pg, packed, m, b, y + img * m * P, i % g.ho, act);
    });
    return;
  }
  const int64_t asz = fast::packed_a_size(mg, K);
  const bool pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 &&
                         g.pl == 0 && g.ho == g.h && g.wo == g.w;
  // Stride-1 windows read a zero-padded copy of the input (hp x wp planes: the rows and columns
  // the windows reach) in place of im2col: column q = oy·wp + ox of the GEMM is output pixel
  // (oy, ox), and tap p = (ci, ky, kx) of every column lies boff[p] = ci·hp·wp + ky·dh·wp + kx·dw
  // further on. Columns with ox >= wo are computed and dropped. Each output is the same FMA
  // chain over the same taps (padding taps read 0 as im2col's do), so results are unchanged.
  // Narrow maps go through im2col instead: the padded rows' wasted columns ((kw - 1)·dw of each
  // wo + (kw - 1)·dw) cost more than the copy there (squeezenet1.1's 3x3 Convs on 13x13: 15 %
  // wasted, 255 -> 220 us at 2 threads through im2col; on 27x27 and 55x55 padded stays faster).
  const bool padded = !pointwise && g.sh == 1 && g.sw == 1 && (g.kw - 1) * g.dw * 8 <= g.wo;
  const int64_t hp = padded ? (g.ho - 1) + (g.kh - 1) * g.dh + 1 : 0;
  const int64_t wp = padded ? (g.wo - 1) + (g.kw - 1) * g.dw + 1 : 0;
  // One (image, group)'s padded planes, then zeros the dropped columns of the last row read.
  const int64_t region = cg * hp * wp + (g.kw - 1) * g.dw;
  const int64_t cols_total = padded ? g.ho * wp : P;
  const bool in_place = pointwise || padded;
  // B row offsets where B is read in place (im2col builds its rows instead).
  std::vector<int64_t> boff(in_place ? static_cast<size_t>(K) : 0);
  for (int64_t ci = 0; in_place && ci < cg; ++ci)
    for (int64_t ky = 0; ky < g.kh; ++ky)
      for (int64_t kx = 0; kx < g.kw; ++kx)
        boff[static_cast<size_t>((ci * g.kh + ky) * g.kw + kx)] =
            padded ? ci * hp * wp + ky * g.dh * wp + kx * g.dw : ci * HW;
  const bool direct = in_place && fast::gemm_direct_b_supported();
  // Column tiles: read in place (stride-1 windows), up to kTile columns; packed, a multiple of
  // kNr whose packed B (K × cols) fits kBTileFloats. The tiles of an image are then evened out,
  // and a layer with few tiles splits its output channels too (blocks of whole 2·kMr-row tiles),
  // so that there are about kTasks tasks of about equal size. The split follows the shape alone;
  // each output is one FMA chain over K anyway (two for the input-channel halves below).
  const int64_t max_cols =
      padded && direct ? kTile
                       : std::clamp<int64_t>(kBTileFloats / std::max<int64_t>(K, 1) / fast::kNr * fast::kNr,
                                             fast::kNr, kTile);
  // (Packed tiles stay whole kNr-column panels; tiles read in place whole 2·kNr-column micro-tiles,
  // so only the last one has a short tail: squeezenet1.1's conv10, 169 columns, ran as 85 + 84
  // in 96-column passes each; 96 + 73 pass over 176 columns, 1.30 -> 1.20 ms at 1 thread.)
  const int64_t even = ceil_div(cols_total, ceil_div(cols_total, max_cols));
  const int64_t ncols = direct ? std::min(cols_total, ceil_to(even, 2 * fast::kNr)) : ceil_to(even, fast::kNr);
  const int64_t tiles = ceil_div(cols_total, ncols);
  constexpr int64_t kTasks = 8;
  // Output channels per task for about `tasks` tasks per image: all of them once the column
  // tiles are enough, else blocks of whole 2·kMr-row tiles.
  const auto channel_block = [&](int64_t tasks) {
    const int64_t row_tile = 2 * fast::kMr;
    return tiles >= tasks ? mg : std::max(row_tile, ceil_to(ceil_div(mg, ceil_div(tasks, tiles)), row_tile));
  };
  const int64_t mblock = channel_block(kTasks);
  const int64_t mblocks = (mg + mblock - 1) / mblock;
  const int64_t nt = n * group * tiles;
  // A 1x1 Conv from many input channels to few (mobilenetv2's projections, squeezenet1.1's
  // squeeze layers) sums two halves of its input channels as separate tasks, then adds them.
  // The op before it wrote its output split by channels across threads, so with its outputs
  // split instead each thread read what the other core had just written, half of a large input:
  // a 384 -> 64 Conv on 14x14 took 70 us at 2 threads after a depthwise Conv, 44 us on an input
  // written long before, 68 us at 1 thread. In halves, the thread that takes the first half
  // mostly reads channels it wrote itself, and only the small outputs cross cores (70 -> 45 us;
  // mobilenetv2 4.17 -> 3.80 ms). The split follows the shape alone: the same two halves at any
  // thread count, each one FMA chain (the first from the bias), then one addition.
  if (pointwise && group == 1) {
    const int64_t k_half = pointwise_k_half(K, mg);
    if (k_half > 0) {
      const int64_t hblock = channel_block(kTasks / 2);  // about kTasks / 2 tasks per half
      const int64_t hblocks = ceil_div(mg, hblock), per_half = nt * hblocks;
      thread_local std::vector<float> upper_sums;  // the second half's sums, added to y after
      upper_sums.resize(static_cast<size_t>(n * m * P));
      float* const ub = upper_sums.data();
      ctx.parallel_for(static_cast<size_t>(2 * per_half), [&](size_t item) {
        const int64_t h = static_cast<int64_t>(item) / per_half, i = static_cast<int64_t>(item) % per_half;
        const int64_t mb = i % hblocks, t = i / hblocks % tiles, ni = i / hblocks / tiles;
        const int64_t p0 = t * ncols, cols = std::min(ncols, P - p0);
        const int64_t m0 = mb * hblock, rows = std::min(hblock, mg - m0);
        const int64_t k0 = h == 0 ? 0 : k_half, kn = h == 0 ? k_half : K - k_half;
        fast::gemm_direct_b(packed + m0 * K + k0 * fast::kMr, x + ni * c * HW + p0, boff.data() + k0, rows, cols, kn,
                            h == 0 && b ? b + m0 : nullptr, (h == 0 ? y : ub) + (ni * m + m0) * P + p0, P, nullptr, K);
      });
      parallel_blocks(ctx, n * m, P, [&](int64_t r) {
        float* yr = y + r * P;
        const float* ur = ub + r * P;
        if (act) {
          for (int64_t j = 0; j < P; ++j) yr[j] = (*act)(yr[j] + ur[j]);
        } else {
          for (int64_t j = 0; j < P; ++j) yr[j] += ur[j];
        }
      });
      return;
    }
  }
  // The calling thread's buffers, passed to the tasks as pointers: named inside a lambda, a
  // thread_local would be each worker's own.
  thread_local std::vector<float> pad_buf;
  if (padded) pad_buf.resize(static_cast<size_t>(n * group * region));
  float* const pb = pad_buf.data();
  if (padded) {
    parallel_blocks(ctx, n * c, hp * wp, [&](int64_t i) {
      const int64_t ni = i / c, ci = i % c % cg, gi = i % c / cg;
      float* dst = pb + (ni * group + gi) * region + ci * hp * wp;
      const float* src = x + i * HW;
      const int64_t lo = std::min(g.pl, wp), hi = std::clamp(g.pl + g.w, lo, wp);
      for (int64_t r = 0; r < hp; ++r, dst += wp) {
        const int64_t iy = r - g.pt;
        if (iy < 0 || iy >= g.h) {
          std::fill(dst, dst + wp, 0.f);
          continue;
        }
        std::fill(dst, dst + lo, 0.f);
        std::memcpy(dst + lo, src + iy * g.w + (lo - g.pl), static_cast<size_t>(hi - lo) * sizeof(float));
        std::fill(dst + hi, dst + wp, 0.f);
      }
      if (ci == cg - 1) std::fill(dst, dst + (g.kw - 1) * g.dw, 0.f);
    });
  }
  // B of tile t (group gi, image ni) where it lies: rows boff[p] from the returned pointer.
  auto tile_source = [&](int64_t ni, int64_t gi, int64_t p0) {
    return padded ? pb + (ni * group + gi) * region + p0 : x + (ni * c + gi * cg) * HW + p0;
  };
  // B tile packed into dst: im2col (strided windows) or the rows in place.
  auto pack_tile = [&](int64_t ni, int64_t gi, int64_t t, float* dst) {
    const int64_t p0 = t * ncols, cols = std::min(ncols, cols_total - p0);
    if (in_place) {
      fast::pack_b_rows(tile_source(ni, gi, p0), boff.data(), K, cols, dst);
      return;
    }
    thread_local std::vector<float> col;
    col.resize(static_cast<size_t>(K * cols));
    im2col(x + (ni * c + gi * cg) * HW, g, cg, p0, cols, col.data());
    fast::pack_b(col.data(), cols, 1, K, cols, dst);
  };
  const int64_t bsz = fast::packed_b_size(K, ncols);
  // Several channel blocks read each B tile: pack every tile once first (a second parallel
  // pass) unless that buffer would be large; otherwise each task packs its own tile.
  const bool shared = !direct && mblocks > 1 && nt * bsz <= (int64_t{4} << 20);
  thread_local std::vector<float> shared_b;
  if (shared) shared_b.resize(static_cast<size_t>(nt * bsz));
  float* const sb = shared_b.data();
  if (shared) {
    ctx.parallel_for(static_cast<size_t>(nt), [&](size_t item) {
      const int64_t i = static_cast<int64_t>(item);
      pack_tile(i / tiles / group, i / tiles % group, i % tiles, sb + i * bsz);
    });
  }
  // Task order: a thread takes a run of consecutive items first (ThreadPool), so the order decides
  // what stays in its cache. Where a group's weights outweigh its columns (squeezenet1.1's conv10:
  // 2 MB of weights, 169 columns), channel blocks go outer and each thread reads about its share
  // of the weights (0.67 -> 0.60 ms at 2 threads); else column tiles go outer.
  const bool weights_outer = mblocks > 1 && mg > cols_total;
  ctx.parallel_for(static_cast<size_t>(nt * mblocks), [&](size_t item) {
    int64_t i = static_cast<int64_t>(item);
    if (weights_outer) i = (i % nt) * mblocks + i / nt;  // item = mb·nt + tile
    const int64_t mb = i % mblocks;
    const int64_t t = i / mblocks % tiles;
    const int64_t gi = i / mblocks / tiles % group;
    const int64_t ni = i / mblocks / tiles / group;
    const int64_t p0 = t * ncols, cols = std::min(ncols, cols_total - p0);
    const int64_t m0 = mb * mblock, rows = std::min(mblock, mg - m0);
    // m0 is a multiple of kMr, so its row panel starts at m0·K in the packed group.
    const float* pa = packed + gi * asz + m0 * K;
    const float* bias = b ? b + gi * mg + m0 : nullptr;
    float* yb = y + (ni * m + gi * mg + m0) * P;
    // Padded columns go through a scratch tile, then the ones inside the output are copied.
    thread_local std::vector<float> scratch;
    if (padded) scratch.resize(static_cast<size_t>(rows * cols));
    float* c_out = padded ? scratch.data() : yb + p0;
    const int64_t ldc = padded ? cols : P;
    if (direct) {
      fast::gemm_direct_b(pa, tile_source(ni, gi, p0), boff.data(), rows, cols, K, bias, c_out, ldc, act);
    } else {
      const float* bp;
      if (shared) {
        bp = sb + (i / mblocks) * bsz;
      } else {
        thread_local std::vector<float> bpack;
        bpack.resize(static_cast<size_t>(bsz));
        pack_tile(ni, gi, t, bpack.data());
        bp = bpack.data();
      }
      fast::gemm_packed(pa, bp, rows, cols, K, bias, c_out, ldc, act);
    }
    if (!padded) return;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < cols;) {
        const int64_t q = p0 + j, oy = q / wp, ox = q % wp, run = std::min(wp - ox, cols - j);
        if (ox < g.wo)
          std::memcpy(yb + r * P + oy * g.wo + ox, c_out + r * cols + j,
                      static_cast<size_t>(std::min(run, g.wo - ox)) * sizeof(float));
        j += run;
      }
    }
  });
}

template void conv_forward<float>(const KernelContext&, const float*, const float*, const float*,
                                  const ConvGeo&, float*);
template void conv_forward<double>(const KernelContext&, const double*, const double*,
                                   const double*, const ConvGeo&, double*);

void register_conv(KernelRegistry& r) { r.add("Conv", make_kernel<Conv>); }

}  // namespace ptq::runtime
