// .npz reading: zip members through ZipReader, each parsed by core's .npy reader.
#include "ptq/data/npz.h"

#include <cstring>

#include "ptq/core/error.h"
#include "ptq/core/npy.h"
#include "zip_reader.h"

namespace ptq::data {
namespace {

// The size an .npy member must have according to its own header (preamble + header + shape *
// item size), read from the member's first bytes only. Checked against the zip's declared size
// before the member is inflated: a 510 KB archive could otherwise claim (and get) 536 MB for an
// array whose header says 16 bytes. The full header is validated again by read_npy_bytes.
uint64_t npy_size_from_header(detail::ZipReader& zip, const detail::ZipMember& m) {
  const std::vector<uint8_t> pre = zip.read_prefix(m, 12);
  const auto bad = [&](const char* why) {
    return IoError(str_cat("member '", m.name, "': bad .npy header (", why, ")"));
  };
  if (pre.size() < 10 || std::memcmp(pre.data(), "\x93NUMPY", 6) != 0) throw bad("no .npy magic");
  const int major = pre[6];
  if (major < 1 || major > 3) throw bad("unsupported version");
  uint64_t hlen = pre[8] | (uint64_t{pre[9]} << 8), start = 10;
  if (major > 1) {
    if (pre.size() < 12) throw bad("truncated preamble");
    hlen |= (uint64_t{pre[10]} << 16) | (uint64_t{pre[11]} << 24);
    start = 12;
  }
  if (hlen > (uint64_t{1} << 20)) throw bad("header over 1 MiB");
  const std::vector<uint8_t> head = zip.read_prefix(m, start + hlen);
  if (head.size() != start + hlen) throw bad("truncated header");
  // A header core's .npy reader rejects gets its precise message (the header alone, without
  // data, passes only when it declares no data).
  if (!(head.size() == m.uncompressed_size)) {
    try {
      read_npy_bytes(head.data(), head.size(), "member '" + m.name + "'");
    } catch (const IoError& e) {
      if (std::string(e.what()).find(".npy data is") == std::string::npos) throw;
    }
  }
  const std::string text(head.begin() + static_cast<std::ptrdiff_t>(start), head.end());
  // 'descr': '<f4' -> item size 4 (the trailing digits); 'shape': (a, b, ...).
  size_t k = text.find("descr");
  if (k == std::string::npos) throw bad("no 'descr'");
  k = text.find_first_of("'\"", text.find(':', k));
  const size_t kend = k == std::string::npos ? k : text.find(text[k], k + 1);
  if (kend == std::string::npos || kend - k < 4) throw bad("unreadable 'descr'");
  uint64_t item = 0;
  for (size_t i = k + 3; i < kend; ++i) {
    if (text[i] < '0' || text[i] > '9' || item > 16) throw bad("unsupported 'descr'");
    item = item * 10 + uint64_t(text[i] - '0');
  }
  k = text.find("shape");
  if (k == std::string::npos) throw bad("no 'shape'");
  k = text.find('(', k);
  const size_t send = k == std::string::npos ? k : text.find(')', k);
  if (send == std::string::npos) throw bad("unreadable 'shape'");
  uint64_t bytes = item;
  bool zero = false;
  for (size_t i = k + 1; i < send; ++i) {
    if (text[i] == ' ' || text[i] == ',') continue;
    uint64_t d = 0;
    for (; i < send && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (d > (uint64_t{1} << 50)) throw bad("dimension overflows");
      d = d * 10 + uint64_t(text[i] - '0');
    }
    if (i < send && text[i] != ' ' && text[i] != ',') throw bad("'shape' is not a tuple of integers");
    if (d == 0) zero = true;
    else if (bytes > kMaxNpzMemberBytes / d) throw bad("shape exceeds the member size limit");
    else bytes *= d;
  }
  return start + hlen + (zero ? 0 : bytes);
}

std::vector<NamedTensor> read_members(detail::ZipReader& zip) {
  std::vector<NamedTensor> out;
  for (const detail::ZipMember& m : zip.members()) {
    if (!m.name.empty() && m.name.back() == '/') continue;  // a folder entry
    PTQ_CHECK(m.name.size() > 4 && m.name.compare(m.name.size() - 4, 4, ".npy") == 0, IoError,
              "member '", m.name, "' is not a .npy array");
    const uint64_t need = npy_size_from_header(zip, m);
    PTQ_CHECK(need == m.uncompressed_size, IoError, "member '", m.name, "' declares ", m.uncompressed_size,
              " bytes but its .npy header describes ", need, " (corrupt or hostile archive)");
    const std::vector<uint8_t> bytes = zip.read(m, kMaxNpzMemberBytes);
    NamedTensor nt;
    nt.name = m.name.substr(0, m.name.size() - 4);
    nt.tensor = read_npy_bytes(bytes.data(), bytes.size(), "member '" + m.name + "'");
    out.push_back(std::move(nt));
  }
  PTQ_CHECK(!out.empty(), IoError, "the .npz archive holds no arrays");
  return out;
}

}  // namespace

std::vector<NamedTensor> read_npz(const std::string& path) {
  return with_context(path, [&] {
    detail::ZipReader zip(path);
    return read_members(zip);
  });
}

std::vector<NamedTensor> read_npz_bytes(const void* data, size_t size, const std::string& label) {
  return with_context(label, [&] {
    detail::ZipReader zip(data, size);
    return read_members(zip);
  });
}

}  // namespace ptq::data
