// NumPy .npz archives (zip of .npy members, stored or deflated) read as named tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"

namespace ptq::data {

struct NamedTensor {
  std::string name;  // member name without ".npy"
  Tensor tensor;
};

// Members larger than this (uncompressed) are refused before anything is allocated.
constexpr uint64_t kMaxNpzMemberBytes = uint64_t{1} << 34;  // 16 GiB

// Every member, in archive order. IoError naming the file (and member) for anything malformed:
// not a zip, zip64, encryption, unknown compression, CRC mismatch, a member that is not .npy,
// a bad .npy header or one whose shape does not match its data.
std::vector<NamedTensor> read_npz(const std::string& path);

// The same on archive bytes in memory; `label` names the source in errors.
std::vector<NamedTensor> read_npz_bytes(const void* data, size_t size, const std::string& label);

}  // namespace ptq::data
