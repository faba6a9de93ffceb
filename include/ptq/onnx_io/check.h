// The onnx checker (Debian's libonnx) run on an IR model, where it knows the IR and opset.
#pragma once

#include <string>

#include "ptq/ir/model.h"

namespace ptq::onnx_io {

// "" when the checker accepts the model; "skipped: ..." when this onnx build does not know the
// model's IR version or opset (it would reject valid newer models); otherwise throws ModelError
// with the checker's message.
std::string check_model(const ir::Model& model);

}  // namespace ptq::onnx_io
