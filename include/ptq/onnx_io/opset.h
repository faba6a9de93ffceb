// Opset conversion of the default ONNX domain, through onnx's own version converter.
#pragma once

#include <cstdint>

#include "ptq/ir/model.h"

namespace ptq::onnx_io {

// Rewrites `model` to default-domain opset `target` (e.g. 7 -> 13: Softmax axis semantics, Clip
// and Squeeze inputs, ...). Model-level fields (metadata, producer, docs, functions) are kept and
// ir_version is raised to what the opset needs. Throws UnsupportedError naming the problem when
// the converter cannot convert an op.
void convert_opset(ir::Model& model, int64_t target);

// The lowest IR version that can carry a default-domain opset (opset 13 -> IR 7, 21 -> IR 10).
int64_t min_ir_version_for_opset(int64_t opset);

}  // namespace ptq::onnx_io
