// Python data -> in-memory samples: each array is copied once, so the Python objects may go.
#include "samples.h"

#include <pybind11/numpy.h>

#include "ptq/core/error.h"

namespace py = pybind11;

namespace ptq::python {
namespace {

// Through Python attributes: pybind11 2.10 reads the descriptor struct, whose layout numpy 2 changed.
DType dtype_of(const py::dtype& dt) {
  const auto size = dt.attr("itemsize").cast<int>();
  switch (dt.attr("kind").cast<std::string>()[0]) {
    case 'f': return size == 4 ? DType::kFloat : size == 8 ? DType::kDouble : size == 2 ? DType::kFloat16 : DType::kUndefined;
    case 'i': return size == 1 ? DType::kInt8 : size == 2 ? DType::kInt16 : size == 4 ? DType::kInt32
                   : size == 8 ? DType::kInt64 : DType::kUndefined;
    case 'u': return size == 1 ? DType::kUint8 : size == 2 ? DType::kUint16 : size == 4 ? DType::kUint32
                   : size == 8 ? DType::kUint64 : DType::kUndefined;
    case 'b': return size == 1 ? DType::kBool : DType::kUndefined;
    default: return DType::kUndefined;
  }
}

// A C-contiguous little-endian copy of `obj` (np.asarray semantics: lists become arrays).
Tensor to_tensor(py::handle obj, const std::string& where) {
  py::array a = py::array::ensure(obj, py::array::c_style);
  PTQ_CHECK(a, IoError, where, ": expected a numpy array, found ", std::string(py::str(py::type::of(obj).attr("__name__"))));
  if (a.dtype().attr("byteorder").cast<std::string>() == ">")
    a = py::array::ensure(a.attr("astype")(a.dtype().attr("newbyteorder")("<")), py::array::c_style);
  const DType t = dtype_of(a.dtype());
  PTQ_CHECK(t != DType::kUndefined, IoError, where, ": numpy dtype ", std::string(py::str(a.dtype())),
            " is not supported (float32, float16, float64, int8..int64, uint8..uint64, bool)");
  const Dims dims(a.shape(), a.shape() + a.ndim());
  return Tensor::from_bytes(t, dims, a.data(), a.attr("nbytes").cast<size_t>());
}

data::SampleTensors to_sample(py::handle item, const std::string& at) {
  data::SampleTensors s;
  if (py::isinstance<py::dict>(item) || py::hasattr(item, "keys")) {
    for (py::handle kv : item.attr("items")()) {
      const py::tuple pair = py::reinterpret_borrow<py::tuple>(kv);
      const std::string name = py::str(pair[0]);
      s[name] = to_tensor(pair[1], str_cat(at, ": input '", name, "'"));
    }
  } else {
    s[""] = to_tensor(item, at);
  }
  return s;
}

}  // namespace

std::shared_ptr<const data::MemorySamples> materialize(py::handle data, const std::string& label) {
  auto out = std::make_shared<data::MemorySamples>();
  const auto add = [&](py::handle item) { out->push_back(to_sample(item, str_cat(label, "[", out->size(), "]"))); };
  if (py::hasattr(data, "get_next")) {
    for (;;) {
      py::object item = data.attr("get_next")();
      if (item.is_none()) break;
      add(item);
    }
  } else {
    for (py::handle item : py::iter(data)) add(item);
  }
  return out;
}

}  // namespace ptq::python
