// Runtime input specs, shape overrides and the per-tensor dtype/rank/shape/finiteness checks.
#include "ptq/data/input_spec.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "ptq/core/error.h"
#include "ptq/data/preprocess.h"

namespace ptq::data {

InputShape parse_input_shape(const std::string& flag, const std::string& text) {
  const size_t colon = text.rfind(':');
  PTQ_CHECK(colon != std::string::npos && colon > 0 && colon + 1 < text.size(), UsageError, flag,
            ": expected NAME:DIMS such as data:1x3x224x224, got '", text, "'");
  InputShape s;
  s.name = text.substr(0, colon);
  std::string dims = text.substr(colon + 1);
  for (char& c : dims)
    if (c == ',') c = 'x';
  size_t start = 0;
  while (true) {
    const size_t x = dims.find_first_of("xX", start);
    const std::string item = dims.substr(start, x == std::string::npos ? x : x - start);
    try {
      s.dims.push_back(parse_positive_int(flag, item));
    } catch (const UsageError&) {
      throw UsageError(str_cat(flag, ": dims of '", s.name,
                               "' must be positive integers such as 1x3x224x224, got '", text, "'"));
    }
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return s;
}

std::string shape_str(const ir::Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) os << ',';
    if (shape[i].is_static()) os << shape[i].value;
    else if (!shape[i].param.empty()) os << shape[i].param;
    else os << '?';
  }
  os << ']';
  return os.str();
}

std::string dims_str(const Dims& dims) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < dims.size(); ++i) os << (i ? "," : "") << dims[i];
  os << ']';
  return os.str();
}

std::vector<InputSpec> make_input_specs(const ir::Graph& graph,
                                        const std::vector<InputShape>& overrides) {
  std::vector<InputSpec> specs;
  for (ir::ValueId id : graph.runtime_inputs()) {
    const ir::Value& v = graph.value(id);
    specs.push_back(InputSpec{v.name, v.type.known ? v.type.dtype : DType::kUndefined,
                              v.type.known ? v.type.shape : std::nullopt});
  }
  for (const InputShape& o : overrides) {
    InputSpec* spec = nullptr;
    for (InputSpec& s : specs)
      if (s.name == o.name) spec = &s;
    if (!spec) {
      std::string names;
      for (const InputSpec& s : specs) names += (names.empty() ? "" : ", ") + s.name;
      throw UsageError(str_cat("--input-shape names '", o.name,
                               "', which is not a model input (inputs: ", names, ")"));
    }
    ir::Shape shape;
    if (spec->shape) {
      PTQ_CHECK(spec->shape->size() == o.dims.size(), UsageError, "--input-shape gives '", o.name,
                "' rank ", o.dims.size(), " but the model declares ", shape_str(*spec->shape));
      for (size_t i = 0; i < o.dims.size(); ++i) {
        const ir::Dim& d = (*spec->shape)[i];
        PTQ_CHECK(!d.is_static() || d.value == o.dims[i], UsageError, "--input-shape gives '",
                  o.name, "' ", dims_str(o.dims), " but the model fixes dim ", i, " at ", d.value,
                  " (", shape_str(*spec->shape), ")");
      }
    }
    for (int64_t d : o.dims) shape.push_back(ir::Dim{d, {}});
    spec->shape = std::move(shape);
  }
  return specs;
}

Tensor conform_tensor(const InputSpec& spec, Tensor t) {
  const std::string expected =
      spec.shape ? str_cat(dtype_name(spec.dtype), " ", shape_str(*spec.shape)) : dtype_name(spec.dtype);
  const auto mismatch = [&](const std::string& what) {
    return IoError(str_cat("input '", spec.name, "': ", what, ": expected ", expected, ", found ",
                           dtype_name(t.dtype()), " ", dims_str(t.dims())));
  };
  if (spec.dtype != DType::kUndefined && t.dtype() != spec.dtype) {
    std::string hint;
    if (dtype_is_float(spec.dtype) && dtype_is_float(t.dtype())) {
      // numpy spells float/double as float32/float64 (np.save keeps float64 by default).
      const std::string np = spec.dtype == DType::kFloat    ? "float32"
                             : spec.dtype == DType::kDouble ? "float64"
                                                            : dtype_name(spec.dtype);
      hint = str_cat(" (convert the data, e.g. numpy .astype('", np, "'))");
    }
    throw IoError(mismatch("wrong dtype").message() + hint);
  }
  if (!spec.shape) return t;
  const ir::Shape& shape = *spec.shape;
  // A single sample saved without its batch dim: add a leading 1 when the model allows it.
  if (t.rank() + 1 == shape.size() && !shape.empty() &&
      (!shape[0].is_static() || shape[0].value == 1)) {
    Dims d = t.dims();
    d.insert(d.begin(), 1);
    t = t.reshaped(d);
  }
  if (t.rank() != shape.size()) throw mismatch("wrong rank");
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t found = t.dims()[i];
    const bool ok = shape[i].is_static() ? found == shape[i].value : found >= 1;
    if (!ok) throw mismatch(str_cat("wrong shape at dim ", i));
  }
  return t;
}

bool has_nonfinite(const Tensor& t) {
  const size_t n = t.numel();
  switch (t.dtype()) {
    case DType::kFloat: {
      const float* p = t.data<float>();
      for (size_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return true;
      return false;
    }
    case DType::kDouble: {
      const double* p = t.data<double>();
      for (size_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return true;
      return false;
    }
    case DType::kFloat16:
    case DType::kBfloat16: {
      // An all-ones exponent is an infinity or a NaN in both 16-bit formats.
      const uint16_t mask = t.dtype() == DType::kFloat16 ? 0x7C00 : 0x7F80;
      const auto* p = static_cast<const uint8_t*>(t.raw());
      for (size_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        if ((v & mask) == mask) return true;
      }
      return false;
    }
    default: return false;
  }
}

}  // namespace ptq::data
