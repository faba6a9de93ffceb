// SHA-256 of bytes and files (FIPS 180-4), for calibration-table model hashes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ptq {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::string hex_digest();  // finalizes; call once

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Hex digest of a file's bytes; throws IoError naming the file.
std::string sha256_file(const std::string& path);

}  // namespace ptq
