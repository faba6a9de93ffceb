// Internal: the weight-only job (pipeline::quantize with Mode::kWeightOnly).
#pragma once

#include "ptq/pipeline/quantize.h"

namespace ptq::pipeline {

QuantizeResult quantize_weight_only(const QuantizeOptions& options);

}  // namespace ptq::pipeline
