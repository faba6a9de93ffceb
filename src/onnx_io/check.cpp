// onnx::checker over the serialized IR (protobuf stays in onnx_io).
#include "ptq/onnx_io/check.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>

#include <algorithm>

#include "proto_convert.h"
#include "ptq/core/error.h"

namespace ptq::onnx_io {

std::string check_model(const ir::Model& model) {
  const auto& ranges = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  const int64_t known_opset = ranges.at(onnx::ONNX_DOMAIN).second;
  if (model.ir_version > onnx::IR_VERSION)
    return str_cat("skipped: this onnx build knows IR versions up to ", static_cast<int>(onnx::IR_VERSION),
                   ", the model has ", model.ir_version);
  if (model.opset() > known_opset)
    return str_cat("skipped: this onnx build knows opsets up to ", known_opset, ", the model has ", model.opset());
  onnx::ModelProto proto;
  detail::model_to_proto(model, &proto, nullptr);
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    throw ModelError(str_cat("onnx checker: ", what));
  }
  return "";
}

}  // namespace ptq::onnx_io
