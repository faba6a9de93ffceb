// External tensor data: safe path resolution and bounds checks on read, append-only file on write.
#include <filesystem>
#include <fstream>

#include "proto_convert.h"
#include "ptq/core/error.h"

namespace ptq::onnx_io::detail {

namespace fs = std::filesystem;

std::string ExternalDataReader::resolve(const std::string& location, const std::string& tensor) const {
  PTQ_CHECK(!location.empty(), ModelError, "tensor '", tensor, "': external data has no location");
  fs::path loc(location);
  // These are real path-traversal attacks on ONNX loaders: absolute paths and '..' escapes.
  PTQ_CHECK(!loc.is_absolute() && !loc.has_root_name() && !loc.has_root_directory() &&
                location.find('\\') == std::string::npos,
            ModelError, "tensor '", tensor, "': external data location '", location,
            "' must be a relative path inside the model's directory");
  for (const fs::path& part : loc)
    PTQ_CHECK(part != "..", ModelError, "tensor '", tensor, "': external data location '",
              location, "' escapes the model's directory");
  std::error_code ec;
  const fs::path base = fs::weakly_canonical(fs::path(base_dir_.empty() ? "." : base_dir_), ec);
  const fs::path full = fs::weakly_canonical(base / loc, ec);
  // A symlink inside the directory may still point outside it.
  const auto rel = full.lexically_relative(base);
  PTQ_CHECK(!rel.empty() && *rel.begin() != "..", ModelError, "tensor '", tensor,
            "': external data location '", location, "' resolves outside the model's directory");
  PTQ_CHECK(fs::is_regular_file(full, ec), IoError, "tensor '", tensor,
            "': external data file '", (base / loc).string(), "' is missing");
  return full.string();
}

Tensor ExternalDataReader::read(const onnx::TensorProto& t, DType dtype, const Dims& dims,
                                size_t nbytes) {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
  for (const auto& kv : t.external_data()) {
    try {
      if (kv.key() == "location") location = kv.value();
      else if (kv.key() == "offset") offset = std::stoll(kv.value());
      else if (kv.key() == "length") length = std::stoll(kv.value());
    } catch (const std::exception&) {
      throw ModelError(str_cat("tensor '", t.name(), "': external data ", kv.key(), " '",
                               kv.value(), "' is not a number"));
    }
  }
  const std::string path = resolve(location, t.name());
  PTQ_CHECK(offset >= 0, ModelError, "tensor '", t.name(), "': negative external data offset");
  std::error_code ec;
  const uintmax_t file_size = fs::file_size(path, ec);
  PTQ_CHECK(!ec, IoError, "cannot read '", path, "': ", ec.message());
  PTQ_CHECK(static_cast<uintmax_t>(offset) <= file_size, ModelError, "tensor '", t.name(),
            "': external data offset ", offset, " is past the end of '", location, "' (",
            file_size, " bytes)");
  if (length < 0) length = static_cast<int64_t>(file_size) - offset;
  PTQ_CHECK(static_cast<uintmax_t>(offset) + static_cast<uintmax_t>(length) <= file_size,
            ModelError, "tensor '", t.name(), "': external data [", offset, ", +", length,
            ") runs past the end of '", location, "' (", file_size, " bytes)");
  PTQ_CHECK(static_cast<size_t>(length) == nbytes, ModelError, "tensor '", t.name(),
            "': external data length ", length, " does not match the ", nbytes,
            " bytes its shape and type need");
  std::ifstream in(path, std::ios::binary);
  PTQ_CHECK(in, IoError, "cannot open '", path, "'");
  Tensor out = Tensor::empty(dtype, dims);
  PTQ_CHECK(out.nbytes() == nbytes, ModelError, "tensor '", t.name(), "': external data of ",
            nbytes, " bytes does not match its shape and type");
  in.seekg(offset);
  in.read(static_cast<char*>(out.mutable_raw()), static_cast<std::streamsize>(nbytes));
  PTQ_CHECK(in.gcount() == static_cast<std::streamsize>(nbytes), IoError, "short read from '",
            path, "'");
  bool known = false;
  for (const auto& f : files_) known = known || f == location;
  if (!known) files_.push_back(location);
  return out;
}

ExternalDataWriter::ExternalDataWriter(const std::string& model_path, size_t min_bytes)
    : file_(model_path + ".data"),
      location_(fs::path(model_path).filename().string() + ".data"),
      min_bytes_(min_bytes) {}

bool ExternalDataWriter::write(const Tensor& t, onnx::TensorProto* proto) {
  if (t.nbytes() < min_bytes_) return false;
  // Align each tensor to 4 KiB so runtimes can mmap it.
  constexpr size_t kAlign = 4096;
  static const char zeros[kAlign] = {};
  const size_t pad = (kAlign - file_.bytes_written() % kAlign) % kAlign;
  file_.write(zeros, pad);
  const size_t offset = file_.bytes_written();
  file_.write(t.raw(), t.nbytes());
  proto->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [proto](const char* k, const std::string& v) {
    auto* e = proto->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add("location", location_);
  add("offset", std::to_string(offset));
  add("length", std::to_string(t.nbytes()));
  used_ = true;
  return true;
}

}  // namespace ptq::onnx_io::detail
