// What the emitted model should look like: target profile, integer types, symmetry, granularity.
#pragma once

#include <string>
#include <vector>

#include "ptq/core/dtype.h"
#include "ptq/quant/quant_params.h"

namespace ptq::quant {

enum class Target {
  kOrtX86,   // uint8 asymmetric activations, int8 symmetric weights, Relu/Clip folded into Q
  kTrt,      // int8 symmetric everywhere, all zero points 0, Q/DQ on inputs of quantized ops
  kGeneric,  // types and symmetry from the flags
};

// Where Q/DQ goes (--preset). Transformer placement: MatMul/Gemm quantized on their inputs only
// (float outputs, which ORT fuses as MatMulIntegerToFloat), residual/bias Add and Mul,
// LayerNormalization and GELU internals fp32: their outliers (|x| ~ 200 in one channel of a
// residual stream whose median channel stays near 2) do not survive one per-tensor scale.
enum class Preset { kAuto, kCnn, kTransformer };

enum class ReduceRange { kAuto, kOn, kOff };

// uint8 weights (zero point 127, codes 0..254) instead of pair-safe int8 ones (--uint8-weights),
// for the nodes ORT would run through its u8×s8 GEMM (not depthwise Convs, whose kernels are exact
// either way and whose u8×u8 ones are slow): ORT's u8×u8 kernels widen to 16 bits and never
// saturate, so those weights keep the full 8-bit grid. kAuto: on the nodes where the pair-safe (or
// 7-bit) grid would add more than kUint8WeightsLossDb of weight noise over the plain one
// (kWhereCoarse, the emitter's per-node rule), and only where the pipeline measures the model
// better with them (pipeline/after_calibration.cpp resolves kAuto to kWhereCoarse or kOff; the
// emitter treats an unresolved kAuto as kOff). The 1 dB was measured against 0.5 and 0.25 (more nodes):
// agreement with fp32 on mobilenetv2 / efficientnet-lite0 / squeezenet1.1 / ppocr-cls 97.3 / 99.1 /
// 96.4 / 99.3 % against 97.9 / 98.1 / 95.7 / 98.7 and 97.6 / 98.3 / 95.9 / 98.7 (docs/quantization.md).
enum class Uint8Weights { kOff, kAuto, kWhereCoarse, kOn };
inline constexpr double kUint8WeightsLossDb = 1.0;

// A real-valued range that maps onto an integer grid.
struct Range {
  float min = 0.f;
  float max = 0.f;
  // max(0, max x) per channel (axis 1) over the calibration data, for the inputs of the Convs and Gemms
  // whose weight scales must keep ORT's K pairs from saturating (emit/weights.h); empty: unknown.
  std::vector<float> channel_max;
};

struct QuantConfig {
  Target target = Target::kOrtX86;
  DType activation_type = DType::kUint8;
  Symmetry activation_symmetry = Symmetry::kAsymmetric;
  DType weight_type = DType::kInt8;
  Symmetry weight_symmetry = Symmetry::kSymmetric;
  bool per_channel = true;
  // 7-bit weights (quant::reduced_range), so no pair of uint8 x int8 products saturates ORT's
  // vpmaddubsw kernels on x86 CPUs without VNNI. kAuto: only for nodes that read the model's input
  // data (an image fills the whole uint8 grid, so adjacent products saturate often; activations
  // deeper in the net sit near their zero point); the other Conv/MatMul/Gemm weights get pair-safe
  // scales (emit/weights.h). --reduce-range: all 7-bit; --no-reduce-range: none, plain 8-bit.
  ReduceRange reduce_range = ReduceRange::kAuto;
  Uint8Weights uint8_weights = Uint8Weights::kAuto;  // only with reduce_range kAuto
  // ORT: a Relu/Clip(0, x) after a quantized op is removed; Q with z = qmin clamps the same way.
  bool fold_relu = true;
  // ORT: Q after weighted ops too, so they fuse into QLinearConv/QGemm; TRT: inputs only.
  bool quantize_outputs = true;
  Preset preset = Preset::kAuto;           // kAuto: transformer placement when the graph has attention
  // Add and Mul as int8 ops (QLinearAdd/QLinearMul) in CNN placement (--elementwise). Off for ORT:
  // each quantized Add/Mul output is one more rounding, and ORT runs the float op as fast between
  // the DQ and the next Conv's Q (PP-OCRv4-rec's affine and HardSwish chains, 4 Add/Mul per Conv:
  // exact-match drop 4.3 -> 0.8 points, int8 faster). A SiLU's Mul(x, Sigmoid(x)) stays int8
  // either way: QLinearSigmoid -> QLinearMul keeps YOLOX's int8 model faster than fp32 (its fp32
  // Sigmoid would be 3 points of detections better and 15 % slower than fp32). On for TensorRT,
  // which fuses a quantized residual Add into the Conv before it.
  bool quantize_elementwise = false;
  // A HardSwish written out as x * Clip(x + 3, 0, 6) as int8 ops even when Add and Mul stay fp32
  // (--hardswish): QLinearAdd (the Clip becomes its Q's range) and QLinearMul, so ORT runs
  // PP-OCRv4-rec's 28 LCNet blocks on integers instead of five float ops between DQ and Q each.
  bool quantize_hardswish = true;
  // Such a HardSwish's input taken for a HardSwish input (passes::activation_inputs): its range
  // fitted through the activation and its Conv given a gain by empirical bias correction, as a
  // HardSwish node's (--fit-written-out-hardswish). Off: on PP-OCRv4-rec it measured better on
  // average over eight calibration sets but worse on the published one, and worse on ppocr-cls
  // (docs/quantization.md, "Written-out HardSwish inputs").
  bool fit_written_out_hardswish = false;
  std::string exclude_nodes;              // ECMAScript regex on node names ("" = none)
  std::vector<std::string> exclude_ops;   // op types left in fp32
};

// Whether Conv (not depthwise)/MatMul/Gemm weights get pair-safe int8 scales (emit/weights.h),
// the ones --uint8-weights replaces: uint8 activations, symmetric int8 weights, reduce_range kAuto.
inline bool pair_safe_weights(const QuantConfig& c) {
  return c.reduce_range == ReduceRange::kAuto && c.activation_type == DType::kUint8 && c.weight_type == DType::kInt8 &&
         c.weight_symmetry == Symmetry::kSymmetric;
}

// The defaults of a target profile (the generic profile starts from ORT's and takes flags).
QuantConfig config_for(Target target);
// "ort-x86" | "trt" | "generic"; throws UsageError naming the flag value otherwise.
Target parse_target(const std::string& name);
const char* target_name(Target target);
// "auto" | "cnn" | "transformer"; throws UsageError naming the flag value otherwise.
Preset parse_preset(const std::string& name);
// The value of --elementwise or --hardswish: true for "int8", false for "fp32"; throws UsageError
// naming `flag` otherwise.
bool parse_int8_or_fp32(const char* flag, const std::string& value);
const char* preset_name(Preset preset);
// "off" | "auto" | "on" (--uint8-weights); throws UsageError naming the flag value otherwise.
Uint8Weights parse_uint8_weights(const std::string& value);
const char* uint8_weights_name(Uint8Weights mode);

}  // namespace ptq::quant
