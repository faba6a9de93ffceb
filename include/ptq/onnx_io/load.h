// Reads an ONNX ModelProto (and its external data) into the IR.
#pragma once

#include <cstddef>
#include <string>

#include "ptq/ir/model.h"

namespace ptq::onnx_io {

// Limits on what a model file may declare, checked before anything is allocated.
struct LoadLimits {
  size_t max_tensor_bytes = size_t{1} << 40;  // 1 TiB: anything larger is a hostile header
};

// Loads `path`; external data `location`s resolve relative to the model's directory and may not
// escape it. Errors name the file (and tensor or node): IoError for unreadable files,
// ModelError for malformed or hostile content.
ir::Model load_model(const std::string& path, const LoadLimits& limits = {});

// Parses serialized ModelProto bytes; `base_dir` resolves external data ("" forbids it).
ir::Model load_model_from_bytes(const void* data, size_t size, const std::string& base_dir,
                                const LoadLimits& limits = {});

// Parses the ONNX text syntax (onnx/defs/parser.h), e.g. for tests written inline.
ir::Model parse_model_text(const std::string& text);

}  // namespace ptq::onnx_io
