// Internal: a minimal, defensive zip reader (stored and deflate members, no zip64) for .npz files.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace ptq::data::detail {

struct ZipMember {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
};

// Reads the central directory on construction. Every offset and size is checked against the
// file size before it is used; anything inconsistent, encrypted, multi-disk or zip64 is an
// IoError (without the file name: callers add it as context).
class ZipReader {
 public:
  explicit ZipReader(const std::string& path);
  // The same on bytes in memory (not copied: they must outlive the reader).
  ZipReader(const void* data, uint64_t size);
  const std::vector<ZipMember>& members() const { return members_; }
  // The member's uncompressed bytes, CRC-checked. Refuses members over `max_bytes` before
  // allocating, and deflated members claiming more than deflate can expand to.
  std::vector<uint8_t> read(const ZipMember& m, uint64_t max_bytes);
  // The member's first min(n, uncompressed size) bytes (no CRC check: the rest is not read), so
  // a caller can check what the data declares (an .npy header) before allocating all of it.
  std::vector<uint8_t> read_prefix(const ZipMember& m, uint64_t n);

 private:
  void read_at(uint64_t offset, void* out, uint64_t size);
  void read_directory();
  // Offset of the member's data, checked to lie inside the member area.
  uint64_t data_offset(const ZipMember& m);
  std::ifstream file_;
  const uint8_t* mem_ = nullptr;  // set when reading from memory
  uint64_t size_ = 0;
  uint64_t central_dir_offset_ = 0;
  std::vector<ZipMember> members_;
};

}  // namespace ptq::data::detail
