// Helpers shared by kernels: attribute and input checks, axes, broadcasting, shape arithmetic.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ptq/core/error.h"
#include "ptq/core/tensor.h"
#include "ptq/runtime/kernel.h"
#include "ptq/runtime/kernel_registry.h"
#include "ptq/runtime/limits.h"

namespace ptq::runtime {

// Runs fn(i) for i in [0, count) as pool tasks of consecutive indices, about `work` units each
// when one index costs `unit` (at least one index per task). A 7x7 plane per task cost more in
// hand-offs than in arithmetic (2 threads ran such layers slower than 1). The split follows the
// shape only, and each index is computed alone, so results do not depend on the thread count.
template <typename F>
void parallel_blocks(const KernelContext& ctx, int64_t count, int64_t unit, F&& fn, int64_t work = 4096) {
  const int64_t per = std::max<int64_t>(1, work / std::max<int64_t>(unit, 1));
  ctx.parallel_for(static_cast<size_t>((count + per - 1) / per), [&](size_t t) {
    const int64_t begin = static_cast<int64_t>(t) * per, end = std::min(count, begin + per);
    for (int64_t i = begin; i < end; ++i) fn(i);
  });
}

// Wraps a kernel class constructible from KernelInit as a registry factory.
template <typename K>
std::unique_ptr<Kernel> make_kernel(const KernelInit& init) {
  return std::make_unique<K>(init);
}

// a * b and a + b, or ModelError naming `what` when the int64 result overflows (hostile
// attributes such as pads of 2^62 or Slice steps of INT64_MIN must not be undefined behaviour).
int64_t checked_mul(int64_t a, int64_t b, const char* what = "shape arithmetic");
int64_t checked_add(int64_t a, int64_t b, const char* what = "shape arithmetic");

// Element count of a shape; ModelError on a negative dim or int64 overflow.
int64_t numel_of(const Dims& d);

// Kernels allocate outputs and scratch through these: a tensor over max_tensor_elements() is an
// UnsupportedError naming the shape (the interpreter adds the node), not a bare "out of memory"
// (a 200-byte model with ConstantOfShape([1, 2^40]) asked for 4 TiB).
Tensor new_tensor(DType dtype, const Dims& dims);
Tensor new_zeros(DType dtype, const Dims& dims);

// Row-major strides of dims (in elements).
std::vector<int64_t> strides_of(const Dims& dims);

// Normalizes a possibly negative axis into [0, rank); ModelError naming `what` otherwise.
int64_t normalize_axis(int64_t axis, int64_t rank, const char* what = "axis");

// numpy multidirectional broadcasting of two shapes; ModelError when incompatible.
Dims broadcast_dims(const Dims& a, const Dims& b);

// Strides of `in` when read as a tensor of shape `out` (0 along broadcast dimensions).
std::vector<int64_t> broadcast_strides(const Dims& in, const Dims& out);

// The integer contents of an int64/int32 tensor (shape inputs such as Reshape's shape).
std::vector<int64_t> int_values(const Tensor& t, const char* what);

// The scalar value of a float/double/int tensor with one element, as double.
double scalar_value(const Tensor& t, const char* what);

// Checks inputs[i] exists and has dtype float.
const Tensor& float_input(const std::vector<const Tensor*>& inputs, size_t i, const char* what);
// Checks inputs[i] exists.
const Tensor& required_input(const std::vector<const Tensor*>& inputs, size_t i, const char* what);
// inputs[i] or nullptr when omitted or beyond the list.
inline const Tensor* optional_input(const std::vector<const Tensor*>& inputs, size_t i) {
  return i < inputs.size() ? inputs[i] : nullptr;
}

// Element i of an int32 or int64 tensor (index, length and mask inputs accept both).
inline int64_t int_at(const Tensor& t, size_t i) {
  return t.dtype() == DType::kInt64 ? t.data<int64_t>()[i] : t.data<int32_t>()[i];
}

// The domain of ONNX Runtime's contrib operators.
constexpr const char* kMs = "com.microsoft";

std::string dims_str(const Dims& d);

// Calls f(element tag) with the C++ type of a dtype among the ones kernels support generically.
template <typename F>
void dispatch_numeric(DType t, F&& f) {
  switch (t) {
    case DType::kFloat: f(float{}); break;
    case DType::kDouble: f(double{}); break;
    case DType::kInt64: f(int64_t{}); break;
    case DType::kInt32: f(int32_t{}); break;
    case DType::kInt8: f(int8_t{}); break;
    case DType::kUint8: f(uint8_t{}); break;
    case DType::kInt16: f(int16_t{}); break;
    case DType::kUint16: f(uint16_t{}); break;
    case DType::kUint32: f(uint32_t{}); break;
    case DType::kUint64: f(uint64_t{}); break;
    case DType::kBool: f(bool{}); break;
    default:
      PTQ_CHECK(false, UnsupportedError, "dtype ", dtype_name(t), " is not supported here");
  }
}

// Copies elements of `in` (element size `esize`) into `out` with shape `out_dims`, reading `in`
// through `in_strides` (elements; 0 broadcasts). Used by Expand, Transpose, Slice, Concat.
void strided_copy(const void* in, const std::vector<int64_t>& in_strides, int64_t in_offset,
                  void* out, const Dims& out_dims, size_t esize);

}  // namespace ptq::runtime
