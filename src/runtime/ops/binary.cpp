// Elementwise binary ops with numpy broadcasting: Add Sub Mul Div Pow Mod, comparisons, logic.
#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>

#include "common.h"

namespace ptq::runtime {
namespace {

// Applies op(a[i], b[i]) over the broadcast of a and b into out (already allocated).
template <typename A, typename B, typename R, typename Op>
void broadcast_apply(const Tensor& a, const Tensor& b, Tensor& out, Op op) {
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  R* po = out.mutable_data<R>();
  const int64_t n = static_cast<int64_t>(out.numel());
  if (n == 0) return;
  // The same-shape and scalar loops only for floating-point operands: integer and bool tensors
  // are shape arithmetic and masks (small), and the general loop below handles every case;
  // vectorizing four loops for each of 11 dtypes tripled this file's compile time.
  constexpr bool kFastPaths = std::is_floating_point_v<A> && std::is_floating_point_v<B>;
  if constexpr (kFastPaths) {
    if (a.dims() == b.dims()) {
      for (int64_t i = 0; i < n; ++i) po[i] = op(pa[i], pb[i]);
      return;
    }
    if (b.numel() == 1 && static_cast<int64_t>(a.numel()) == n) {
      const B s = pb[0];
      for (int64_t i = 0; i < n; ++i) po[i] = op(pa[i], s);
      return;
    }
    if (a.numel() == 1 && static_cast<int64_t>(b.numel()) == n) {
      const A s = pa[0];
      for (int64_t i = 0; i < n; ++i) po[i] = op(s, pb[i]);
      return;
    }
  }
  const Dims& od = out.dims();
  const size_t rank = od.size();
  if (rank == 0) {  // both inputs are scalars
    po[0] = op(pa[0], pb[0]);
    return;
  }
  const std::vector<int64_t> sa = broadcast_strides(a.dims(), od);
  const std::vector<int64_t> sb = broadcast_strides(b.dims(), od);
  const int64_t inner = od[rank - 1];
  const int64_t ia = sa[rank - 1], ib = sb[rank - 1];
  std::vector<int64_t> idx(rank, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t o = 0; o < n; o += inner) {
    for (int64_t i = 0; i < inner; ++i) po[o + i] = op(pa[oa + i * ia], pb[ob + i * ib]);
    for (size_t d = rank - 1; d-- > 0;) {
      oa += sa[d];
      ob += sb[d];
      if (++idx[d] < od[d]) break;
      oa -= sa[d] * od[d];
      ob -= sb[d] * od[d];
      idx[d] = 0;
    }
  }
}

// Signed integer Add/Sub/Mul wrap around (two's complement, as ONNX Runtime's int kernels do on
// every target) instead of overflowing, which is undefined behaviour in C++.
template <typename T, typename Op>
T wrapping(T x, T y, Op op) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // In unsigned int at least: uint16 * uint16 would otherwise promote to (overflowing) int.
    using U = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;
    return static_cast<T>(op(static_cast<U>(x), static_cast<U>(y)));
  } else {
    return T(op(x, y));
  }
}

enum class Kind { kAdd, kSub, kMul, kDiv, kPow, kMod, kEqual, kLess, kGreater, kLessOrEqual,
                  kGreaterOrEqual, kAnd, kOr, kXor };

template <Kind K>
class BinaryKernel : public Kernel {
 public:
  explicit BinaryKernel(const KernelInit& init) : fmod_(init.node.attr_int("fmod", 0) != 0) {}

  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& a = required_input(in, 0, "A");
    const Tensor& b = required_input(in, 1, "B");
    const Dims od = broadcast_dims(a.dims(), b.dims());
    if constexpr (K == Kind::kPow) {
      // The exponent may have another type; compute it in the base's type.
      PTQ_CHECK(a.dtype() == DType::kFloat || a.dtype() == DType::kDouble, UnsupportedError,
                "Pow base must be float or double, got ", dtype_name(a.dtype()));
      out[0] = new_tensor(a.dtype(), od);
      dispatch_numeric(a.dtype(), [&](auto ta) {
        using T = decltype(ta);
        if constexpr (std::is_floating_point_v<T>) {
          dispatch_numeric(b.dtype(), [&](auto tb) {
            using E = decltype(tb);
            broadcast_apply<T, E, T>(a, b, out[0], [](T x, E e) {
              return static_cast<T>(std::pow(x, static_cast<T>(e)));
            });
          });
        }
      });
      return;
    } else {
      PTQ_CHECK(a.dtype() == b.dtype(), ModelError, "input dtypes differ: ", dtype_name(a.dtype()),
                " and ", dtype_name(b.dtype()));
      constexpr bool kCompare = K >= Kind::kEqual;
      out[0] = new_tensor(kCompare ? DType::kBool : a.dtype(), od);
      dispatch_numeric(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        if constexpr (K >= Kind::kAnd) {
          PTQ_CHECK((std::is_same_v<T, bool>), ModelError, "logical ops need bool inputs");
          if constexpr (std::is_same_v<T, bool>) {
            if constexpr (K == Kind::kAnd) broadcast_apply<T, T, bool>(a, b, out[0], std::logical_and<>());
            if constexpr (K == Kind::kOr) broadcast_apply<T, T, bool>(a, b, out[0], std::logical_or<>());
            if constexpr (K == Kind::kXor) broadcast_apply<T, T, bool>(a, b, out[0], std::not_equal_to<>());
          }
        } else if constexpr (kCompare) {
          if constexpr (K == Kind::kEqual) broadcast_apply<T, T, bool>(a, b, out[0], std::equal_to<>());
          if constexpr (K == Kind::kLess) broadcast_apply<T, T, bool>(a, b, out[0], std::less<>());
          if constexpr (K == Kind::kGreater) broadcast_apply<T, T, bool>(a, b, out[0], std::greater<>());
          if constexpr (K == Kind::kLessOrEqual) broadcast_apply<T, T, bool>(a, b, out[0], std::less_equal<>());
          if constexpr (K == Kind::kGreaterOrEqual)
            broadcast_apply<T, T, bool>(a, b, out[0], std::greater_equal<>());
        } else {
          PTQ_CHECK((!std::is_same_v<T, bool>), ModelError, "arithmetic on bool tensors");
          if constexpr (!std::is_same_v<T, bool>) arithmetic<T>(a, b, out[0]);
        }
      });
    }
  }

 private:
  template <typename T>
  void arithmetic(const Tensor& a, const Tensor& b, Tensor& o) const {
    if constexpr (K == Kind::kAdd) broadcast_apply<T, T, T>(a, b, o, [](T x, T y) { return wrapping(x, y, std::plus<>()); });
    if constexpr (K == Kind::kSub) broadcast_apply<T, T, T>(a, b, o, [](T x, T y) { return wrapping(x, y, std::minus<>()); });
    if constexpr (K == Kind::kMul) broadcast_apply<T, T, T>(a, b, o, [](T x, T y) { return wrapping(x, y, std::multiplies<>()); });
    if constexpr (K == Kind::kDiv) {
      if constexpr (std::is_integral_v<T>) {
        // Integer Div truncates; division by zero is rejected rather than crashing.
        broadcast_apply<T, T, T>(a, b, o, [](T x, T y) {
          PTQ_CHECK(y != 0, ModelError, "integer division by zero");
          // INT_MIN / -1 overflows (SIGFPE on x86): wrap to INT_MIN as two's complement does.
          if constexpr (std::is_signed_v<T>)
            if (y == T(-1)) return wrapping(T(0), x, std::minus<>());
          return T(x / y);
        });
      } else {
        broadcast_apply<T, T, T>(a, b, o, [](T x, T y) { return T(x / y); });
      }
    }
    if constexpr (K == Kind::kMod) {
      if constexpr (std::is_integral_v<T>) {
        const bool f = fmod_;
        broadcast_apply<T, T, T>(a, b, o, [f](T x, T y) {
          PTQ_CHECK(y != 0, ModelError, "integer modulo by zero");
          if constexpr (std::is_signed_v<T>)
            if (y == T(-1)) return T(0);  // INT_MIN % -1 traps on x86; the remainder is 0
          T r = T(x % y);
          // fmod=0 follows Python: the result takes the divisor's sign.
          if (!f && r != 0 && ((r < 0) != (y < 0))) r = wrapping(r, y, std::plus<>());
          return r;
        });
      } else {
        PTQ_CHECK(fmod_, ModelError, "Mod on floating point inputs requires fmod=1");
        broadcast_apply<T, T, T>(a, b, o, [](T x, T y) { return T(std::fmod(x, y)); });
      }
    }
  }
  bool fmod_;
};

}  // namespace

void register_binary(KernelRegistry& r) {
  r.add("Add", make_kernel<BinaryKernel<Kind::kAdd>>);
  r.add("Sub", make_kernel<BinaryKernel<Kind::kSub>>);
  r.add("Mul", make_kernel<BinaryKernel<Kind::kMul>>);
  r.add("Div", make_kernel<BinaryKernel<Kind::kDiv>>);
  r.add("Pow", make_kernel<BinaryKernel<Kind::kPow>>);
  r.add("Mod", make_kernel<BinaryKernel<Kind::kMod>>);
  r.add("Equal", make_kernel<BinaryKernel<Kind::kEqual>>);
  r.add("Less", make_kernel<BinaryKernel<Kind::kLess>>);
  r.add("Greater", make_kernel<BinaryKernel<Kind::kGreater>>);
  r.add("LessOrEqual", make_kernel<BinaryKernel<Kind::kLessOrEqual>>);
  r.add("GreaterOrEqual", make_kernel<BinaryKernel<Kind::kGreaterOrEqual>>);
  r.add("And", make_kernel<BinaryKernel<Kind::kAnd>>);
  r.add("Or", make_kernel<BinaryKernel<Kind::kOr>>);
  r.add("Xor", make_kernel<BinaryKernel<Kind::kXor>>);
}

}  // namespace ptq::runtime
