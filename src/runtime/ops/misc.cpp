// Cast, Where, Range, Tile and Pad (constant/reflect/edge/wrap; pads as attribute < 11, input >= 11).
#include <algorithm>
#include <cmath>
#include <cstring>

#include <limits>

#include "common.h"

namespace ptq::runtime {
namespace {

// float -> int out of range (or NaN) is undefined behaviour in C++; ONNX leaves the value
// unspecified: saturate (NaN -> 0), so hostile data cannot reach the undefined cast.
template <typename O, typename I>
O float_to_int(I v) {
  if (!(v == v)) return O(0);
  const long double x = static_cast<long double>(v);
  if (x <= static_cast<long double>(std::numeric_limits<O>::min())) return std::numeric_limits<O>::min();
  if (x >= static_cast<long double>(std::numeric_limits<O>::max())) return std::numeric_limits<O>::max();
  return static_cast<O>(v);
}

class Cast : public Kernel {
 public:
  explicit Cast(const KernelInit& init) : to_(static_cast<DType>(init.node.attr_int("to", 0))) {
    bool ok = false;
    dispatch_numeric(to_ == DType::kUndefined ? DType::kFloat : to_, [&](auto) { ok = true; });
    PTQ_CHECK(ok && to_ != DType::kUndefined, ModelError, "Cast needs a `to` attribute");
  }
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "input");
    if (X.dtype() == to_) {
      out[0] = X;
      return;
    }
    out[0] = new_tensor(to_, X.dims());
    dispatch_numeric(X.dtype(), [&](auto ti) {
      using I = decltype(ti);
      dispatch_numeric(to_, [&](auto to) {
        using O = decltype(to);
        const I* x = X.data<I>();
        O* y = out[0].mutable_data<O>();
        // float -> int truncates toward zero (C semantics), as ONNX specifies.
        for (size_t i = 0; i < X.numel(); ++i) {
          if constexpr (std::is_same_v<O, bool>) y[i] = x[i] != I(0);
          else if constexpr (std::is_floating_point_v<I> && std::is_integral_v<O>) y[i] = float_to_int<O>(x[i]);
          else y[i] = static_cast<O>(x[i]);
        }
      });
    });
  }

 private:
  DType to_;
};

class Where : public Kernel {
 public:
  explicit Where(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& C = required_input(in, 0, "condition");
    const Tensor& X = required_input(in, 1, "X");
    const Tensor& Y = required_input(in, 2, "Y");
    PTQ_CHECK(C.dtype() == DType::kBool && X.dtype() == Y.dtype(), ModelError,
              "Where needs a bool condition and X, Y of one dtype");
    const Dims od = broadcast_dims(broadcast_dims(C.dims(), X.dims()), Y.dims());
    const size_t es = static_cast<size_t>(dtype_bits(X.dtype()) / 8);
    PTQ_CHECK(es > 0, UnsupportedError, "Where on ", dtype_name(X.dtype()));
    // Broadcast all three to the output shape, then select.
    std::vector<char> c(static_cast<size_t>(numel_of(od)));
    Tensor xb = new_tensor(X.dtype(), od), yb = new_tensor(X.dtype(), od);
    strided_copy(C.raw(), broadcast_strides(C.dims(), od), 0, c.data(), od, 1);
    strided_copy(X.raw(), broadcast_strides(X.dims(), od), 0, xb.mutable_raw(), od, es);
    strided_copy(Y.raw(), broadcast_strides(Y.dims(), od), 0, yb.mutable_raw(), od, es);
    char* px = static_cast<char*>(xb.mutable_raw());
    const char* py = static_cast<const char*>(yb.raw());
    for (size_t i = 0; i < c.size(); ++i)
      if (!c[i]) std::memcpy(px + i * es, py + i * es, es);
    out[0] = xb;
  }
};

class Range : public Kernel {
 public:
  explicit Range(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& S = required_input(in, 0, "start");
    dispatch_numeric(S.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!std::is_same_v<T, bool>) {
        const T s = static_cast<T>(scalar_value(S, "start"));
        const T l = static_cast<T>(scalar_value(required_input(in, 1, "limit"), "limit"));
        const T d = static_cast<T>(scalar_value(required_input(in, 2, "delta"), "delta"));
        PTQ_CHECK(d != T(0), ModelError, "delta must not be 0");
        const double n = std::ceil((static_cast<double>(l) - static_cast<double>(s)) / static_cast<double>(d));
        // Checked in double before the cast: a huge or NaN count is undefined behaviour as int64.
        PTQ_CHECK(!(n > static_cast<double>(max_tensor_elements())), UnsupportedError, "Range from ",
                  static_cast<double>(s), " to ", static_cast<double>(l), " by ", static_cast<double>(d),
                  " has more than ", max_tensor_elements(), " elements");
        const int64_t count = n > 0 ? static_cast<int64_t>(n) : 0;
        out[0] = new_tensor(S.dtype(), {count});
        T* y = out[0].mutable_data<T>();
        for (int64_t i = 0; i < count; ++i) y[i] = static_cast<T>(s + static_cast<T>(i) * d);
      }
    });
  }
};

class Tile : public Kernel {
 public:
  explicit Tile(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "input");
    const std::vector<int64_t> reps = int_values(required_input(in, 1, "repeats"), "repeats");
    PTQ_CHECK(reps.size() == X.rank(), ModelError, "repeats has ", reps.size(), " entries for rank ", X.rank());
    // Viewed as [r0, d0, r1, d1, ...] with stride 0 on the repeat axes.
    Dims vd, od;
    std::vector<int64_t> st;
    const std::vector<int64_t> xs = strides_of(X.dims());
    for (size_t i = 0; i < reps.size(); ++i) {
      PTQ_CHECK(reps[i] >= 0, ModelError, "negative repeat");
      vd.push_back(reps[i]);
      vd.push_back(X.dims()[i]);
      st.push_back(0);
      st.push_back(xs[i]);
      od.push_back(checked_mul(reps[i], X.dims()[i], "repeats"));
    }
    out[0] = new_tensor(X.dtype(), od);
    strided_copy(X.raw(), st, 0, out[0].mutable_raw(), vd, static_cast<size_t>(dtype_bits(X.dtype()) / 8));
  }
};

class Pad : public Kernel {
 public:
  explicit Pad(const KernelInit& init)
      : legacy_(init.opset < 11), mode_(init.node.attr_string("mode", "constant")),
        pads_(init.node.attr_ints("pads")), value_(init.node.attr_float("value", 0.f)) {
    PTQ_CHECK(mode_ == "constant" || mode_ == "reflect" || mode_ == "edge" ||
                  (mode_ == "wrap" && init.opset >= 19),
              ModelError, "Pad mode '", mode_, "' is not supported at opset ", init.opset);
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "data");
    const int64_t r = static_cast<int64_t>(X.rank());
    std::vector<int64_t> pads = pads_;
    std::vector<int64_t> axes;
    Tensor value = Tensor::scalar<float>(value_);
    if (!legacy_) {
      pads = int_values(required_input(in, 1, "pads"), "pads");
      if (const Tensor* v = optional_input(in, 2); v && v->numel() > 0) value = *v;
      if (const Tensor* a = optional_input(in, 3)) axes = int_values(*a, "axes");
    }
    if (axes.empty())
      for (int64_t i = 0; i < r; ++i) axes.push_back(i);
    PTQ_CHECK(pads.size() == 2 * axes.size(), ModelError, "pads has ", pads.size(), " values for ",
              axes.size(), " axes");
    std::vector<int64_t> pb(static_cast<size_t>(r), 0), pe(static_cast<size_t>(r), 0);
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t a = static_cast<size_t>(normalize_axis(axes[i], r));
      pb[a] = pads[i];
      pe[a] = pads[i + axes.size()];
    }
    const size_t es = static_cast<size_t>(dtype_bits(X.dtype()) / 8);
    PTQ_CHECK(es > 0, UnsupportedError, "Pad on ", dtype_name(X.dtype()));
    // The fill value in X's dtype.
    std::vector<char> fill(es, 0);
    dispatch_numeric(X.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T v = static_cast<T>(scalar_value(value, "constant_value"));
      std::memcpy(fill.data(), &v, es);
    });
    // Per axis: output index -> input index, or -1 for the constant fill.
    Dims od(static_cast<size_t>(r));
    std::vector<std::vector<int64_t>> src(static_cast<size_t>(r));
    for (size_t a = 0; a < static_cast<size_t>(r); ++a) {
      od[a] = checked_add(checked_add(X.dims()[a], pb[a], "pads"), pe[a], "pads");
      PTQ_CHECK(od[a] >= 0, ModelError, "negative output dim on axis ", a);
      // Bounded per axis too: the index maps below have od[a] entries even when another axis is 0.
      PTQ_CHECK(od[a] <= max_tensor_elements(), UnsupportedError, "padded axis ", a, " has ", od[a],
                " elements, more than the runtime's limit of ", max_tensor_elements());
    }
    out[0] = new_tensor(X.dtype(), od);
    for (size_t a = 0; a < static_cast<size_t>(r); ++a) {
      const int64_t d = X.dims()[a];
      PTQ_CHECK(mode_ == "constant" || d > 0 || od[a] == 0, ModelError, "cannot ", mode_,
                "-pad an empty axis");
      for (int64_t o = 0; o < od[a]; ++o) {
        int64_t i = o - pb[a];
        if (i < 0 || i >= d) {
          if (mode_ == "constant") i = -1;
          else if (mode_ == "edge") i = std::clamp<int64_t>(i, 0, d - 1);
          else if (mode_ == "wrap") i = ((i % d) + d) % d;
          else if (d == 1) i = 0;
          else {
            const int64_t period = 2 * (d - 1);
            i = ((i % period) + period) % period;
            if (i >= d) i = period - i;
          }
        }
        src[a].push_back(i);
      }
    }
    const int64_t total = numel_of(od);
    if (total == 0) return;
    const std::vector<int64_t> xs = strides_of(X.dims());
    const char* x = static_cast<const char*>(X.raw());
    char* y = static_cast<char*>(out[0].mutable_raw());
    if (r == 0) {
      std::memcpy(y, x, es);
      return;
    }
    // Row by row along the last axis: its inner run [lo, hi) maps to consecutive input elements
    // and is one memcpy; only the padded ends and padded rows are filled element-wise.
    const size_t last = static_cast<size_t>(r) - 1;
    const int64_t width = od[last], d_last = X.dims()[last];
    const int64_t lo = std::clamp<int64_t>(pb[last], 0, width);
    const int64_t hi = std::clamp<int64_t>(pb[last] + d_last, lo, width);
    const bool constant = mode_ == "constant";
    const bool zero_fill = std::all_of(fill.begin(), fill.end(), [](char c) { return c == 0; });
    const auto fill_run = [&](char* at, int64_t n) {
      if (zero_fill) std::memset(at, 0, static_cast<size_t>(n) * es);
      else for (int64_t k = 0; k < n; ++k) std::memcpy(at + static_cast<size_t>(k) * es, fill.data(), es);
    };
    const int64_t rows = total / width;
    // Blocks of rows on the pool (a copy: the result does not depend on the split). One thread
    // for 17 Pads was a quarter of efficientnet-lite0's fp32 run at 2 threads.
    const int64_t per = std::max<int64_t>(1, 16384 / std::max<int64_t>(width, 1));
    ctx.parallel_for(static_cast<size_t>((rows + per - 1) / per), [&](size_t t) {
      const int64_t b0 = static_cast<int64_t>(t) * per, b1 = std::min(rows, b0 + per);
      std::vector<int64_t> idx(last, 0);
      for (size_t a = last, rest = static_cast<size_t>(b0); a-- > 0;) {  // row b0's index
        idx[a] = static_cast<int64_t>(rest % static_cast<size_t>(od[a]));
        rest /= static_cast<size_t>(od[a]);
      }
      for (int64_t row = b0; row < b1; ++row) {
        char* yr = y + static_cast<size_t>(row * width) * es;
        int64_t off = 0;
        bool pad = false;
        for (size_t a = 0; a < last; ++a) {
          const int64_t i = src[a][static_cast<size_t>(idx[a])];
          if (i < 0) pad = true;
          off += i * xs[a];
        }
        if (pad) {
          fill_run(yr, width);
        } else {
          const auto gather = [&](int64_t o) {
            const int64_t i = src[last][static_cast<size_t>(o)];
            std::memcpy(yr + static_cast<size_t>(o) * es, i < 0 ? fill.data() : x + static_cast<size_t>(off + i) * es, es);
          };
          if (constant) fill_run(yr, lo);
          else for (int64_t o = 0; o < lo; ++o) gather(o);
          if (hi > lo)
            std::memcpy(yr + static_cast<size_t>(lo) * es, x + static_cast<size_t>(off + lo - pb[last]) * es,
                        static_cast<size_t>(hi - lo) * es);
          if (constant) fill_run(yr + static_cast<size_t>(hi) * es, width - hi);
          else for (int64_t o = hi; o < width; ++o) gather(o);
        }
        for (size_t a = last; a-- > 0;) {
          if (++idx[a] < od[a]) break;
          idx[a] = 0;
        }
      }
    });
  }

 private:
  bool legacy_;
  std::string mode_;
  std::vector<int64_t> pads_;
  float value_;
};

}  // namespace

void register_misc(KernelRegistry& r) {
  r.add("", "Cast", 6, INT64_MAX, make_kernel<Cast>);
  r.add("Where", make_kernel<Where>);
  r.add("Range", make_kernel<Range>);
  r.add("", "Tile", 6, INT64_MAX, make_kernel<Tile>);
  r.add("", "Pad", 2, INT64_MAX, make_kernel<Pad>);
}

}  // namespace ptq::runtime
