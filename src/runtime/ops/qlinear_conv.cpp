// QLinearConv and ConvInteger on 8-bit codes with ORT's integer arithmetic: im2col in ORT's K
// order into the int8 GEMM core (int8_gemm.h), depthwise convolutions exactly, float requantization.
#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "int8_gemm.h"
#include "qlinear.h"
#include "spatial.h"

namespace ptq::runtime {
namespace {

// 2-D geometry (1-D convolutions are mapped onto H = 1).
struct Geo {
  int64_t n, c, h, w, m, kh, kw, ho, wo, sh, sw, dh, dw, pt, pl, group;
};

Geo geometry(const WindowAttrs& attrs, int64_t group, const Dims& xd, const Dims& wd, Dims& od) {
  const size_t r = xd.size();
  PTQ_CHECK(r == 3 || r == 4, UnsupportedError, "Conv with input rank ", r,
            " (only 1-D and 2-D convolutions are supported)");
  PTQ_CHECK(wd.size() == r, ModelError, "W rank ", wd.size(), " differs from X rank ", r);
  const int64_t n = xd[0], c = xd[1], m = wd[0];
  PTQ_CHECK(c % group == 0 && m % group == 0, ModelError, "channels C=", c, " and M=", m,
            " must be divisible by group=", group);
  PTQ_CHECK(wd[1] == c / group, ModelError, "W has ", wd[1], " input channels per group, expected ",
            c / group);
  const std::vector<int64_t> sp(xd.begin() + 2, xd.end()), ks(wd.begin() + 2, wd.end());
  PTQ_CHECK(attrs.kernel.empty() || attrs.kernel == ks, ModelError,
            "kernel_shape does not match W's spatial dims ", dims_str(ks));
  const Window win = resolve_window(attrs, sp, ks);
  Geo g{};
  if (r == 3)
    g = Geo{n, c, 1, sp[0], m, 1, ks[0], 1, win.out[0], 1, win.stride[0], 1, win.dilation[0], 0,
            win.pad_begin[0], group};
  else
    g = Geo{n, c, sp[0], sp[1], m, ks[0], ks[1], win.out[0], win.out[1], win.stride[0],
            win.stride[1], win.dilation[0], win.dilation[1], win.pad_begin[0], win.pad_begin[1], group};
  od = Dims{n, m};
  for (int64_t o : win.out) od.push_back(o);
  return g;
}

// The weights in the layout the kernels read, built once for a constant W (or per run).
// GEMM groups: row m of group g holds W[g·mg + m] in ORT's NHWC im2col order k = (ky·kw + kx)·cg + c,
// which decides the K pairs MLAS's u8×s8 kernels saturate.
struct ConvWeights {
  const Tensor* source = nullptr;
  const void* data = nullptr;
  Dims dims;
  DType dtype = DType::kUndefined;
  std::vector<int8::PackedB> groups;  // empty for depthwise
  std::vector<int16_t> depthwise;     // [m][kh·kw] raw codes
  // uint8 weights are packed as their codes minus 128 (signed, so the AVX2 kernels take them) and
  // their zero points lowered by the same: Σ (x − z_x)(w − z_w) is unchanged.
  int32_t code_offset = 0;
};

int32_t raw_code(const Tensor& t, size_t i) {
  return t.dtype() == DType::kInt8 ? static_cast<int32_t>(t.data<int8_t>()[i])
                                   : static_cast<int32_t>(t.data<uint8_t>()[i]);
}

std::shared_ptr<const ConvWeights> prepare(const Tensor& W, int64_t group) {
  auto cw = std::make_shared<ConvWeights>();
  dispatch_8bit(W.dtype(), "w", [](auto) {});
  PTQ_CHECK(W.rank() >= 3 && W.dims()[0] % group == 0, ModelError, "W ", dims_str(W.dims()),
            " does not fit group=", group);
  cw->source = &W;
  cw->data = W.raw();
  cw->dims = W.dims();
  cw->dtype = W.dtype();
  const int64_t m = W.dims()[0], cg = W.dims()[1], mg = m / group;
  const int64_t ks = numel_of(Dims(W.dims().begin() + 2, W.dims().end()));
  if (cg == 1 && mg == 1) {
    cw->depthwise.resize(W.numel());
    for (size_t i = 0; i < W.numel(); ++i) cw->depthwise[i] = static_cast<int16_t>(raw_code(W, i));
    return cw;
  }
  cw->code_offset = W.dtype() == DType::kUint8 ? 128 : 0;
  for (int64_t g = 0; g < group; ++g)
    cw->groups.push_back(int8::pack_b(mg, cg * ks, true, [&](int64_t j, int64_t k) {
      const int64_t c = k % cg, tap = k / cg;
      return raw_code(W, static_cast<size_t>(((g * mg + j) * cg + c) * ks + tap)) - cw->code_offset;
    }, W.dtype() == DType::kUint8));
  return cw;
}

// The constant W this node reads: input 3 of QLinearConv, 1 of ConvInteger, or (integer-kernel
// mode, anchored on a float Conv) the codes of the DequantizeLinear feeding the Conv's W.
const Tensor* constant_weight(const KernelInit& init, size_t slot) {
  const ir::Node& n = init.node;
  if (n.op_type == "Conv") {
    if (n.inputs.size() < 2 || n.inputs[1] == ir::kNone) return nullptr;
    const ir::Node* dq = init.graph.producer(n.inputs[1]);
    if (!dq || dq->op_type != "DequantizeLinear" || dq->inputs.empty()) return nullptr;
    return init.graph.constant(dq->inputs[0]);
  }
  return slot < n.inputs.size() && n.inputs[slot] != ir::kNone ? init.graph.constant(n.inputs[slot])
                                                                 : nullptr;
}

// Output pixels per task: fixed, so the work split (and every result) ignores the thread count.
constexpr int64_t kChunk = 64;

// Where one image's results go: int32 accumulators (ConvInteger) or requantized codes.
struct Sink {
  int32_t* acc = nullptr;         // [m][P], when not requantizing
  uint8_t* y = nullptr;           // [m][P] codes, when requantizing
  const int32_t* bias = nullptr;  // per output channel, or nullptr
  const float* scale = nullptr;   // per output channel
  int32_t zero = 0;
  bool y_signed = false;
};

// Centred, zero-padded int16 plane of one channel, by column phase (int8::DepthwiseGeo).
template <typename Q>
void fill_plane(const Q* x, int64_t zx, const Geo& g, int64_t hp, int64_t wph, int16_t* plane) {
  if constexpr (std::is_same_v<Q, uint8_t>) {
    if (g.sw == 2 && g.w >= 2) {  // both phases in one pass: input columns in (even, odd) pairs
      const int64_t first = g.pl % 2;  // first input column of an even padded column
      const int64_t pairs = (g.w - first) / 2, j0 = (first + g.pl) / 2;
      for (int64_t iy = std::max<int64_t>(0, -g.pt); iy < g.h && iy + g.pt < hp; ++iy) {
        int16_t* even = plane + (iy + g.pt) * wph;
        int16_t* odd = plane + (hp + iy + g.pt) * wph;
        const Q* src = x + iy * g.w;
        if (first == 1) odd[g.pl / 2] = static_cast<int16_t>(src[0] - zx);
        int8::widen_centred_pairs(src + first, pairs, static_cast<int32_t>(zx), even + j0, odd + j0);
        if ((g.w - first) % 2 == 1) even[(g.w - 1 + g.pl) / 2] = static_cast<int16_t>(src[g.w - 1] - zx);
      }
      return;
    }
  }
  if (g.sw == 1) {
    // The whole channel centred in one loop (long enough to vectorize; per-row loops of 7-56
    // columns ran scalar), then copied row by row into the padded plane. In int16: codes and
    // zero points are 8-bit, so the difference fits.
    thread_local std::vector<int16_t> centred;
    centred.resize(static_cast<size_t>(g.h * g.w));
    const auto z = static_cast<int16_t>(zx);
    int16_t* c = centred.data();
    for (int64_t i = 0; i < g.h * g.w; ++i) c[i] = static_cast<int16_t>(static_cast<int16_t>(x[i]) - z);
    const int64_t jlo = std::max<int64_t>(0, g.pl), jhi = std::min(wph, g.w + g.pl);
    for (int64_t iy = std::max<int64_t>(0, -g.pt); iy < g.h && iy + g.pt < hp; ++iy) {
      if (jhi > jlo)
        std::memcpy(plane + (iy + g.pt) * wph + jlo, c + iy * g.w + jlo - g.pl,
                    static_cast<size_t>(jhi - jlo) * sizeof(int16_t));
    }
    return;
  }
  for (int64_t ph = 0; ph < g.sw; ++ph) {
    // Columns j of this phase read input column j·sw + ph − pl: the valid j range.
    const int64_t first = g.pl - ph;
    const int64_t jlo = first <= 0 ? 0 : (first + g.sw - 1) / g.sw;
    const int64_t jhi = std::min(wph, (g.w - 1 + g.pl - ph) < 0 ? 0 : (g.w - 1 + g.pl - ph) / g.sw + 1);
    for (int64_t iy = std::max<int64_t>(0, -g.pt); iy < g.h && iy + g.pt < hp; ++iy) {
      int16_t* dst = plane + (ph * hp + iy + g.pt) * wph;
      const Q* src = x + iy * g.w + ph - g.pl;
      for (int64_t j = jlo; j < jhi; ++j) dst[j] = static_cast<int16_t>(src[j * g.sw] - zx);
    }
  }
}

// The pixels j in [lo, hi) of an output-row segment of `seg` pixels whose input columns
// ix0 + j·sw lie inside the image, 0 <= column < w.
std::pair<int64_t, int64_t> inside_span(int64_t ix0, int64_t sw, int64_t w, int64_t seg) {
  const int64_t lo = std::min(seg, ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw);
  const int64_t hi = std::max(lo, std::min(seg, ix0 >= w ? 0 : (w - ix0 + sw - 1) / sw));
  return {lo, hi};
}

// Depthwise with channels in the vector lanes (int8::depthwise_lanes) where output rows are short:
// measured on mobilenetv2, 14x14 and 7x7 maps ran 1.6-5x faster, 28x28 about 1.3x, while at 56
// columns the per-plane kernel's 16-column blocks were faster again.
bool depthwise_in_lanes(const Geo& g) { return g.wo <= 32; }

// One image of the convolution into `out`. `ort_pairs`: use ORT's u8×s8 arithmetic on this CPU.
void conv_image(const KernelContext& ctx, const Tensor& X, int64_t img, int32_t zx,
                const ConvWeights& cw, const std::vector<int32_t>& zw, const Geo& g, bool ort_pairs,
                const Sink& out) {
  const int64_t cg = g.c / g.group, mg = g.m / g.group, P = g.ho * g.wo, HW = g.h * g.w;
  const bool x_signed = X.dtype() == DType::kInt8;
  const uint8_t* x = static_cast<const uint8_t*>(X.raw()) + img * g.c * HW;
  if (cw.groups.empty()) {
    // Depthwise: Σ (x − z_x)(w − z_w) exactly (MLAS's depthwise kernels widen, no pairs), on a
    // centred plane padded with zeros, split by column phase so every tap reads contiguously.
    const int64_t hp = (g.ho - 1) * g.sh + (g.kh - 1) * g.dh + 1;
    const int64_t wp = (g.wo - 1) * g.sw + (g.kw - 1) * g.dw + 1;
    const int64_t wph = int8::depthwise_phase_cols(wp, g.sw, g.wo, g.kw, g.dw);
    const int64_t taps = g.kh * g.kw;
    if (!x_signed && out.y && int8::avx2_usable() && depthwise_in_lanes(g)) {
      parallel_blocks(ctx, (g.m + 15) / 16, 16 * P * taps, [&](int64_t bi) {
        const int64_t ch = bi * 16, cn = std::min<int64_t>(16, g.m - ch);
        thread_local std::vector<int32_t> wc;
        wc.resize(static_cast<size_t>(cn * taps));
        for (int64_t l = 0; l < cn; ++l) {
          const int32_t z = zw.size() == 1 ? zw[0] : zw[static_cast<size_t>(ch + l)];
          for (int64_t t = 0; t < taps; ++t)
            wc[static_cast<size_t>(l * taps + t)] = cw.depthwise[static_cast<size_t>((ch + l) * taps + t)] - z;
        }
        int8::DepthwiseLanes d;
        d.x = x + ch * HW;
        d.channels = cn;
        d.h = g.h, d.w = g.w, d.pt = g.pt, d.pl = g.pl, d.kh = g.kh, d.kw = g.kw;
        d.sh = g.sh, d.sw = g.sw, d.dh = g.dh, d.dw = g.dw, d.ho = g.ho, d.wo = g.wo;
        d.zx = zx;
        d.wc = wc.data();
        d.bias = out.bias ? out.bias + ch : nullptr;
        d.scale = out.scale + ch;
        d.zero = out.zero;
        d.y_signed = out.y_signed;
        d.y = out.y + ch * P;
        int8::depthwise_lanes(d);
      });
      return;
    }
    parallel_blocks(ctx, g.m, P * g.kh * g.kw, [&](int64_t ch) {
      thread_local std::vector<int16_t> plane;  // reused: kernels run on many threads at once
      plane.assign(static_cast<size_t>(g.sw * hp * wph), 0);
      if (x_signed)
        fill_plane(reinterpret_cast<const int8_t*>(x) + ch * HW, zx, g, hp, wph, plane.data());
      else
        fill_plane(x + ch * HW, zx, g, hp, wph, plane.data());
      const int32_t z = zw.size() == 1 ? zw[0] : zw[static_cast<size_t>(ch)];
      thread_local std::vector<int32_t> wc;
      wc.resize(static_cast<size_t>(g.kh * g.kw));
      for (size_t t = 0; t < wc.size(); ++t)
        wc[t] = cw.depthwise[static_cast<size_t>(ch) * wc.size() + t] - z;
      const int8::DepthwiseGeo dg{hp, wph, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.ho, g.wo};
      if (!out.y) return int8::depthwise_acc(plane.data(), dg, wc.data(), out.acc + ch * P);
      int8::depthwise_requant(plane.data(), dg, wc.data(),
                              {out.bias ? out.bias[ch] : 0, out.scale[ch], out.zero, out.y_signed, out.y + ch * P});
    });
    return;
  }
  const int64_t K = cg * g.kh * g.kw, k4 = (K + 3) / 4 * 4, chunks = (P + kChunk - 1) / kChunk;
  const uint8_t pad = static_cast<uint8_t>(zx);
  // 1×1, stride 1, no padding: pixel p of the output reads pixel p of the input.
  const bool pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 &&
                         g.pl == 0 && g.ho == g.h && g.wo == g.w;
  const int8::Arith arith =
      ort_pairs ? int8::arith_for(x_signed, cw.dtype == DType::kInt8) : int8::Arith::kExact;
  // Few pixels (late, small feature maps): also split the output channels, so both threads work.
  const int64_t col_splits = chunks >= 8 ? 1 : std::max<int64_t>(1, std::min<int64_t>((mg + 63) / 64, 8 / chunks));
  const int64_t col_block = (mg + col_splits - 1) / col_splits / 16 * 16 + 16;
  ctx.parallel_for(static_cast<size_t>(g.group * chunks * col_splits), [&](size_t t_) {
    const int64_t t = static_cast<int64_t>(t_) / col_splits, cs = static_cast<int64_t>(t_) % col_splits;
    const int64_t j0 = std::min(mg, cs * col_block), j1 = std::min(mg, j0 + col_block);
    if (j0 >= j1) return;
    const int64_t grp = t / chunks, p0 = t % chunks * kChunk;
    const int64_t rows = std::min(kChunk, P - p0);
    // A in K quads: code (pixel i, k) at a[(k/4)·4·rows + 4·i + k%4]; K padding is zero.
    thread_local std::vector<uint8_t> a;  // every code is written below (K padding included)
    a.resize(static_cast<size_t>(k4 * rows));
    const uint8_t* xg = x + grp * cg * HW;
    if (pointwise) {  // the input rows themselves, 4 channels interleaved per quad
      const std::vector<uint8_t> zeros(static_cast<size_t>(rows), 0);
      for (int64_t q = 0; q < k4 / 4; ++q) {
        const uint8_t* r4[4];
        for (int64_t r = 0; r < 4; ++r)
          r4[r] = 4 * q + r < cg ? xg + (4 * q + r) * HW + p0 : zeros.data();
        int8::interleave4(r4, rows, a.data() + q * 4 * rows);
      }
    } else if (g.sw == 1 && cg % 4 == 0) {
      // Stride 1 along W, whole channel quads per tap: each output-row segment reads a contiguous
      // input run per channel, interleaved 4 channels at a time; padding reads z_x.
      for (int64_t ky = 0; ky < g.kh; ++ky)
        for (int64_t kx = 0; kx < g.kw; ++kx)
          for (int64_t c0 = 0; c0 < cg; c0 += 4) {
            uint8_t* dst = a.data() + ((ky * g.kw + kx) * cg + c0) * rows;  // quad (tap·cg + c0)/4
            for (int64_t i = 0; i < rows;) {
              const int64_t p = p0 + i, oyy = p / g.wo, oxx = p % g.wo;
              const int64_t seg = std::min(rows - i, g.wo - oxx);
              const int64_t iy = oyy * g.sh - g.pt + ky * g.dh;
              const int64_t ix0 = oxx - g.pl + kx * g.dw;  // input column of the segment's first pixel
              const auto [lo, hi] = inside_span(ix0, 1, g.w, seg);
              uint8_t* d = dst + 4 * i;
              if (iy < 0 || iy >= g.h) {
                std::fill(d, d + 4 * seg, pad);
              } else {
                std::fill(d, d + 4 * lo, pad);
                if (hi > lo) {
                  const uint8_t* r4[4];
                  for (int64_t r = 0; r < 4; ++r) r4[r] = xg + (c0 + r) * HW + iy * g.w + ix0 + lo;
                  int8::interleave4(r4, hi - lo, d + 4 * lo);
                }
                std::fill(d + 4 * hi, d + 4 * seg, pad);
              }
              i += seg;
            }
          }
    } else {
      // Any geometry: per tap and channel, each output-row segment of the chunk reads input
      // columns ix0, ix0 + sw, ... of one row; the columns inside the image are a range of the
      // segment worked out once, so the copy loop has no bounds checks (the first layer of an
      // image model, C = 3, spent most of its time here).
      if (K < k4) std::fill(a.begin() + (k4 - 4) * rows, a.begin() + k4 * rows, uint8_t{0});
      for (int64_t ky = 0; ky < g.kh; ++ky)
        for (int64_t kx = 0; kx < g.kw; ++kx)
          for (int64_t i = 0; i < rows;) {
            const int64_t p = p0 + i, oyy = p / g.wo, oxx = p % g.wo;
            const int64_t seg = std::min(rows - i, g.wo - oxx);
            const int64_t iy = oyy * g.sh - g.pt + ky * g.dh;
            const int64_t ix0 = oxx * g.sw - g.pl + kx * g.dw;
            // A padding row reads nothing: an empty span, all pad.
            const auto [lo, hi] = iy < 0 || iy >= g.h ? std::pair<int64_t, int64_t>{0, 0}
                                                      : inside_span(ix0, g.sw, g.w, seg);
            for (int64_t c = 0; c < cg; ++c) {
              const int64_t k = (ky * g.kw + kx) * cg + c;
              uint8_t* dst = a.data() + (k / 4) * 4 * rows + k % 4 + 4 * i;
              for (int64_t j = 0; j < lo; ++j) dst[4 * j] = pad;
              if (hi > lo) {
                const uint8_t* src = xg + c * HW + iy * g.w + ix0;
                for (int64_t j = lo; j < hi; ++j) dst[4 * j] = src[j * g.sw];
              }
              for (int64_t j = hi; j < seg; ++j) dst[4 * j] = pad;
            }
            i += seg;
          }
    }
    const int8::AView av{a.data(), rows, 4, 4 * rows, x_signed, zx};
    std::vector<int32_t> zg =
        zw.size() == 1 ? zw : std::vector<int32_t>(zw.begin() + grp * mg, zw.begin() + (grp + 1) * mg);
    for (int32_t& z : zg) z -= cw.code_offset;
    const int64_t first = grp * mg * P + p0;  // element (channel grp·mg, pixel p0)
    if (out.y) {
      int8::Requant rq{out.bias ? out.bias + grp * mg : nullptr, out.scale + grp * mg, out.zero,
                       out.y_signed, out.y + first, 1, P};
      int8::gemm(av, cw.groups[static_cast<size_t>(grp)], zg, arith, nullptr, 0, 0, &rq, j0, j1);
    } else {
      int8::gemm(av, cw.groups[static_cast<size_t>(grp)], zg, arith, out.acc + first, 1, P, nullptr,
                 j0, j1);
    }
  });
}

// Shared by both kernels: attributes, the constant weights prepared at construction.
class Int8ConvBase : public Kernel {
 protected:
  Int8ConvBase(const KernelInit& init, size_t w_slot)
      : attrs_(WindowAttrs::from_node(init.node, false)), group_(init.node.attr_int("group", 1)) {
    PTQ_CHECK(group_ >= 1, ModelError, "group must be >= 1, got ", group_);
    if (const Tensor* w = constant_weight(init, w_slot))
      if (w->dtype() == DType::kInt8 || w->dtype() == DType::kUint8) weights_ = prepare(*w, group_);
  }
  // The prepared weights for W: the constant's when W is that constant, else prepared now.
  std::shared_ptr<const ConvWeights> weights(const Tensor& W) const {
    if (weights_ && weights_->source == &W && weights_->data == W.raw() &&
        weights_->dims == W.dims() && weights_->dtype == W.dtype())
      return weights_;
    return prepare(W, group_);
  }
  WindowAttrs attrs_;
  int64_t group_;
  std::shared_ptr<const ConvWeights> weights_;
};

class QLinearConv : public Int8ConvBase {
 public:
  explicit QLinearConv(const KernelInit& init) : Int8ConvBase(init, 3) {}
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
    dispatch_8bit(X.dtype(), "x", [](auto) {});
    dispatch_8bit(W.dtype(), "w", [](auto) {});
    Dims od;
    const Geo g = geometry(attrs_, group_, X.dims(), W.dims(), od);
    PTQ_CHECK(wz.size() == 1 || static_cast<int64_t>(wz.size()) == g.m, ModelError,
              "w_zero_point has ", wz.size(), " values for ", g.m, " output channels");
    PTQ_CHECK(ws.size() == 1 || static_cast<int64_t>(ws.size()) == g.m, ModelError,
              "w_scale has ", ws.size(), " values for ", g.m, " output channels");
    if (B)
      PTQ_CHECK(B->dtype() == DType::kInt32 && static_cast<int64_t>(B->numel()) == g.m, ModelError,
                "B must be int32 with ", g.m, " elements");
    // x_scale · w_scale[m] / y_scale in float32, in that order (ORT's ComputeOutputScale).
    std::vector<float> mult(static_cast<size_t>(g.m));
    for (size_t m = 0; m < mult.size(); ++m) mult[m] = xq.scale * ws[ws.size() == 1 ? 0 : m] / yq.scale;
    const auto cw = weights(W);
    const int64_t P = g.ho * g.wo;
    out[0] = Tensor::empty(X.dtype(), od);
    uint8_t* y = static_cast<uint8_t*>(out[0].mutable_raw());
    for (int64_t img = 0; img < g.n; ++img) {
      Sink sink;
      sink.y = y + img * g.m * P;
      sink.bias = B ? B->data<int32_t>() : nullptr;
      sink.scale = mult.data();
      sink.zero = yq.zero;
      sink.y_signed = X.dtype() == DType::kInt8;
      conv_image(ctx, X, img, xq.zero, *cw, wz, g, true, sink);
    }
  }
};

// ORT runs ConvInteger through its own NCHW im2col GEMM; this one keeps the exact sum (the u8×s8
// pair saturation is emulated only where ORT's kernel order is known: QLinearConv).
class ConvInteger : public Int8ConvBase {
 public:
  explicit ConvInteger(const KernelInit& init) : Int8ConvBase(init, 1) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "x");
    const Tensor& W = required_input(in, 1, "w");
    const Tensor* xz = optional_input(in, 2);
    const Tensor* wz = optional_input(in, 3);
    dispatch_8bit(X.dtype(), "x", [](auto) {});
    dispatch_8bit(W.dtype(), "w", [](auto) {});
    int32_t zx = 0;
    if (xz) {
      const std::vector<int32_t> v = zero_points(*xz, "x_zero_point");
      PTQ_CHECK(v.size() == 1, UnsupportedError, "x_zero_point with ", v.size(), " values");
      zx = v[0];
    }
    const std::vector<int32_t> zw = wz ? zero_points(*wz, "w_zero_point") : std::vector<int32_t>{0};
    Dims od;
    const Geo g = geometry(attrs_, group_, X.dims(), W.dims(), od);
    PTQ_CHECK(zw.size() == 1 || static_cast<int64_t>(zw.size()) == g.m, ModelError,
              "w_zero_point has ", zw.size(), " values for ", g.m, " output channels");
    const auto cw = weights(W);
    const int64_t P = g.ho * g.wo;
    out[0] = Tensor::empty(DType::kInt32, od);
    int32_t* y = out[0].mutable_data<int32_t>();
    for (int64_t img = 0; img < g.n; ++img) {
      Sink sink;
      sink.acc = y + img * g.m * P;
      conv_image(ctx, X, img, zx, *cw, zw, g, false, sink);
    }
  }
};

}  // namespace

void register_qlinear_conv(KernelRegistry& r) {
  r.add("", "QLinearConv", 10, INT64_MAX, make_kernel<QLinearConv>);
  r.add("", "ConvInteger", 10, INT64_MAX, make_kernel<ConvInteger>);
}

}  // namespace ptq::runtime
