// Python data -> in-memory samples: numpy arrays copied into ptq::Tensor under the GIL.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "ptq/data/dataset.h"

namespace ptq::python {

// Reads every sample of `data` now: an object with get_next() (ONNX Runtime's
// CalibrationDataReader; None ends it) or any iterable; each sample is a mapping of input name to
// array-like, or one array-like for a single-input model. Sample i is "LABEL[i]" in errors
// (IoError for an unsupported dtype or a value that is no array). Needs the GIL.
std::shared_ptr<const data::MemorySamples> materialize(pybind11::handle data, const std::string& label);

}  // namespace ptq::python
