// TensorProto files: parse with protobuf and convert through the loader's tensor_from_proto.
#include "ptq/onnx_io/tensor_file.h"

#include <google/protobuf/io/coded_stream.h>

#include <climits>
#include <filesystem>
#include <fstream>

#include "proto_convert.h"
#include "ptq/core/error.h"

namespace ptq::onnx_io {
namespace {

Tensor parse(const void* data, size_t size, const LoadLimits& limits) {
  PTQ_CHECK(size < static_cast<size_t>(INT_MAX), IoError, "TensorProto file is larger than 2 GB");
  onnx::TensorProto proto;
  google::protobuf::io::CodedInputStream in(static_cast<const uint8_t*>(data), static_cast<int>(size));
  in.SetTotalBytesLimit(INT_MAX);
  PTQ_CHECK(proto.ParseFromCodedStream(&in) && in.ConsumedEntireMessage(), IoError,
            "not a serialized ONNX TensorProto (protobuf parse failed)");
  PTQ_CHECK(proto.data_type() != 0, IoError,
            "not an ONNX TensorProto (empty, or no data_type set)");
  try {
    Tensor t = detail::tensor_from_proto(proto, /*ext=*/nullptr, limits);
    t.name = proto.name();
    return t;
  } catch (const IoError&) {
    throw;
  } catch (const Error& e) {
    // Malformed tensor content in a data file is a data error (exit 5), not a model error.
    throw IoError(e.what());
  }
}

}  // namespace

Tensor read_tensor_bytes(const void* data, size_t size, const std::string& label,
                         const LoadLimits& limits) {
  return with_context(label, [&] { return parse(data, size, limits); });
}

Tensor read_tensor_file(const std::string& path, const LoadLimits& limits) {
  return with_context(path, [&] {
    std::error_code ec;
    PTQ_CHECK(std::filesystem::is_regular_file(path, ec), IoError, "no such file");
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    PTQ_CHECK(f, IoError, "cannot open file");
    const std::streamoff size = f.tellg();
    PTQ_CHECK(size >= 0 && size < std::streamoff(INT_MAX), IoError,
              "cannot read file (or larger than 2 GB)");
    std::string bytes(static_cast<size_t>(size), '\0');
    f.seekg(0);
    f.read(bytes.data(), size);
    PTQ_CHECK(f.gcount() == size, IoError, "short read");
    return parse(bytes.data(), bytes.size(), limits);
  });
}

}  // namespace ptq::onnx_io
