// The padded-batch check: a transformer's outputs must not change when its inputs are padded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ptq/data/dataset.h"
#include "ptq/ir/model.h"
#include "ptq/report/report.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::report {

// The positions of `y` the mask keeps: when y is [batch, seq, ...] like the [batch, seq] mask,
// the rows where the mask is 0 are dropped (flattened to [kept, ...]); otherwise y unchanged.
// Padded positions of a sequence output hold whatever the model computes there, which differs
// between fp32 and int8 and means nothing: comparing them reported 5 dB on correct MiniLM models.
Tensor masked_positions(const Tensor& y, const Tensor& mask);

// At most this many samples (the first ones, by index): four extra runs per sample.
constexpr size_t kPaddingSamples = 32;

// A padded model output should match the unpadded one this closely (int8 embeddings of a correct
// model: >= 0.9999; a quantized attention-mask path: 0.4-0.8).
constexpr double kPaddingMinCosine = 0.999;

// The runtime input that is an attention mask: an integer or bool input whose name contains
// "mask" and whose sample tensor is [batch, sequence] of 0s and 1s; "" when there is none.
std::string attention_mask_input(const data::Sample& sample);

// When the data has an attention mask: runs both models on up to kPaddingSamples samples (and
// at most `max_samples` unless 0) and on
// the same samples padded to the next multiple of 64 positions past their length (mask 0, the
// other [batch, sequence] inputs 0). nullopt when the data has no attention mask. Rewinds `data`.
// Throws the runtime's Error when a model cannot run the padded sample (a fixed sequence length).
std::optional<PaddingCheck> check_padding(const ir::Model& a, const ir::Model& b, data::Dataset& data,
                                          size_t max_samples, const runtime::InterpreterOptions& a_runtime,
                                          const runtime::InterpreterOptions& b_runtime);

}  // namespace ptq::report
