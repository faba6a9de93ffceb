// NumPy .npy files (versions 1.0/2.0/3.0, little-endian, C order) to and from Tensor.
#pragma once

#include <cstddef>
#include <string>

#include "ptq/core/tensor.h"

namespace ptq {

// Reads a .npy file. Supported descr: <f4 <f8 |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8 |b1 (and '<'/'='
// spellings of the one-byte types). Every header field is validated and the declared size is
// checked against the file length before anything is allocated. Errors are IoError naming the file.
Tensor read_npy(const std::string& path);

// The same from bytes in memory (e.g. a member of an .npz); `label` names it in errors.
Tensor read_npy_bytes(const void* data, size_t size, const std::string& label);

// Writes `t` as a version 1.0 .npy (2.0 if the header needs it) through AtomicFile.
// IoError for dtypes .npy cannot hold here (strings, 4-bit, float16, ...).
void write_npy(const std::string& path, const Tensor& t);

}  // namespace ptq
