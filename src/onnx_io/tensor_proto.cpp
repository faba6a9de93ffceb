// TensorProto <-> Tensor, for every storage field ONNX allows, with sizes checked before allocating.
#include <cstring>

#include "proto_convert.h"
#include "ptq/core/error.h"

namespace ptq::onnx_io::detail {
namespace {

template <typename Src, typename Dst>
Tensor from_field(DType dtype, const Dims& dims, const google::protobuf::RepeatedField<Src>& field,
                  size_t numel) {
  PTQ_CHECK(static_cast<size_t>(field.size()) == numel, ModelError, "tensor has ", field.size(),
            " values, its shape needs ", numel);
  Tensor t = Tensor::empty(dtype, dims);
  Dst* out = t.mutable_data<Dst>();
  for (size_t i = 0; i < numel; ++i) out[i] = static_cast<Dst>(field.Get(static_cast<int>(i)));
  return t;
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& p, ExternalDataReader* ext,
                         const LoadLimits& limits) {
  return with_context("tensor '" + p.name() + "'", [&]() -> Tensor {
    PTQ_CHECK(!p.has_segment(), UnsupportedError, "segmented tensors are not supported");
    const auto dtype = static_cast<DType>(p.data_type());
    PTQ_CHECK(dtype != DType::kUndefined, ModelError, "tensor has no data_type");
    Dims dims(p.dims().begin(), p.dims().end());
    const int bits = dtype_bits(dtype);
    PTQ_CHECK(bits > 0 || dtype == DType::kString, UnsupportedError, "unsupported data_type ",
              p.data_type());
    const size_t numel = checked_numel(dims, limits.max_tensor_bytes);
    const size_t nbytes = dtype_storage_bytes(dtype, numel);
    PTQ_CHECK(nbytes <= limits.max_tensor_bytes, ModelError, "tensor declares ", nbytes,
              " bytes, more than the limit of ", limits.max_tensor_bytes);
    Tensor t;
    if (p.data_location() == onnx::TensorProto::EXTERNAL) {
      PTQ_CHECK(ext != nullptr, ModelError, "external data is not allowed here");
      PTQ_CHECK(dtype != DType::kString, ModelError, "string tensors cannot be external");
      t = ext->read(p, dtype, dims, nbytes);
    } else if (p.has_raw_data()) {
      PTQ_CHECK(dtype != DType::kString, ModelError, "string tensors cannot use raw_data");
      PTQ_CHECK(p.raw_data().size() == nbytes, ModelError, "raw_data has ", p.raw_data().size(),
                " bytes, shape and type need ", nbytes);
      t = Tensor::from_bytes(dtype, dims, p.raw_data().data(), nbytes);
    } else {
      switch (dtype) {
        case DType::kString:
          t = Tensor::from_strings(dims, {p.string_data().begin(), p.string_data().end()});
          break;
        case DType::kFloat: t = from_field<float, float>(dtype, dims, p.float_data(), numel); break;
        case DType::kComplex64:
          t = from_field<float, float>(dtype, dims, p.float_data(), numel * 2);
          break;
        case DType::kDouble: t = from_field<double, double>(dtype, dims, p.double_data(), numel); break;
        case DType::kComplex128:
          t = from_field<double, double>(dtype, dims, p.double_data(), numel * 2);
          break;
        case DType::kInt64: t = from_field<int64_t, int64_t>(dtype, dims, p.int64_data(), numel); break;
        case DType::kUint32: t = from_field<uint64_t, uint32_t>(dtype, dims, p.uint64_data(), numel); break;
        case DType::kUint64: t = from_field<uint64_t, uint64_t>(dtype, dims, p.uint64_data(), numel); break;
        case DType::kInt32: t = from_field<int32_t, int32_t>(dtype, dims, p.int32_data(), numel); break;
        case DType::kInt16: t = from_field<int32_t, int16_t>(dtype, dims, p.int32_data(), numel); break;
        case DType::kUint16: case DType::kFloat16: case DType::kBfloat16:
          t = from_field<int32_t, uint16_t>(dtype, dims, p.int32_data(), numel);
          break;
        case DType::kInt8: t = from_field<int32_t, int8_t>(dtype, dims, p.int32_data(), numel); break;
        case DType::kUint8: case DType::kBool: case DType::kFloat8E4M3FN:
        case DType::kFloat8E4M3FNUZ: case DType::kFloat8E5M2: case DType::kFloat8E5M2FNUZ:
          t = from_field<int32_t, uint8_t>(dtype, dims, p.int32_data(), numel);
          break;
        default:
          throw UnsupportedError(str_cat(dtype_name(dtype), " tensors are only supported as raw_data"));
      }
    }
    t.name = p.name();
    t.doc_string = p.doc_string();
    return t;
  });
}

void tensor_to_proto(const Tensor& t, onnx::TensorProto* p, ExternalDataWriter* ext) {
  p->set_name(t.name);
  if (!t.doc_string.empty()) p->set_doc_string(t.doc_string);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.dims()) p->add_dims(d);
  if (t.is_string()) {
    for (const std::string& s : t.strings()) p->add_string_data(s);
    return;
  }
  if (ext && ext->write(t, p)) return;
  p->set_raw_data(t.raw(), t.nbytes());
}

}  // namespace ptq::onnx_io::detail
