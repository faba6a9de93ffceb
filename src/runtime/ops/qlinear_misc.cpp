// ORT's com.microsoft quantized ops: QLinearAdd/Mul, QLinearSigmoid/LeakyRelu, QLinearConcat,
// QLinearGlobalAveragePool, QLinearAveragePool, computed with the formulas of ORT's CPU kernels;
// and the 8-bit MaxPool of integer-kernel mode.
#include <cmath>
#include <cstring>
#include <limits>

#include "int8_domain.h"
#include "int8_gemm.h"
#include "qlinear.h"
#include "spatial.h"

namespace ptq::runtime {
namespace {

// Calls f(out_index, a_index, b_index) over the broadcast shape `od`: the index arithmetic once
// per row of the last axis, not per element (a scalar operand, HardSwish's Add(x, 3), ran 4 ms a
// node through per-element divisions on PP-OCRv4-rec).
template <typename F>
void for_each_broadcast(const Dims& ad, const Dims& bd, const Dims& od, F&& f) {
  const int64_t total = numel_of(od);
  if (ad == od && bd == od) {
    for (int64_t i = 0; i < total; ++i) f(i, i, i);
    return;
  }
  if (total == 0) return;
  const std::vector<int64_t> sa = broadcast_strides(ad, od), sb = broadcast_strides(bd, od);
  const std::vector<int64_t> so = strides_of(od);
  const int64_t inner = od.empty() ? 1 : od.back();
  const int64_t ta = od.empty() ? 0 : sa.back(), tb = od.empty() ? 0 : sb.back();
  for (int64_t row = 0; row < total; row += inner) {
    int64_t rem = row, ia = 0, ib = 0;
    for (size_t d = 0; d < od.size(); ++d) {
      const int64_t idx = rem / so[d];
      rem %= so[d];
      ia += idx * sa[d];
      ib += idx * sb[d];
    }
    for (int64_t j = 0; j < inner; ++j) f(row + j, ia + j * ta, ib + j * tb);
  }
}

// QLinearAdd: c = (s_a/s_c)(a − z_a) + (s_b/s_c)(b − z_b) + z_c, rounded (MlasQLinearAdd).
// QLinearMul: c = (s_a·s_b/s_c)(a − z_a)(b − z_b), rounded, + z_c (MlasQLinearMul).
template <bool kMul>
class QLinearBinary : public Kernel {
 public:
  explicit QLinearBinary(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& A = required_input(in, 0, "A");
    const QParam aq = scalar_qparam(in, 1, 2, "A");
    const Tensor& B = required_input(in, 3, "B");
    const QParam bq = scalar_qparam(in, 4, 5, "B");
    const QParam cq = scalar_qparam(in, 6, 7, "C");
    PTQ_CHECK(A.dtype() == B.dtype(), ModelError, "A and B differ in dtype");
    const Dims od = broadcast_dims(A.dims(), B.dims());
    out[0] = Tensor::empty(A.dtype(), od);
    dispatch_8bit(A.dtype(), "A", [&](auto tag) {
      using Q = decltype(tag);
      const Q* a = A.data<Q>();
      const Q* b = B.data<Q>();
      Q* c = out[0].mutable_data<Q>();
      if constexpr (kMul) {
        const float ratio = aq.scale * bq.scale / cq.scale;
        for_each_broadcast(A.dims(), B.dims(), od, [&](int64_t i, int64_t ia, int64_t ib) {
          const float va = static_cast<float>(static_cast<int32_t>(a[ia]) - aq.zero);
          const float vb = static_cast<float>(static_cast<int32_t>(b[ib]) - bq.zero);
          c[i] = requantize<Q>(va * vb * ratio, cq.zero);
        });
      } else {
        // MLAS's AVX2 kernel (the one ORT runs on x86-64): the zero points folded into one float
        // constant, then two fused multiply-adds on the raw codes, rounded half to even.
        const float ra = aq.scale / cq.scale, rb = bq.scale / cq.scale;
        const float fixed = static_cast<float>(cq.zero) -
                            (ra * static_cast<float>(aq.zero) + rb * static_cast<float>(bq.zero));
        for_each_broadcast(A.dims(), B.dims(), od, [&](int64_t i, int64_t ia, int64_t ib) {
          const float t = std::fma(static_cast<float>(b[ib]), rb, fixed);
          c[i] = requantize<Q>(std::fma(static_cast<float>(a[ia]), ra, t), 0);
        });
      }
    });
  }
};

// Unary ops ORT evaluates through a 256-entry table: inputs X, X_scale, X_zp, Y_scale, Y_zp.
template <bool kSigmoid>
class QLinearLookup : public Kernel {
 public:
  explicit QLinearLookup(const KernelInit& init) : alpha_(init.node.attr_float("alpha", 0.01f)) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "X");
    const QParam xq = scalar_qparam(in, 1, 2, "X");
    const QParam yq = scalar_qparam(in, 3, 4, "Y");
    out[0] = Tensor::empty(X.dtype(), X.dims());
    dispatch_8bit(X.dtype(), "X", [&](auto tag) {
      using Q = decltype(tag);
      const float alpha = alpha_;
      const std::vector<Q> table = lookup_table<Q>(xq, yq, [alpha](float v) {
        if constexpr (kSigmoid) return 1.f / (1.f + std::exp(-v));
        else return v >= 0 ? v : v * alpha;
      });
      const Q* x = X.data<Q>();
      Q* y = out[0].mutable_data<Q>();
      for (size_t i = 0; i < X.numel(); ++i) y[i] = lookup(table, x[i]);
    });
  }

 private:
  float alpha_;
};

// Inputs: Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per tensor. An input with the
// output's parameters is copied; others go through a requantization table (as ORT does).
class QLinearConcat : public Kernel {
 public:
  explicit QLinearConcat(const KernelInit& init) : axis_(init.node.attr_int("axis", 0)) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const QParam yq = scalar_qparam(in, 0, 1, "Y");
    const DType yt = required_input(in, 1, "Y_zero_point").dtype();
    PTQ_CHECK(in.size() >= 5 && (in.size() - 2) % 3 == 0, ModelError,
              "QLinearConcat needs (X, X_scale, X_zero_point) triples after Y's parameters");
    const size_t count = (in.size() - 2) / 3;
    const Tensor& first = required_input(in, 2, "X");
    const int64_t rank = static_cast<int64_t>(first.rank());
    const size_t axis = static_cast<size_t>(normalize_axis(axis_, rank));
    Dims od = first.dims();
    od[axis] = 0;
    for (size_t k = 0; k < count; ++k) {
      const Tensor& x = required_input(in, 2 + 3 * k, "X");
      PTQ_CHECK(x.dtype() == yt && x.rank() == first.rank(), ModelError, "input ", k,
                " differs in dtype or rank");
      for (size_t d = 0; d < od.size(); ++d)
        PTQ_CHECK(d == axis || x.dims()[d] == first.dims()[d], ModelError, "input ", k,
                  " has shape ", dims_str(x.dims()), ", incompatible with ", dims_str(first.dims()));
      od[axis] += x.dims()[axis];
    }
    const int64_t outer = numel_of(Dims(od.begin(), od.begin() + static_cast<int64_t>(axis)));
    const int64_t inner = numel_of(Dims(od.begin() + static_cast<int64_t>(axis) + 1, od.end()));
    out[0] = Tensor::empty(yt, od);
    dispatch_8bit(yt, "Y", [&](auto tag) {
      using Q = decltype(tag);
      Q* y = out[0].mutable_data<Q>();
      int64_t offset = 0;
      for (size_t k = 0; k < count; ++k) {
        const Tensor& x = *in[2 + 3 * k];
        const QParam xq = scalar_qparam(in, 3 + 3 * k, 4 + 3 * k, "X");
        const bool same = xq.scale == yq.scale && xq.zero == yq.zero;
        const std::vector<Q> table = lookup_table<Q>(xq, yq, [](float v) { return v; });
        const int64_t block = x.dims()[axis] * inner, row = od[axis] * inner;
        const Q* px = x.data<Q>();
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t j = 0; j < block; ++j)
            y[o * row + offset + j] = same ? px[o * block + j] : lookup(table, px[o * block + j]);
        offset += block;
      }
    });
  }

 private:
  int64_t axis_;
};

// Integer sum per channel, minus z_x·HW, requantized by s_x / (s_y·HW) (ORT's
// MlasQLinearGlobalAveragePool). NCHW by default; channels_last = 1 reads NHWC.
class QLinearGlobalAveragePool : public Kernel {
 public:
  explicit QLinearGlobalAveragePool(const KernelInit& init)
      : channels_last_(init.node.attr_int("channels_last", 0) != 0) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "X");
    const QParam xq = scalar_qparam(in, 1, 2, "x");
    const QParam yq = scalar_qparam(in, 3, 4, "y");
    PTQ_CHECK(X.rank() >= 3, ModelError, "X must have rank >= 3, got ", X.rank());
    const int64_t n = X.dims()[0], c = channels_last_ ? X.dims().back() : X.dims()[1];
    const int64_t hw = numel_of(X.dims()) / std::max<int64_t>(n * c, 1);
    Dims od(X.rank(), 1);
    od[0] = n;
    od[channels_last_ ? X.rank() - 1 : 1] = c;
    const float scale = xq.scale / (yq.scale * static_cast<float>(hw));
    const int32_t bias = -xq.zero * static_cast<int32_t>(hw);
    out[0] = Tensor::empty(X.dtype(), od);
    dispatch_8bit(X.dtype(), "X", [&](auto tag) {
      using Q = decltype(tag);
      const Q* x = X.data<Q>();
      Q* y = out[0].mutable_data<Q>();
      for (int64_t b = 0; b < n; ++b)
        for (int64_t ch = 0; ch < c; ++ch) {
          int32_t acc = bias;
          for (int64_t p = 0; p < hw; ++p)
            acc += channels_last_ ? x[(b * hw + p) * c + ch] : x[(b * c + ch) * hw + p];
          y[b * c + ch] = requantize<Q>(static_cast<float>(acc) * scale, yq.zero);
        }
    });
  }

 private:
  bool channels_last_;
};

// ORT dequantizes, averages in float and quantizes; so does this, through the float
// AveragePool kernel built from the same attributes.
class QLinearAveragePool : public Kernel {
 public:
  explicit QLinearAveragePool(const KernelInit& init) {
    PTQ_CHECK(init.node.attr_int("channels_last", 0) == 0, UnsupportedError,
              "QLinearAveragePool with channels_last");
    KernelFactory f = KernelRegistry::builtin().find("", "AveragePool", 19);
    PTQ_ASSERT(f != nullptr, "AveragePool kernel");
    pool_ = f(KernelInit{init.node, init.graph, 19, init.compile});
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "X");
    const QParam xq = scalar_qparam(in, 1, 2, "x");
    const QParam yq = scalar_qparam(in, 3, 4, "y");
    Tensor xf = Tensor::empty(DType::kFloat, X.dims());
    dispatch_8bit(X.dtype(), "X", [&](auto tag) {
      using Q = decltype(tag);
      const Q* x = X.data<Q>();
      float* d = xf.mutable_data<float>();
      for (size_t i = 0; i < X.numel(); ++i)
        d[i] = static_cast<float>(static_cast<int32_t>(x[i]) - xq.zero) * xq.scale;
    });
    std::vector<Tensor> pooled(1);
    pool_->run(ctx, {&xf}, pooled);
    out[0] = Tensor::empty(X.dtype(), pooled[0].dims());
    dispatch_8bit(X.dtype(), "X", [&](auto tag) {
      using Q = decltype(tag);
      const float* p = pooled[0].data<float>();
      Q* y = out[0].mutable_data<Q>();
      for (size_t i = 0; i < pooled[0].numel(); ++i) y[i] = quantize_value<Q>(p[i], yq.scale, yq.zero);
    });
  }

 private:
  std::unique_ptr<Kernel> pool_;
};

// Bytes past a MaxPool8 phase plane that pool_row may read (and ignore) on rows under 16 outputs.
constexpr int64_t kPoolSlack = 16;

// y[i] = the largest of row[t + i] over the taps t, for i < n: 32 (or 16) codes at a time with
// the maximum kept in a register across the taps; the last block overlaps the one before it
// instead of a scalar tail (max is idempotent). A running maximum in memory and the compiler's
// scalar tail (rows of 13-55 codes) had made this a fifth of squeezenet1.1's integer run.
template <typename Q>
void pool_row(const Q* __restrict row, const std::vector<int64_t>& tap, int64_t n, Q* __restrict y) {
  auto block = [&](auto v, int64_t i) {
    using V = decltype(v);
    V x, t;
    std::memcpy(&x, row + tap[0] + i, sizeof(V));
    for (size_t k = 1; k < tap.size(); ++k) {
      std::memcpy(&t, row + tap[k] + i, sizeof(V));
      x = x < t ? t : x;
    }
    std::memcpy(y + i, &x, sizeof(V));
  };
  typedef Q V32 __attribute__((vector_size(32)));
  typedef Q V16 __attribute__((vector_size(16)));
  if (n >= 32) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) block(V32{}, i);
    if (i < n) block(V32{}, n - 32);
  } else if (n >= 16) {
    block(V16{}, 0);
    block(V16{}, n - 16);
  } else if (n > 0) {
    // One 16-lane block into scratch (the plane has kPoolSlack readable bytes past every row's
    // last window), of which the first n are the outputs.
    alignas(16) Q t[16];
    V16 x, v;
    std::memcpy(&x, row + tap[0], sizeof(V16));
    for (size_t k = 1; k < tap.size(); ++k) {
      std::memcpy(&v, row + tap[k], sizeof(V16));
      x = x < v ? v : x;
    }
    std::memcpy(t, &x, sizeof(V16));
    std::memcpy(y, t, static_cast<size_t>(n));
  }
}

// MaxPool on 8-bit codes: what ORT runs for DequantizeLinear → MaxPool → QuantizeLinear with equal
// parameters (DropQDQ). The same values as the float path (dequantization is monotonic and the Q
// undoes the DQ), without converting the tensor twice. Padding reads the smallest code, which is
// what −∞ quantizes to.
class MaxPool8 : public Kernel {
 public:
  explicit MaxPool8(const KernelInit& init) : attrs_(WindowAttrs::from_node(init.node, true)) {
    PTQ_CHECK(!attrs_.kernel.empty(), ModelError, "kernel_shape is required");
    PTQ_CHECK(init.node.attr_int("storage_order", 0) == 0, UnsupportedError, "MaxPool storage_order");
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "X");
    const size_t r = X.rank();
    PTQ_CHECK(r == 3 || r == 4, UnsupportedError, "pooling over input rank ", r,
              " (only 1-D and 2-D are supported)");
    const std::vector<int64_t> sp(X.dims().begin() + 2, X.dims().end());
    const Window w = resolve_window(attrs_, sp, attrs_.kernel);
    const bool one = r == 3;
    const int64_t H = one ? 1 : sp[0], W = sp.back(), ho = one ? 1 : w.out[0], wo = w.out.back();
    const int64_t kh = one ? 1 : w.kernel[0], kw = w.kernel.back();
    const int64_t sh = one ? 1 : w.stride[0], sw = w.stride.back();
    const int64_t dh = one ? 1 : w.dilation[0], dw = w.dilation.back();
    const int64_t pt = one ? 0 : w.pad_begin[0], pl = w.pad_begin.back();
    Dims od{X.dims()[0], X.dims()[1]};
    for (int64_t o : w.out) od.push_back(o);
    out[0] = Tensor::empty(X.dtype(), od);
    // Padded plane split by column phase, so each tap of an output row reads contiguously.
    const int64_t hp = (ho - 1) * sh + (kh - 1) * dh + 1;
    const int64_t wph = ((wo - 1) * sw + (kw - 1) * dw) / sw + 1;
    dispatch_8bit(X.dtype(), "X", [&](auto tag) {
      using Q = decltype(tag);
      const Q* x = X.data<Q>();
      Q* y = out[0].mutable_data<Q>();
      parallel_blocks(ctx, od[0] * od[1], ho * wo * kh * kw, [&](int64_t i) {
        thread_local std::vector<Q> plane;
        plane.assign(static_cast<size_t>(sw * hp * wph + kPoolSlack), std::numeric_limits<Q>::min());
        const Q* xc = x + i * H * W;
        for (int64_t ph = 0; ph < sw; ++ph) {
          // Columns j of this phase read input column j·sw + ph − pl: the valid j range.
          const int64_t first = pl - ph, last = W - 1 + pl - ph;
          const int64_t jlo = first <= 0 ? 0 : (first + sw - 1) / sw;
          const int64_t jhi = std::min(wph, last < 0 ? 0 : last / sw + 1);
          for (int64_t iy = std::max<int64_t>(0, -pt); iy < H && iy + pt < hp; ++iy) {
            Q* __restrict dst = plane.data() + (ph * hp + iy + pt) * wph;
            const Q* __restrict src = xc + iy * W + ph - pl;
            if (sw == 2 && jhi > jlo) {  // the scalar strided copy was most of a 3x3/2 pool
              const int64_t avail = W - (ph - pl + 2 * jlo);  // bytes left in the row
              int8::every_second_byte(reinterpret_cast<const uint8_t*>(src + 2 * jlo), jhi - jlo, avail,
                                      reinterpret_cast<uint8_t*>(dst + jlo));
              continue;
            }
            for (int64_t j = jlo; j < jhi; ++j) dst[j] = src[j * sw];
          }
        }
        std::vector<int64_t> tap(static_cast<size_t>(kh * kw));
        for (int64_t ky = 0; ky < kh; ++ky)
          for (int64_t kx = 0; kx < kw; ++kx)
            tap[static_cast<size_t>(ky * kw + kx)] = ((kx * dw % sw) * hp + ky * dh) * wph + kx * dw / sw;
        Q* yc = y + i * ho * wo;
        for (int64_t oy = 0; oy < ho; ++oy) pool_row(plane.data() + oy * sh * wph, tap, wo, yc + oy * wo);
      });
    });
  }

 private:
  WindowAttrs attrs_;
};

}  // namespace

void register_qlinear_misc(KernelRegistry& r) {
  r.add(kMs, "QLinearAdd", 1, INT64_MAX, make_kernel<QLinearBinary<false>>);
  r.add(kMs, "QLinearMul", 1, INT64_MAX, make_kernel<QLinearBinary<true>>);
  r.add(kMs, "QLinearSigmoid", 1, INT64_MAX, make_kernel<QLinearLookup<true>>);
  r.add(kMs, "QLinearLeakyRelu", 1, INT64_MAX, make_kernel<QLinearLookup<false>>);
  r.add(kMs, "QLinearConcat", 1, INT64_MAX, make_kernel<QLinearConcat>);
  r.add(kMs, "QLinearGlobalAveragePool", 1, INT64_MAX, make_kernel<QLinearGlobalAveragePool>);
  r.add(kMs, "QLinearAveragePool", 1, INT64_MAX, make_kernel<QLinearAveragePool>);
  // Internal: the 8-bit MaxPool integer-kernel mode runs for ORT's DropQDQ MaxPool (qdq_fusion.h).
  r.add(kInt8Domain, "MaxPool", 1, INT64_MAX, make_kernel<MaxPool8>);
}

}  // namespace ptq::runtime
