// .npz reading: zip members through ZipReader, each parsed by core's .npy reader.
#include "ptq/data/npz.h"

#include "ptq/core/error.h"
#include "ptq/core/npy.h"
#include "zip_reader.h"

namespace ptq::data {
namespace {

std::vector<NamedTensor> read_members(detail::ZipReader& zip) {
  std::vector<NamedTensor> out;
  for (const detail::ZipMember& m : zip.members()) {
    if (!m.name.empty() && m.name.back() == '/') continue;  // a folder entry
    PTQ_CHECK(m.name.size() > 4 && m.name.compare(m.name.size() - 4, 4, ".npy") == 0, IoError,
              "member '", m.name, "' is not a .npy array");
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
