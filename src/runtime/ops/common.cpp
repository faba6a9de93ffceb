// Shared kernel helpers (see common.h).
#include "common.h"

#include <atomic>
#include <cstring>

namespace ptq::runtime {

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  PTQ_CHECK(!__builtin_mul_overflow(a, b, &r), ModelError, what, ": ", a, " * ", b, " overflows int64");
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  PTQ_CHECK(!__builtin_add_overflow(a, b, &r), ModelError, what, ": ", a, " + ", b, " overflows int64");
  return r;
}

int64_t numel_of(const Dims& d) {
  int64_t n = 1;
  for (int64_t x : d) {
    PTQ_CHECK(x >= 0, ModelError, "negative dimension in shape ", dims_str(d));
    int64_t r = 0;
    PTQ_CHECK(!__builtin_mul_overflow(n, x, &r), ModelError, "shape ", dims_str(d), " has more than 2^63 elements");
    n = r;
  }
  return n;
}

namespace {
std::atomic<int64_t> g_max_elements{int64_t{1} << 28};

void check_size(const Dims& dims) {
  const int64_t n = numel_of(dims);
  PTQ_CHECK(n <= max_tensor_elements(), UnsupportedError, "output shape ", dims_str(dims), " has ", n,
            " elements, more than the runtime's limit of ", max_tensor_elements());
}
}  // namespace

int64_t max_tensor_elements() { return g_max_elements.load(std::memory_order_relaxed); }
void set_max_tensor_elements(int64_t n) { g_max_elements.store(n, std::memory_order_relaxed); }

Tensor new_tensor(DType dtype, const Dims& dims) {
  check_size(dims);
  return Tensor::empty(dtype, dims);
}

Tensor new_zeros(DType dtype, const Dims& dims) {
  check_size(dims);
  return Tensor::zeros(dtype, dims);
}

std::vector<int64_t> strides_of(const Dims& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

int64_t normalize_axis(int64_t axis, int64_t rank, const char* what) {
  PTQ_CHECK(axis >= -rank && axis < std::max<int64_t>(rank, 1), ModelError, what, " ", axis,
            " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

std::string dims_str(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(d[i]);
  }
  return s + "]";
}

Dims broadcast_dims(const Dims& a, const Dims& b) {
  const size_t r = std::max(a.size(), b.size());
  Dims out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t x = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t y = i < r - b.size() ? 1 : b[i - (r - b.size())];
    PTQ_CHECK(x == y || x == 1 || y == 1, ModelError, "shapes ", dims_str(a), " and ", dims_str(b),
              " do not broadcast");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

std::vector<int64_t> broadcast_strides(const Dims& in, const Dims& out) {
  std::vector<int64_t> s(out.size(), 0);
  const std::vector<int64_t> own = strides_of(in);
  const size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[off + i] = in[i] == 1 ? 0 : own[i];
  return s;
}

std::vector<int64_t> int_values(const Tensor& t, const char* what) {
  std::vector<int64_t> v(t.numel());
  if (t.dtype() == DType::kInt64) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = t.data<int64_t>()[i];
  } else if (t.dtype() == DType::kInt32) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = t.data<int32_t>()[i];
  } else {
    PTQ_CHECK(false, ModelError, what, " must be int64 or int32, got ", dtype_name(t.dtype()));
  }
  return v;
}

double scalar_value(const Tensor& t, const char* what) {
  PTQ_CHECK(t.numel() == 1, ModelError, what, " must have one element, got shape ", dims_str(t.dims()));
  double r = 0;
  dispatch_numeric(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    r = static_cast<double>(t.data<T>()[0]);
  });
  return r;
}

const Tensor& required_input(const std::vector<const Tensor*>& inputs, size_t i, const char* what) {
  PTQ_CHECK(i < inputs.size() && inputs[i], ModelError, "missing required input ", i, " (", what, ")");
  return *inputs[i];
}

const Tensor& float_input(const std::vector<const Tensor*>& inputs, size_t i, const char* what) {
  const Tensor& t = required_input(inputs, i, what);
  PTQ_CHECK(t.dtype() == DType::kFloat, UnsupportedError, "input ", i, " (", what,
            ") has dtype ", dtype_name(t.dtype()), "; only float is supported");
  return t;
}

void strided_copy(const void* in, const std::vector<int64_t>& in_strides, int64_t in_offset,
                  void* out, const Dims& out_dims, size_t esize) {
  const size_t rank = out_dims.size();
  const int64_t total = numel_of(out_dims);
  if (total == 0) return;
  const char* src = static_cast<const char*>(in);
  char* dst = static_cast<char*>(out);
  if (rank == 0) {
    std::memcpy(dst, src + in_offset * static_cast<int64_t>(esize), esize);
    return;
  }
  const int64_t inner = out_dims[rank - 1];
  const int64_t inner_stride = in_strides[rank - 1];
  std::vector<int64_t> idx(rank, 0);
  int64_t base = in_offset;
  for (int64_t o = 0; o < total; o += inner) {
    if (inner_stride == 1) {
      std::memcpy(dst, src + base * static_cast<int64_t>(esize), static_cast<size_t>(inner) * esize);
      dst += inner * static_cast<int64_t>(esize);
    } else {
      for (int64_t i = 0; i < inner; ++i, dst += esize)
        std::memcpy(dst, src + (base + i * inner_stride) * static_cast<int64_t>(esize), esize);
    }
    // Advance the outer index (all but the last dimension), odometer style.
    for (size_t d = rank - 1; d-- > 0;) {
      base += in_strides[d];
      if (++idx[d] < out_dims[d]) break;
      base -= in_strides[d] * out_dims[d];
      idx[d] = 0;
    }
  }
}

}  // namespace ptq::runtime
