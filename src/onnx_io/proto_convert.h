// Internal: conversions between onnx protobuf messages and ptq's IR (protobuf stays in onnx_io).
#pragma once

#include <onnx/onnx_pb.h>

#include <memory>
#include <string>
#include <vector>

#include "ptq/core/atomic_file.h"
#include "ptq/ir/model.h"
#include "ptq/onnx_io/load.h"

namespace ptq::onnx_io::detail {

// Resolves and reads external tensor data, refusing paths outside the model's directory.
class ExternalDataReader {
 public:
  ExternalDataReader(std::string base_dir, LoadLimits limits)
      : base_dir_(std::move(base_dir)), limits_(limits) {}
  // Reads the `nbytes` bytes described by the tensor's external_data entries straight into a new
  // tensor of `dtype` and `dims` (one copy in memory; allocated only after the bounds checks).
  Tensor read(const onnx::TensorProto& t, DType dtype, const Dims& dims, size_t nbytes);
  const std::vector<std::string>& files() const { return files_; }

 private:
  std::string resolve(const std::string& location, const std::string& tensor) const;
  std::string base_dir_;
  LoadLimits limits_;
  std::vector<std::string> files_;  // locations read, in first-use order
};

// Appends tensor bytes to a `.data` file beside the model and points the proto at them.
class ExternalDataWriter {
 public:
  ExternalDataWriter(const std::string& model_path, size_t min_bytes);
  // True when the tensor was written externally; false leaves it for inline storage.
  bool write(const Tensor& t, onnx::TensorProto* proto);
  void commit() { file_.commit(); }
  bool used() const { return used_; }
  int fd() const { return file_.fd(); }

 private:
  AtomicFile file_;
  std::string location_;
  size_t min_bytes_;
  bool used_ = false;
};

Tensor tensor_from_proto(const onnx::TensorProto& t, ExternalDataReader* ext,
                         const LoadLimits& limits);
// Writes raw_data (string_data for strings), or external data when `ext` takes the tensor.
void tensor_to_proto(const Tensor& t, onnx::TensorProto* proto, ExternalDataWriter* ext);

ir::TypeInfo type_from_proto(const onnx::TypeProto& t);
void type_to_proto(const ir::TypeInfo& t, onnx::TypeProto* proto);

std::string unknown_fields_of(const google::protobuf::Message& m);
void restore_unknown_fields(const std::string& bytes, google::protobuf::Message* m);

ir::Model model_from_proto(const onnx::ModelProto& proto, ExternalDataReader* ext,
                           const LoadLimits& limits);
void model_to_proto(const ir::Model& model, onnx::ModelProto* proto, ExternalDataWriter* ext);

}  // namespace ptq::onnx_io::detail
