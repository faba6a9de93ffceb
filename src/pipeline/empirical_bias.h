// Internal: empirical bias correction, each quantized Conv's bias moved by the fp32 minus int8
// mean of its output, in graph order, where that lowers the output's error on rows it did not
// come from; a Conv read through a SiLU or HardSwish also gets a gain per output channel.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "ptq/emit/qdq_emitter.h"
#include "ptq/report/accuracy.h"
#include "ptq/report/sensitivity.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::pipeline {

struct EmpiricalBias {
  emit::ChannelMeans shift;  // by Conv output name, per output channel: emit_qdq's bias_shift
  emit::ChannelMeans gain;   // the same for the gains (Convs with all gains 1 absent): passes::scale_conv_outputs's
  size_t measured = 0;       // Convs measured (shift.size() of them kept)
};

// `built`: an int8 model of `prepared` without shifts; `rows`: calibration rows' inputs (each
// half's means are judged on the other half; fewer than 2 rows: nothing). The int8 model runs as
// the graph means (DequantizeLinear -> float op -> QuantizeLinear), the fp32 model (with
// `fp32_runtime`'s mode) alongside, both once over the rows in graph order and keeping only the
// front of the graph: Conv k's output is computed with the shifts of the Convs before it already
// applied. Per row, `threads` workers; the figures do not depend on them. `written_out_hardswish`:
// as passes::activation_inputs's (the Convs that get gains are those calibration fitted through).
EmpiricalBias empirical_bias_shift(const ir::Model& prepared, const report::BuiltModel& built,
                                   const std::vector<std::map<std::string, Tensor>>& rows,
                                   const runtime::InterpreterOptions& fp32_runtime, size_t threads,
                                   bool written_out_hardswish = false);

}  // namespace ptq::pipeline
