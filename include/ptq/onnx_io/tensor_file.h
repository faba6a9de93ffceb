// Reads a serialized ONNX TensorProto file (the test_data_set_*/input_N.pb format) into a Tensor.
#pragma once

#include <cstddef>
#include <string>

#include "ptq/core/tensor.h"
#include "ptq/onnx_io/load.h"

namespace ptq::onnx_io {

// The tensor in `path`, with its TensorProto name in Tensor::name. External data is refused
// (a test-data file must be self-contained). Every failure is an IoError naming the file: the
// file is data, not a model, so malformed content maps to the data error exit code.
Tensor read_tensor_file(const std::string& path, const LoadLimits& limits = {});

// The same on serialized bytes; `label` names the source in errors.
Tensor read_tensor_bytes(const void* data, size_t size, const std::string& label,
                         const LoadLimits& limits = {});

}  // namespace ptq::onnx_io
