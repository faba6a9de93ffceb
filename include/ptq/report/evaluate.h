// Runs a reference model and a test model over the same samples and measures how they differ.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"
#include "ptq/data/dataset.h"
#include "ptq/ir/model.h"
#include "ptq/report/labels.h"
#include "ptq/report/report.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::report {

enum class Task { kAuto, kClassify, kGeneric };
Task parse_task(const std::string& name);  // "auto" | "classify" | "generic"; UsageError otherwise

// An intermediate tensor compared between the two models (by name in each graph).
struct Probe {
  std::string tensor_a, tensor_b;
  // tensor_b is the integer output of a QuantizeLinear: dequantize it with these (so the probe
  // works in integer-kernel mode too, where fused groups produce no float intermediates).
  bool dequantize = false;
  float scale = 1.f;
  int32_t zero_point = 0;
  int32_t qmin = 0, qmax = 0;  // the integer grid (uint8 or int8)
  // Per channel (axis 1), how much larger the test graph's tensor is than the reference's (a
  // depthwise input's grid refined per channel: passes/depthwise_scales.h); empty: the same.
  std::vector<float> channel_scale;
  // The range the int8 grid represents, [(qmin - zp)·scale, (qmax - zp)·scale].
  double clip_lo() const { return static_cast<double>(qmin - zero_point) * scale; }
  double clip_hi() const { return static_cast<double>(qmax - zero_point) * scale; }
};

// Models whose tensors hold some channels scaled (passes/depthwise_scales.h) say so in their
// metadata, so that `compare` sets Probe::channel_scale too: key kChannelScaleKey + tensor name,
// value the factors per channel, comma-separated (round-trip decimal).
inline constexpr const char* kChannelScaleKey = "ptq.channel_scale:";
std::string format_channel_scale(const std::vector<float>& s);
// The factors the model records for `tensor` (empty: none, or malformed).
std::vector<float> recorded_channel_scale(const ir::Model& m, const std::string& tensor);

// The probe for `a_name` (reference graph) against `b_name` in the test graph: for a tensor the
// emitter quantized (`X -> QuantizeLinear -> DequantizeLinear`), the QuantizeLinear output with
// its per-tensor scale and zero point; otherwise the tensor itself.
Probe make_probe(const ir::Graph& test, const std::string& a_name, const std::string& b_name);

struct EvalOptions {
  Task task = Task::kAuto;
  const Labels* labels = nullptr;
  std::vector<Probe> probes;
  size_t max_samples = 0;  // 0: every sample of the dataset
  // Probes are compared on the samples with index below this only (0: every sample). The
  // comparison reads every probed tensor of both models back from memory; the per-layer figures
  // settle long before the accuracy figures do.
  size_t probe_samples = 0;
  runtime::InterpreterOptions a_runtime;  // observer and threads are set by evaluate
  runtime::InterpreterOptions b_runtime;  // the test model's execution mode lives here
  // Workers running samples side by side, each with single-threaded kernels; 0: all cores.
  size_t threads = 0;
};

// Reference outputs kept between evaluations on the same data (fallback steps rerun only the
// test model). Filled by the first evaluate() that gets it; reused when it covers the samples.
struct ReferenceCache {
  std::map<size_t, std::vector<Tensor>> outputs;  // by Sample::index
  size_t samples = 0;
  bool filled = false;
};

struct EvalResult {
  Measure measure;
  std::vector<std::optional<ErrorStats>> probes;  // nullopt: a tensor never appeared
  // The reference values of each dequantized probe over its clip range (nullopt otherwise).
  std::vector<std::optional<ValueHistogram>> histograms;
};

// Streams `data` from the start (rewinding it), runs both models on every sample (up to
// max_samples; samples spread over `threads` workers) and accumulates output and probe
// statistics per sample, merged in sample order: the figures do not depend on the thread count.
EvalResult evaluate(const ir::Model& a, const ir::Model& b, data::Dataset& data, const EvalOptions& options,
                    ReferenceCache* cache = nullptr);

// Workers for a thread setting (0: all cores), at most `jobs` and at least 1.
size_t worker_count(size_t threads, size_t jobs);


}  // namespace ptq::report
