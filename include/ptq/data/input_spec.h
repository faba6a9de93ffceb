// What a model expects of each runtime input, shape overrides, and checking a tensor against it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"
#include "ptq/ir/graph.h"

namespace ptq::data {

// A user's shape for one input ("NAME:1x3x224x224"), fixing its symbolic dims.
struct InputShape {
  std::string name;
  Dims dims;
};

// One runtime input as calibration data must match it.
struct InputSpec {
  std::string name;
  DType dtype = DType::kUndefined;   // kUndefined: the model declares none, anything goes
  std::optional<ir::Shape> shape;    // nullopt: rank unknown, any shape goes
};

// Parses "NAME:1x3x224x224" (or "NAME:1,3,224,224"); the last ':' separates, so names such as
// "input:0" work. UsageError naming `flag` on bad syntax or a non-positive dim.
InputShape parse_input_shape(const std::string& flag, const std::string& text);

// Specs of graph.runtime_inputs() in order, with overrides applied. UsageError when an override
// names no runtime input, has the wrong rank, or contradicts a static dim.
std::vector<InputSpec> make_input_specs(const ir::Graph& graph,
                                        const std::vector<InputShape>& overrides = {});

// "[1,3,224,224]", "[N,3,?,?]": dims as the model declares them (for messages).
std::string shape_str(const ir::Shape& shape);
std::string dims_str(const Dims& dims);

// Checks dtype, rank and dims (static dims equal, symbolic or unknown dims >= 1) and returns the
// tensor, with a leading batch dim of 1 added when the data lacks it and the model's first dim
// is 1 or symbolic. IoError "input 'x': expected float [1,3,224,224], found ..." otherwise
// (callers add the file as context).
Tensor conform_tensor(const InputSpec& spec, Tensor t);

// True when a floating tensor (float, double, float16, bfloat16) holds a NaN or an infinity.
bool has_nonfinite(const Tensor& t);

}  // namespace ptq::data
