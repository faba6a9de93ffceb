// TypeProto <-> TypeInfo; non-tensor types and denotations are kept as opaque bytes.
#include "proto_convert.h"

namespace ptq::onnx_io::detail {

std::string unknown_fields_of(const google::protobuf::Message& m) {
  const auto& u = m.GetReflection()->GetUnknownFields(m);
  if (u.empty()) return {};
  std::string s;
  u.SerializeToString(&s);
  return s;
}

void restore_unknown_fields(const std::string& bytes, google::protobuf::Message* m) {
  if (!bytes.empty()) m->GetReflection()->MutableUnknownFields(m)->ParseFromString(bytes);
}

ir::TypeInfo type_from_proto(const onnx::TypeProto& t) {
  ir::TypeInfo info;
  info.known = true;
  bool plain = t.has_tensor_type() && !t.has_denotation() && unknown_fields_of(t).empty();
  if (t.has_tensor_type()) {
    const auto& tt = t.tensor_type();
    info.dtype = static_cast<DType>(tt.elem_type());
    if (tt.has_shape()) {
      ir::Shape s;
      for (const auto& d : tt.shape().dim()) {
        ir::Dim dim;
        if (d.has_dim_value()) dim.value = d.dim_value();
        else if (d.has_dim_param()) dim.param = d.dim_param();
        plain = plain && !d.has_denotation();
        s.push_back(std::move(dim));
      }
      info.shape = std::move(s);
    }
  }
  if (!plain) t.SerializeToString(&info.opaque);
  info.empty = !plain && info.opaque.empty();
  return info;
}

void type_to_proto(const ir::TypeInfo& info, onnx::TypeProto* p) {
  if (!info.known || info.empty) return;
  if (!info.opaque.empty()) {
    p->ParseFromString(info.opaque);
    if (!p->has_tensor_type()) return;  // sequence/map/optional: untouched
  }
  // Tensor types: dtype and dims come from the IR (a pass may have changed them); denotations
  // kept in the opaque copy survive when the rank is unchanged.
  auto* tt = p->mutable_tensor_type();
  // Unset and 0 differ on the wire: ORT rejects an explicit elem_type 0.
  if (info.dtype != DType::kUndefined) tt->set_elem_type(static_cast<int32_t>(info.dtype));
  else tt->clear_elem_type();
  if (!info.shape) {
    tt->clear_shape();
    return;
  }
  auto* shape = tt->mutable_shape();
  if (shape->dim_size() != static_cast<int>(info.shape->size())) shape->clear_dim();
  for (size_t i = 0; i < info.shape->size(); ++i) {
    const ir::Dim& d = (*info.shape)[i];
    auto* dim = static_cast<int>(i) < shape->dim_size() ? shape->mutable_dim(static_cast<int>(i))
                                                         : shape->add_dim();
    dim->clear_dim_value();
    dim->clear_dim_param();
    if (!d.param.empty()) dim->set_dim_param(d.param);
    else if (d.value >= 0) dim->set_dim_value(d.value);
  }
}

}  // namespace ptq::onnx_io::detail
