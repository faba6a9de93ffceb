// Mask-like tensors: attention masks and whatever carries their huge values up to a Softmax.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ptq/ir/graph.h"
#include "ptq/quant/quant_config.h"

namespace ptq::passes {

// |x| at or beyond this is a mask value (HF BERT: -10000 or finfo(float32).min), never an
// activation int8 can carry: one such value in a tensor's range crushes every other value to
// the zero point, and an unpadded calibration set never shows it at all.
constexpr float kMaskMagnitude = 1e4f;

struct MaskTensor {
  ir::ValueId value = ir::kNone;
  // The seed it was computed from (found from a constant or its own range); itself for a seed.
  ir::ValueId origin = ir::kNone;
  std::string why;
};

// Tensors that must stay fp32, in value-id order: outputs of value-carrying ops (Where, Add,
// Mul, Expand, Reshape, ...) with a float constant operand of |x| >= kMaskMagnitude, computed
// tensors whose calibrated range reaches it, and everything computed from those through
// value-carrying ops (which excludes Softmax: that is where a mask path ends).
std::vector<MaskTensor> find_mask_paths(const ir::Graph& graph, const std::map<std::string, quant::Range>& ranges);

}  // namespace ptq::passes
