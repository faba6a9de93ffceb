// Tensors read only through an elementwise activation that flattens below zero (SiLU, HardSwish):
// calibration fits their ranges to the error after the activation (calib/through.h).
#pragma once

#include <map>

#include "ptq/ir/graph.h"

namespace ptq::passes {

enum class ActivationInput {
  kSilu,       // x * Sigmoid(x): a Sigmoid and a Mul of x by it are x's only readers (YOLOX, EfficientNet)
  kHardSwish,  // a HardSwish node is x's only reader (MobileNetV3)
};

// Such tensors of the top-level graph by value id; graph outputs excluded (read as they are).
std::map<ir::ValueId, ActivationInput> activation_inputs(const ir::Graph& graph);

// x when `mul` is the Mul of a SiLU, x * Sigmoid(x) (either operand order); ir::kNone otherwise.
ir::ValueId silu_operand(const ir::Graph& graph, const ir::Node& mul);

}  // namespace ptq::passes
