// Tensor storage and shape arithmetic.
#include "ptq/core/tensor.h"

#include <cstring>

#include "ptq/core/error.h"

namespace ptq {

size_t checked_numel(const Dims& dims, size_t limit) {
  size_t n = 1;
  for (int64_t d : dims) {
    PTQ_CHECK(d >= 0, ModelError, "negative dimension ", d);
    if (d == 0) return 0;
    PTQ_CHECK(n <= limit / static_cast<size_t>(d), ModelError,
              "tensor shape is too large (more than ", limit, " elements)");
    n *= static_cast<size_t>(d);
  }
  return n;
}

Tensor Tensor::empty(DType dtype, Dims dims) {
  Tensor t;
  t.dtype_ = dtype;
  t.numel_ = checked_numel(dims);
  t.dims_ = std::move(dims);
  PTQ_ASSERT(dtype != DType::kString, "use from_strings for string tensors");
  t.nbytes_ = dtype_storage_bytes(dtype, t.numel_);
  // +1 so that zero-sized tensors still have a distinct, valid pointer.
  std::shared_ptr<uint8_t[]> buf(new uint8_t[t.nbytes_ + 1]);
  t.data_ = buf.get();
  t.owner_ = std::shared_ptr<const void>(buf, buf.get());
  t.owned_mutable_ = true;
  return t;
}

Tensor Tensor::zeros(DType dtype, Dims dims) {
  Tensor t = empty(dtype, std::move(dims));
  std::memset(t.mutable_raw(), 0, t.nbytes_);
  return t;
}

Tensor Tensor::from_bytes(DType dtype, Dims dims, const void* data, size_t nbytes) {
  Tensor t = empty(dtype, std::move(dims));
  PTQ_CHECK(nbytes == t.nbytes_, ModelError, "tensor data has ", nbytes, " bytes, shape needs ",
            t.nbytes_);
  if (nbytes) std::memcpy(t.mutable_raw(), data, nbytes);
  return t;
}

Tensor Tensor::wrap(DType dtype, Dims dims, std::shared_ptr<const void> owner, const void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.numel_ = checked_numel(dims);
  t.dims_ = std::move(dims);
  t.nbytes_ = dtype_storage_bytes(dtype, t.numel_);
  t.owner_ = std::move(owner);
  t.data_ = data;
  return t;
}

Tensor Tensor::from_strings(Dims dims, std::vector<std::string> values) {
  Tensor t;
  t.dtype_ = DType::kString;
  t.numel_ = checked_numel(dims);
  t.dims_ = std::move(dims);
  PTQ_CHECK(values.size() == t.numel_, ModelError, "string tensor has ", values.size(),
            " values, shape needs ", t.numel_);
  t.strings_ = std::move(values);
  return t;
}

void* Tensor::mutable_raw() {
  if (!owned_mutable_ || owner_.use_count() > 1) {
    // Copy on write: wrapped or shared storage is never modified in place.
    Tensor copy = empty(dtype_, dims_);
    if (nbytes_) std::memcpy(copy.mutable_raw(), data_, nbytes_);
    owner_ = std::move(copy.owner_);
    data_ = copy.data_;
    owned_mutable_ = true;
  }
  return const_cast<void*>(data_);
}

Tensor Tensor::reshaped(Dims dims) const {
  Tensor t = *this;
  PTQ_CHECK(checked_numel(dims) == numel_, ModelError, "cannot reshape ", numel_, " elements");
  t.dims_ = std::move(dims);
  return t;
}

bool Tensor::bit_equal(const Tensor& o) const {
  if (dtype_ != o.dtype_ || dims_ != o.dims_) return false;
  if (is_string()) return strings_ == o.strings_;
  return nbytes_ == o.nbytes_ && (nbytes_ == 0 || std::memcmp(data_, o.data_, nbytes_) == 0);
}

}  // namespace ptq
