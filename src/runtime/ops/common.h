// Helpers shared by kernels: attribute and input checks, axes, broadcasting, shape arithmetic.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ptq/core/error.h"
#include "ptq/core/tensor.h"
#include "ptq/runtime/kernel.h"
#include "ptq/runtime/kernel_registry.h"

namespace ptq::runtime {

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

// Kernels allocate outputs and scratch through these: a tensor over this many elements is an
// UnsupportedError naming the shape (the interpreter adds the node), not a bare "out of memory"
// (a 200-byte model with ConstantOfShape([1, 2^40]) asked for 4 TiB).
constexpr int64_t kMaxTensorElements = int64_t{1} << 28;  // 1 GiB of float
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
