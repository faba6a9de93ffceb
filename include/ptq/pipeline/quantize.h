// The main job as a library call: fp32 ONNX -> prepared graph -> ranges -> QDQ int8 ONNX.
#pragma once

#include <string>
#include <optional>
#include <vector>

#include <functional>
#include <utility>
#include <memory>

#include "ptq/calib/calib_stats.h"
#include "ptq/calib/calib_table.h"
#include "ptq/data/dataset.h"
#include "ptq/ir/model.h"
#include "ptq/onnx_io/save.h"
#include "ptq/quant/quant_config.h"
#include "ptq/report/accuracy.h"
#include "ptq/report/search.h"

namespace ptq::pipeline {

// Lowest and highest default-domain opsets of emitted models: per-axis Q/DQ needs 13; opset 22
// re-versions Conv and the pools, which ORT's QDQ selectors did not match for a long time.
constexpr int64_t kMinOutputOpset = 13;
constexpr int64_t kMaxOutputOpset = 21;

// --mode: static (calibrated QDQ, activations with fixed ranges), dynamic (int8 weights,
// activations quantized at run time by DynamicQuantizeLinear, as ORT's quantize_dynamic) or
// weight-only (blockwise 4/8-bit weights in com.microsoft MatMulNBits / GatherBlockQuantized,
// float activations).
enum class Mode { kStatic, kDynamic, kWeightOnly };
// "static" | "dynamic" | "weight-only"; UsageError otherwise.
Mode parse_mode(const std::string& name);

// --effort: how much measuring the static pipeline spends on accuracy after calibration. fast:
// none (calibration only); default: bias correction where it measures better, then the placement
// search (report/search.h) on 4 calibration rows up to 20 dB output SQNR, at most 3 % of the nodes
// in fp32, then empirical bias correction on the same rows; max: 16 rows, up to 30 dB, at most 6 %.
enum class Effort { kFast, kDefault, kMax };
// "fast" | "default" | "max"; UsageError otherwise.
Effort parse_effort(const std::string& name);
// The search settings of an effort (nullopt for fast).
std::optional<report::SearchOptions> search_options(Effort effort);

// --method auto: the calibration methods' ranges compared on measured model-output error.
inline constexpr const char* kAutoMethod = "auto";

struct QuantizeOptions {
  Mode mode = Mode::kStatic;
  std::string model_path;
  std::string output_path;
  quant::QuantConfig config;
  // "auto" (kAutoMethod) by measurement (docs/results.md, docs/quantization.md): one calibration
  // pass, then every method's ranges, and the one whose int8 model measures the best model-output
  // SQNR on the search's calibration rows (percentile unless another leads by a margin). No single
  // method is best everywhere: entropy on mobilenetv2 and squeezenet1.1, percentile on
  // PP-OCRv4-rec, efficientnet-lite0 and YOLOX; entropy collapses on sparse post-ReLU tensors
  // without its guard (mnist-cnn).
  std::string method = kAutoMethod;
  Effort effort = Effort::kDefault;
  // Bias correction (emit/bias_correction.h): each quantized Conv/Gemm bias absorbs the mean shift
  // its quantized weights cause, from the search's fp32 runs, kept when it raises the measured
  // output SQNR (--no-bias-correction; --effort fast measures nothing, so has none).
  bool bias_correction = true;
  // Empirical bias correction (pipeline/empirical_bias.h): each quantized Conv's bias moved by the
  // fp32 minus int8 mean of its output, in graph order, where that lowers the output's error on
  // the other half of the --effort rows (--no-empirical-bias-correction; off with
  // --no-bias-correction too).
  bool empirical_bias_correction = true;
  // Depthwise Conv inputs get per-channel grids folded into the neighbouring Convs' weights
  // (passes/depthwise_scales.h), kept when they raise the measured output SQNR
  // (--no-depthwise-scales; --effort fast measures nothing, so has none).
  bool depthwise_scales = true;
  calib::CalibParams params;
  std::string calib_data;  // --calib: a folder or list file of samples
  // Samples in memory instead (the Python package); calib_data then only names them in messages.
  std::shared_ptr<const data::MemorySamples> calib_samples;
  data::DataOptions data;  // layouts, preprocessing, counts
  size_t threads = 0;      // 0: all cores
  std::function<void(int pass, int passes, size_t done, size_t total)> progress;
  std::string load_calib;  // reuse a calibration table instead of calibrating
  std::string save_calib;
  bool force = false;      // accept a calibration table made for another model file
  // --smoothquant ALPHA: migrate activation outliers into weights before calibrating (needs
  // --calib). Unset: on (passes::kDefaultSmoothQuantAlpha) for transformers unless no_smoothquant.
  // Dynamic mode: statistics from --calib when given, else estimated from LayerNormalization
  // weights (passes::norm_channel_estimates).
  std::optional<float> smoothquant;
  bool no_smoothquant = false;
  // --mode weight-only: --bits 4|8 and --block-size (a power of two >= 16; the CLI's default is
  // 16 for 4 bits, 128 for 8, by measurement: docs/results.md#weight-only-mode). With --calib the
  // weights are quantized by GPTQ, else round to nearest.
  int bits = 4;
  int64_t block_size = 16;
  onnx_io::SaveOptions save;
  // Accuracy report (fp32 vs the emitted int8 model) when set. `accuracy.data_path` empty: the
  // calibration data (the report says so); gate, sensitivity and fallback settings live there.
  bool check_accuracy = false;
  report::AccuracyOptions accuracy;
};

struct QuantizeResult {
  std::vector<std::string> prepared;  // preparation changes
  std::vector<std::string> fp32;      // nodes left in fp32, with reasons
  std::string placement;              // QuantPlan::placement
  std::vector<std::string> notes;
  std::string method;  // the method whose ranges the model has (what --method auto chose)
  size_t quantized_nodes = 0;
  size_t activation_pairs = 0;
  size_t weights = 0;
  size_t uint8_weights = 0;  // of those, stored as uint8 (--uint8-weights)
  size_t biases = 0;
  int folded_activations = 0;
  uint64_t fp32_bytes = 0;  // the input model file and its external data files
  uint64_t int8_bytes = 0;  // the written model (and its external data)
  std::optional<report::SearchResult> search;  // when the placement search ran
  // Wall time per phase in seconds, in order ("load", "calibrate", "search", "emit", "report").
  std::vector<std::pair<std::string, double>> phases;
  std::optional<report::Report> report;  // when check_accuracy
};

// Loads the model, converts it to opset >= 13 when older (the onnx version converter), and
// runs the preparation passes: what calibration sees and what the emitter rewrites.
ir::Model load_prepared(const std::string& model_path);

// Bytes of a model file and the external data files it was loaded with.
uint64_t model_bytes(const ir::Model& model, const std::string& path);

// The accuracy report's options for a run: --eval, or else the calibration data (with a warning),
// validated, with the run's threads and model paths. UsageError when there is no data at all.
report::AccuracyOptions accuracy_setup(const QuantizeOptions& options);

// --calib (or calib_samples) as a dataset over `graph` (the one place calibration data is opened).
data::Dataset open_calib(const QuantizeOptions& options, const ir::Graph& graph);

// `quantize calibrate --shard I/N`: quantize()'s calibration pass (same preparation, histogram
// choice and method) over shard I of --calib, stopped before the method reduces it to ranges.
// UsageError where ranges need all samples first (SmoothQuant) or the shard has no sample.
calib::CalibStats calibrate_shard(const QuantizeOptions& options, const calib::Shard& shard);

// The whole job; throws ptq::Error subclasses with context.
QuantizeResult quantize(const QuantizeOptions& options);

}  // namespace ptq::pipeline
