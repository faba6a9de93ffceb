// Writes the IR back as an ONNX ModelProto, atomically, inline or with external data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ptq/ir/model.h"

namespace ptq::onnx_io {

enum class ExternalData {
  kAuto,    // external only when the model would not fit protobuf's 2 GB limit
  kAlways,  // every tensor of at least min_external_bytes goes to the data file
};

struct SaveOptions {
  ExternalData external_data = ExternalData::kAuto;
  size_t min_external_bytes = 1024;  // smaller tensors stay inline
};

// Writes `path` (and `<file name>.data` beside it when tensors go external) through temp files
// renamed into place, so an error leaves no output.
// Returns the bytes written (the model file plus its external data file, if any).
uint64_t save_model(const ir::Model& model, const std::string& path, const SaveOptions& options = {});

// The serialized ModelProto with all tensors inline (throws when over 2 GB).
std::string serialize_model(const ir::Model& model);

}  // namespace ptq::onnx_io
