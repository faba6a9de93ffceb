// Target profiles (the --target switch) and their defaults.
#include "ptq/quant/quant_config.h"

#include "ptq/core/error.h"

namespace ptq::quant {

QuantConfig config_for(Target target) {
  QuantConfig c;
  c.target = target;
  if (target == Target::kTrt) {
    c.activation_type = DType::kInt8;
    c.activation_symmetry = Symmetry::kSymmetric;
    c.fold_relu = false;  // TensorRT fuses Conv+Relu itself; Q/DQ goes after the Relu
    c.quantize_outputs = false;
    c.quantize_elementwise = true;
  }
  return c;
}

Target parse_target(const std::string& name) {
  if (name == "ort-x86") return Target::kOrtX86;
  if (name == "trt") return Target::kTrt;
  if (name == "generic") return Target::kGeneric;
  throw UsageError(str_cat("--target: unknown target '", name, "' (use ort-x86, trt or generic)"));
}

Preset parse_preset(const std::string& name) {
  if (name == "auto") return Preset::kAuto;
  if (name == "cnn") return Preset::kCnn;
  if (name == "transformer") return Preset::kTransformer;
  throw UsageError(str_cat("--preset: unknown preset '", name, "' (use auto, cnn or transformer)"));
}

bool parse_int8_or_fp32(const char* flag, const std::string& value) {
  if (value == "int8") return true;
  if (value == "fp32") return false;
  throw UsageError(str_cat(flag, ": unknown value '", value, "' (use int8 or fp32)"));
}

Uint8Weights parse_uint8_weights(const std::string& value) {
  if (value == "off") return Uint8Weights::kOff;
  if (value == "auto") return Uint8Weights::kAuto;
  if (value == "on") return Uint8Weights::kOn;
  throw UsageError(str_cat("--uint8-weights: unknown value '", value, "' (use off, auto or on)"));
}

const char* uint8_weights_name(Uint8Weights mode) {
  switch (mode) {
    case Uint8Weights::kOff: return "off";
    case Uint8Weights::kAuto: return "auto";
    case Uint8Weights::kWhereCoarse: return "auto (kept)";
    case Uint8Weights::kOn: return "on";
  }
  return "?";
}

const char* preset_name(Preset preset) {
  switch (preset) {
    case Preset::kAuto: return "auto";
    case Preset::kCnn: return "cnn";
    case Preset::kTransformer: return "transformer";
  }
  return "?";
}

const char* target_name(Target target) {
  switch (target) {
    case Target::kOrtX86: return "ort-x86";
    case Target::kTrt: return "trt";
    case Target::kGeneric: return "generic";
  }
  return "?";
}

}  // namespace ptq::quant
