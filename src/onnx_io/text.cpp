// ONNX text syntax -> IR, through onnx's own parser.
#include <onnx/defs/parser.h>

#include "proto_convert.h"
#include "ptq/core/error.h"

namespace ptq::onnx_io {

ir::Model parse_model_text(const std::string& text) {
  onnx::ModelProto proto;
  onnx::OnnxParser parser(text.c_str());
  auto status = parser.Parse(proto);
  PTQ_CHECK(status.IsOK(), ModelError, "ONNX text does not parse: ", status.ErrorMessage());
  return detail::model_from_proto(proto, nullptr, {});
}

}  // namespace ptq::onnx_io
