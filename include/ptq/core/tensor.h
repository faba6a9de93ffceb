// A dense tensor: dtype, dims and shared little-endian storage (strings kept separately).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ptq/core/dtype.h"

namespace ptq {

using Dims = std::vector<int64_t>;

// Element count of a shape; throws ModelError on negative dims or overflow past `limit`.
size_t checked_numel(const Dims& dims, size_t limit = SIZE_MAX / 16);

class Tensor {
 public:
  Tensor() = default;
  // Uninitialized storage for dims (use zeros() when contents matter).
  static Tensor empty(DType dtype, Dims dims);
  static Tensor zeros(DType dtype, Dims dims);
  // Copies `nbytes` bytes; nbytes must equal the packed size of dims.
  static Tensor from_bytes(DType dtype, Dims dims, const void* data, size_t nbytes);
  // Wraps memory owned elsewhere (e.g. an mmap); `owner` keeps it alive.
  static Tensor wrap(DType dtype, Dims dims, std::shared_ptr<const void> owner, const void* data);
  static Tensor from_strings(Dims dims, std::vector<std::string> values);
  template <typename T>
  static Tensor from_vector(Dims dims, const std::vector<T>& values) {
    return from_bytes(DTypeOf<T>::value, std::move(dims), values.data(), values.size() * sizeof(T));
  }
  template <typename T>
  static Tensor scalar(T v) { return from_bytes(DTypeOf<T>::value, {}, &v, sizeof(T)); }

  DType dtype() const { return dtype_; }
  const Dims& dims() const { return dims_; }
  size_t rank() const { return dims_.size(); }
  size_t numel() const { return numel_; }
  size_t nbytes() const { return nbytes_; }
  bool is_string() const { return dtype_ == DType::kString; }

  const void* raw() const { return data_; }
  void* mutable_raw();
  template <typename T> const T* data() const { return static_cast<const T*>(data_); }
  template <typename T> T* mutable_data() { return static_cast<T*>(mutable_raw()); }
  const std::vector<std::string>& strings() const { return strings_; }
  // Reinterprets the same storage with new dims of equal element count.
  Tensor reshaped(Dims dims) const;
  // True when dtype, dims and bytes (or strings) are identical.
  bool bit_equal(const Tensor& other) const;

  // Optional ONNX metadata carried for round trips.
  std::string name;
  std::string doc_string;

 private:
  DType dtype_ = DType::kUndefined;
  Dims dims_;
  size_t numel_ = 0;
  size_t nbytes_ = 0;
  std::shared_ptr<const void> owner_;
  const void* data_ = nullptr;
  bool owned_mutable_ = false;
  std::vector<std::string> strings_;
};

}  // namespace ptq
