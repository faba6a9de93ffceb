// Internal: integer weights and int32 biases for DequantizeLinear (per-channel or per-tensor).
#pragma once

#include <vector>

#include "ptq/core/tensor.h"
#include "ptq/quant/quant_config.h"

namespace ptq::emit {

struct QuantizedWeight {
  Tensor q;                    // weight_type, same dims as the float weight
  std::vector<float> scale;    // one per channel (one for per-tensor)
  std::vector<int32_t> zero_point;
  int64_t axis = -1;           // normalised, -1 for per-tensor
};

// Scales from each channel's exact min/max (symmetric for int8 weights), then quantized.
// `min_scale[c]` (optional) raises a channel's scale, e.g. so its bias fits int32.
// `reduce_range`: 7-bit weights (quant::reduced_range).
QuantizedWeight quantize_weight(const Tensor& w, int64_t axis, DType type, quant::Symmetry symmetry,
                                const std::vector<float>& min_scale = {}, bool reduce_range = false);

// int32 bias with scale s_x * s_w[c] (float32 product); returns the bias scales in `scale`.
Tensor quantize_bias(const Tensor& b, float input_scale, const std::vector<float>& weight_scale,
                     std::vector<float>& scale);

// The smallest weight scale per channel for which the bias fits int32 (0 where any scale does).
std::vector<float> bias_safe_weight_scales(const Tensor& b, float input_scale, size_t channels);

// Packs zero points (or a scalar) as a tensor of `type`: scalar dims when per-tensor.
Tensor zero_point_tensor(const std::vector<int32_t>& zp, DType type, bool per_channel);
Tensor scale_tensor(const std::vector<float>& scale, bool per_channel);

}  // namespace ptq::emit
