// Internal: the dynamic-quantization job (pipeline::quantize with Mode::kDynamic).
#pragma once

#include "ptq/pipeline/quantize.h"

namespace ptq::pipeline {

QuantizeResult quantize_dynamic(const QuantizeOptions& options);

}  // namespace ptq::pipeline
