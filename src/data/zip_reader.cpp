// Zip central-directory parsing and member extraction (stored / raw deflate via zlib).
#include "zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <set>

#include "little_endian.h"
#include "ptq/core/error.h"

namespace ptq::data::detail {
namespace {

constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint64_t kEocdSize = 22;
constexpr uint64_t kCentralSize = 46;
constexpr uint64_t kLocalSize = 30;
// Deflate cannot expand data by more than about 1032:1; a larger claim is a hostile header.
constexpr uint64_t kMaxDeflateRatio = 1032;

constexpr const char* kZip64 = "zip64 archives (over 4 GB or 65535 members) are not supported; "
                     "split the arrays over several .npz files";

}  // namespace

void ZipReader::read_at(uint64_t offset, void* out, uint64_t size) {
  PTQ_CHECK(offset <= size_ && size <= size_ - offset, IoError, "zip structure points past the end",
            " of the file (offset ", offset, ", ", size, " bytes, file has ", size_, ")");
  if (mem_) {
    if (size) std::memcpy(out, mem_ + offset, size_t(size));
    return;
  }
  file_.clear();
  file_.seekg(std::streamoff(offset));
  file_.read(static_cast<char*>(out), std::streamsize(size));
  PTQ_CHECK(file_.gcount() == std::streamsize(size), IoError, "short read");
}

ZipReader::ZipReader(const std::string& path) : file_(path, std::ios::binary | std::ios::ate) {
  PTQ_CHECK(file_, IoError, "cannot open file");
  const std::streamoff end = file_.tellg();
  PTQ_CHECK(end >= 0, IoError, "cannot read file");
  size_ = uint64_t(end);
  read_directory();
}

ZipReader::ZipReader(const void* data, uint64_t size)
    : mem_(static_cast<const uint8_t*>(data)), size_(size) {
  read_directory();
}

void ZipReader::read_directory() {
  PTQ_CHECK(size_ >= kEocdSize, IoError, "not a zip file (too short)");

  // The end-of-central-directory record sits in the last 22 + 65535 (max comment) bytes.
  const uint64_t tail_len = std::min<uint64_t>(size_, kEocdSize + 0xFFFF);
  std::vector<uint8_t> tail(tail_len);
  read_at(size_ - tail_len, tail.data(), tail_len);
  int64_t eocd = -1;
  for (int64_t i = int64_t(tail_len - kEocdSize); i >= 0; --i) {
    const uint8_t* p = &tail[size_t(i)];
    if (u32(p) == kEocdSig && uint64_t(i) + kEocdSize + u16(p + 20) <= tail_len) {
      eocd = i;
      break;
    }
  }
  PTQ_CHECK(eocd >= 0, IoError, "not a zip file (no end-of-central-directory record)");
  const uint8_t* e = &tail[size_t(eocd)];
  const uint64_t eocd_pos = size_ - tail_len + uint64_t(eocd);
  const uint16_t disk = u16(e + 4), cd_disk = u16(e + 6);
  const uint16_t entries_here = u16(e + 8), entries = u16(e + 10);
  const uint32_t cd_size = u32(e + 12), cd_offset = u32(e + 16);
  if (eocd >= 20) PTQ_CHECK(u32(e - 20) != kZip64LocatorSig, IoError, kZip64);
  PTQ_CHECK(entries != 0xFFFF && cd_size != 0xFFFFFFFF && cd_offset != 0xFFFFFFFF, IoError, kZip64);
  PTQ_CHECK(disk == 0 && cd_disk == 0 && entries_here == entries, IoError,
            "multi-disk zip archives are not supported");
  PTQ_CHECK(uint64_t(cd_offset) + cd_size <= eocd_pos, IoError,
            "zip central directory (offset ", cd_offset, ", ", cd_size,
            " bytes) overlaps the end record or lies past the end of the file");
  PTQ_CHECK(uint64_t(entries) * kCentralSize <= cd_size, IoError, "zip central directory declares ",
            entries, " members but has only ", cd_size, " bytes");
  central_dir_offset_ = cd_offset;

  std::vector<uint8_t> cd(cd_size);
  read_at(cd_offset, cd.data(), cd_size);
  std::set<std::string> names;
  uint64_t pos = 0;
  for (uint16_t k = 0; k < entries; ++k) {
    PTQ_CHECK(cd_size - pos >= kCentralSize, IoError, "zip central directory is truncated");
    const uint8_t* c = &cd[size_t(pos)];
    PTQ_CHECK(u32(c) == kCentralSig, IoError, "zip central directory entry ", k, " is corrupt");
    const uint16_t flags = u16(c + 8);
    const uint64_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    PTQ_CHECK(cd_size - pos - kCentralSize >= name_len + extra_len + comment_len, IoError,
              "zip central directory entry ", k, " runs past the directory");
    ZipMember m;
    m.name.assign(reinterpret_cast<const char*>(c + kCentralSize), size_t(name_len));
    m.method = u16(c + 10);
    m.crc32 = u32(c + 16);
    m.compressed_size = u32(c + 20);
    m.uncompressed_size = u32(c + 24);
    m.local_header_offset = u32(c + 42);
    PTQ_CHECK(m.compressed_size != 0xFFFFFFFF && m.uncompressed_size != 0xFFFFFFFF &&
                  m.local_header_offset != 0xFFFFFFFF && u16(c + 34) != 0xFFFF,
              IoError, kZip64);
    PTQ_CHECK(!(flags & 1), IoError, "member '", m.name, "' is encrypted");
    PTQ_CHECK(u16(c + 34) == 0, IoError, "multi-disk zip archives are not supported");
    PTQ_CHECK(names.insert(m.name).second, IoError, "member '", m.name, "' appears twice");
    // The member's data must lie before the central directory.
    PTQ_CHECK(m.local_header_offset + kLocalSize <= central_dir_offset_, IoError, "member '",
              m.name, "' has a local header offset past its data area");
    members_.push_back(std::move(m));
    pos += kCentralSize + name_len + extra_len + comment_len;
  }
}

uint64_t ZipReader::data_offset(const ZipMember& m) {
  uint8_t lh[kLocalSize];
  read_at(m.local_header_offset, lh, kLocalSize);
  PTQ_CHECK(u32(lh) == kLocalSig, IoError, "corrupt local header");
  // Sizes come from the central directory: numpy writes zip64 local headers (sizes 0xFFFFFFFF
  // plus a zip64 extra field) even for small members, so local sizes are not trusted.
  const uint64_t data = m.local_header_offset + kLocalSize + u16(lh + 26) + u16(lh + 28);
  PTQ_CHECK(data <= central_dir_offset_ && m.compressed_size <= central_dir_offset_ - data,
            IoError, "data (", m.compressed_size, " bytes at offset ", data,
            ") runs past the member area of the file");
  PTQ_CHECK(m.method != 8 || m.uncompressed_size <= m.compressed_size * kMaxDeflateRatio + 64, IoError,
            "declares ", m.uncompressed_size, " bytes from ", m.compressed_size,
            " compressed bytes, more than deflate can produce");
  return data;
}

std::vector<uint8_t> ZipReader::read_prefix(const ZipMember& m, uint64_t n) {
  return with_context("member '" + m.name + "'", [&] {
    const uint64_t data = data_offset(m);
    n = std::min(n, m.uncompressed_size);
    std::vector<uint8_t> out;
    if (m.method == 0) {
      n = std::min(n, m.compressed_size);
      out.resize(size_t(n));
      read_at(data, out.data(), n);
    } else if (m.method == 8) {
      // Only as much input as it takes to fill n bytes is read and inflated.
      out.resize(size_t(n));
      z_stream zs{};
      PTQ_CHECK(inflateInit2(&zs, -MAX_WBITS) == Z_OK, IoError, "zlib initialization failed");
      std::vector<uint8_t> in(64 * 1024);
      uint64_t consumed = 0;
      zs.next_out = out.data();
      zs.avail_out = uInt(out.size());
      int rc = Z_OK;
      while (zs.avail_out > 0 && rc == Z_OK && consumed < m.compressed_size) {
        const uint64_t chunk = std::min<uint64_t>(in.size(), m.compressed_size - consumed);
        read_at(data + consumed, in.data(), chunk);
        consumed += chunk;
        zs.next_in = in.data();
        zs.avail_in = uInt(chunk);
        while (zs.avail_out > 0 && zs.avail_in > 0 && rc == Z_OK) rc = inflate(&zs, Z_NO_FLUSH);
      }
      out.resize(size_t(zs.total_out));
      inflateEnd(&zs);
      PTQ_CHECK(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR, IoError, "deflate data is corrupt");
    } else {
      throw IoError(str_cat("compression method ", m.method,
                            " is not supported (use stored or deflate, as numpy does)"));
    }
    return out;
  });
}

std::vector<uint8_t> ZipReader::read(const ZipMember& m, uint64_t max_bytes) {
  return with_context("member '" + m.name + "'", [&] {
    const uint64_t data = data_offset(m);
    PTQ_CHECK(m.uncompressed_size <= max_bytes, IoError, "declares ", m.uncompressed_size,
              " bytes, more than the limit of ", max_bytes);
    std::vector<uint8_t> out;
    if (m.method == 0) {
      PTQ_CHECK(m.compressed_size == m.uncompressed_size, IoError,
                "stored member has different compressed and uncompressed sizes");
      out.resize(size_t(m.uncompressed_size));
      read_at(data, out.data(), m.uncompressed_size);
    } else if (m.method == 8) {
      PTQ_CHECK(m.uncompressed_size <= m.compressed_size * kMaxDeflateRatio + 64, IoError,
                "declares ", m.uncompressed_size, " bytes from ", m.compressed_size,
                " compressed bytes, more than deflate can produce");
      std::vector<uint8_t> in(size_t(m.compressed_size));
      read_at(data, in.data(), m.compressed_size);
      out.resize(size_t(m.uncompressed_size));
      z_stream zs{};
      PTQ_CHECK(inflateInit2(&zs, -MAX_WBITS) == Z_OK, IoError, "zlib initialization failed");
      zs.next_in = in.data();
      zs.avail_in = uInt(in.size());
      zs.next_out = out.data();
      zs.avail_out = uInt(out.size());
      const int rc = inflate(&zs, Z_FINISH);
      const uint64_t produced = zs.total_out;
      inflateEnd(&zs);
      PTQ_CHECK(rc == Z_STREAM_END && produced == m.uncompressed_size, IoError,
                "deflate data is corrupt or does not match the declared size ",
                m.uncompressed_size);
    } else {
      throw IoError(str_cat("compression method ", m.method,
                            " is not supported (use stored or deflate, as numpy does)"));
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    // crc32() takes at most UINT_MAX bytes per call.
    for (size_t off = 0; off < out.size(); off += UINT_MAX)
      crc = crc32(crc, out.data() + off, uInt(std::min<size_t>(UINT_MAX, out.size() - off)));
    PTQ_CHECK(uint32_t(crc) == m.crc32, IoError, "CRC mismatch (corrupt file)");
    return out;
  });
}

}  // namespace ptq::data::detail
