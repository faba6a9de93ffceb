// Internal: the mean output shift that weight quantization causes, for folding into the bias.
#pragma once

#include <vector>

#include "ptq/ir/node.h"
#include "weights.h"

namespace ptq::emit {

// Per output channel, E[x·W] - E[x·DQ(Wq)] = sum over the channel's inputs of (W - DQ(Wq)) times
// the input's mean E[x] (Conv: one mean per input channel, kernel taps summed; Gemm: one per K).
// Border padding is ignored. Empty when the node or the layout is not one of those, or the means
// do not match the weight's input size.
std::vector<double> weight_bias_shift(const ir::Node& n, const Tensor& w, const QuantizedWeight& qw,
                                      const std::vector<double>& x_mean);

}  // namespace ptq::emit
