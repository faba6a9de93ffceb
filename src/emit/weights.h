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
// The scales quantize_weight gives without a minimum or 7 bits, without computing the codes.
std::vector<float> weight_scales(const Tensor& w, int64_t axis, DType type, quant::Symmetry symmetry);

// How an op's weights meet ORT's u8×s8 GEMM, which on x86 without VNNI multiplies raw uint8
// activation codes with int8 weight codes in adjacent K pairs (k = 2j, 2j + 1) and saturates each
// pair sum to int16 (vpmaddubsw). kConv: W [M, C/g, kh(, kw)], K in ORT's NHWC im2col order
// k = (ky·kw + kx)·C/g + c; kKByN: W [..., K, N] (MatMul, Gemm transB = 0); kNByK: W [N, K]
// (Gemm transB = 1).
enum class PairLayout { kConv, kKByN, kNByK };

// Without per-channel maxima (a table without them, and no --calib to measure them): the
// activation code up to which pair_safe_weight_scales guarantees no saturation. 255 (any
// activation) costs more resolution than saturation costs; measured in the integer mode (= ORT)
// on 900 ImageNet images, output SQNR / top-1 agreement with fp32, full 8-bit -> 192 -> 255:
// efficientnet-lite0 11.6 -> 15.0 -> 17.8 dB / 93.7 -> 96.7 -> 97.7 %; mobilenetv2 14.2 -> 15.6
// -> 15.3 dB / 92.6 -> 94.2 -> 91.7 % (top-1 738 -> 736 -> 723 of 900); squeezenet1.1 neutral.
// 192 helps both, yet efficientnet-lite0's ReLU6 outputs sit at code 255 often enough that
// ORT on x86 without VNNI still lost 3.3 dB there (15.1 dB vs 18.4 dB with exact sums).
constexpr double kPairSafeActivationCode = 192;

// With per-channel maxima, each input channel's code bound is its calibration maximum's code,
// but at least this: codes up to 128 can never saturate a pair alone (128 · 2 · 127 = 32767 -
// 255), so a channel calibration saw small stays safe up to code 128 whatever its weights.
constexpr double kPairCodeFloor = 128;

// The smallest scale per output channel (M or N) for which no K pair can saturate while the
// activation codes stay <= kPairSafeActivationCode: each pair's positive codes sum to at most 170
// and its negative codes to at least -170 (192 · 170 = 32640 fits int16). Only channels with two
// large same-sign weights side by side get a larger scale, where --reduce-range would halve every
// channel's resolution.
// With `k_codes` (per input channel for kConv, all groups' channels in order; per K otherwise):
// the largest activation code each K reaches, so that a pair bounds its own sum
// (sum of code_k · |q_k| over each sign <= 32767) instead of assuming 192 for every K: a channel
// that never gets near the top costs its pair partners nothing, one that sits at 255 is safe.
std::vector<float> pair_safe_weight_scales(const Tensor& w, PairLayout layout, const std::vector<double>& k_codes = {});

// int32 bias with scale s_x * s_w[c] (float32 product); returns the bias scales in `scale`.
Tensor quantize_bias(const Tensor& b, float input_scale, const std::vector<float>& weight_scale,
                     std::vector<float>& scale);

// The smallest weight scale per channel for which the int32 bias leaves room in the int32
// accumulator for the `terms` products (|x - z_x| <= 255, |w| <= 128) an output adds to it:
// ORT's fused kernels add bias and products in int32, and a bias near INT32_MIN wrapped around
// (efficientnet-lite0's stem: two dead channels with bias codes of -2^31 + 2088).
std::vector<float> bias_safe_weight_scales(const Tensor& b, float input_scale, size_t channels, int64_t terms);

// Packs zero points (or a scalar) as a tensor of `type`: scalar dims when per-tensor.
Tensor zero_point_tensor(const std::vector<int32_t>& zp, DType type, bool per_channel);
Tensor scale_tensor(const std::vector<float>& scale, bool per_channel);

}  // namespace ptq::emit
