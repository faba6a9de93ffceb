// Tensors read only through an elementwise activation that flattens below zero (SiLU, HardSwish):
// calibration fits their ranges to the error after the activation (calib/through.h).
#pragma once

#include <map>
#include <optional>

#include "ptq/ir/graph.h"

namespace ptq::passes {

enum class ActivationInput {
  kSilu,       // x * Sigmoid(x): a Sigmoid and a Mul of x by it are x's only readers (YOLOX, EfficientNet)
  kHardSwish,  // a HardSwish node is x's only reader (MobileNetV3), or written out (below) if asked
};

// Such tensors of the top-level graph by value id; graph outputs excluded (read as they are).
// With `written_out_hardswish`, also x whose only readers are the Add(x, 3) and the Mul of a
// HardSwish written out (decomposed_hardswish; PP-LCNet's export).
std::map<ir::ValueId, ActivationInput> activation_inputs(const ir::Graph& graph, bool written_out_hardswish = false);

// x when `mul` is the Mul of a SiLU, x * Sigmoid(x) (either operand order); ir::kNone otherwise.
ir::ValueId silu_operand(const ir::Graph& graph, const ir::Node& mul);

// A HardSwish written out as x * Clip(x + 3, 0, 6) (PaddlePaddle's export; the division by 6
// follows as a Mul or Div), each piece the previous one's sole reader; `clip` is kNone once the
// Clip is folded into the Add's Q (whose range [0, 6] then clamps as it did).
struct HardSwishParts {
  ir::ValueId x = ir::kNone;
  ir::NodeId add = ir::kNone, clip = ir::kNone, mul = ir::kNone;
};
// The parts when `node` is the Add(x, 3) or the Mul of such a HardSwish.
std::optional<HardSwishParts> decomposed_hardswish(const ir::Graph& graph, const ir::Node& node);

}  // namespace ptq::passes
