// `quantize MODEL -o OUT ...`: the main job's flags, mapped onto pipeline::QuantizeOptions.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "cli_common.h"
#include "data_flags.h"
#include "quantize_flags.h"
#include "did_you_mean.h"
#include <chrono>
#include <filesystem>
#include "ptq/calib/methods.h"
#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "ptq/onnx_io/save.h"
#include "ptq/passes/smoothquant.h"
#include "ptq/pipeline/quantize.h"
#include "ptq/core/sha256.h"
#include "ptq/report/report.h"

namespace ptq::cli {
namespace {

DType parse_int_type(const std::string& flag, const std::string& v) {
  if (v == "int8") return DType::kInt8;
  if (v == "uint8") return DType::kUint8;
  throw UsageError(str_cat(flag, ": '", v, "' is not int8 or uint8"));
}

std::string methods_help() {
  std::string s = "Calibration method:";
  for (const calib::Method& m : calib::methods()) s += str_cat("\n  ", m.name, ": ", m.description);
  s += str_cat("\n  ", pipeline::kAutoMethod, ": one calibration pass, then percentile, minmax, entropy or minmax with --minmax-average, whichever int8 model "
               "has the best model-output SQNR on the --effort calibration rows, percentile unless another leads by 1 dB "
               "(percentile with --effort fast and for transformer placement)");
  return s;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = s.find(',', start);
    std::string item = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!item.empty()) out.push_back(item);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// Every output is probed (a temp file created and removed) before any work, so that an unwritable
// report path fails the run before the model is written rather than after.
void check_writable(const std::vector<std::string>& paths) {
  for (const std::string& p : paths)
    if (!p.empty()) AtomicFile probe(p);
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f s", s);
  return buf;
}

std::string with_hash(const std::string& path) {
  return str_cat(path, " (sha256 ", sha256_file(path).substr(0, 16), ")");
}

// The settings that decide the output, the inputs with their hashes, sizes and fp32 nodes.
report::Summary run_summary(const QuantizeFlags& f, const pipeline::QuantizeOptions& o,
                            const pipeline::QuantizeResult& r) {
  report::Summary s;
  s.ptq_version = PTQ_VERSION;
  s.settings.emplace_back("mode", f.mode);
  if (o.mode == pipeline::Mode::kStatic) {
    const std::string& used = r.method.empty() ? o.method : r.method;
    const std::string method = used == "percentile" ? str_cat("percentile ", o.params.percentile) : used;
    s.settings.emplace_back("method", o.method == pipeline::kAutoMethod ? str_cat("auto: ", method) : method);
    s.settings.emplace_back("effort", f.effort);
    s.settings.emplace_back("bias-correction", o.bias_correction && o.effort != pipeline::Effort::kFast ? "on" : "off");
    const bool empirical = o.bias_correction && o.empirical_bias_correction && o.effort != pipeline::Effort::kFast;
    s.settings.emplace_back("empirical-bias-correction", empirical ? "on" : "off");
    s.settings.emplace_back("depthwise-scales", o.depthwise_scales && o.effort != pipeline::Effort::kFast ? "on" : "off");
  }
  if (o.mode == pipeline::Mode::kWeightOnly) {
    s.settings.emplace_back("bits", str_cat(o.bits));
    s.settings.emplace_back("block-size", str_cat(o.block_size));
  }
  s.settings.emplace_back("target", f.target);
  s.settings.emplace_back("preset", f.preset);
  s.settings.emplace_back("elementwise", o.config.quantize_elementwise ? "int8" : "fp32");
  s.settings.emplace_back("hardswish", str_cat(o.config.quantize_hardswish || o.config.quantize_elementwise ? "int8" : "fp32",
                                               o.config.fit_written_out_hardswish ? " with fitted ranges" : ""));
  s.settings.emplace_back("weights", o.config.per_channel ? "per-channel" : "per-tensor");
  s.settings.emplace_back("reduce-range", f.reduce_range ? "on" : f.no_reduce_range ? "off" : "auto");
  s.settings.emplace_back("uint8-weights", quant::uint8_weights_name(o.config.uint8_weights));
  s.settings.emplace_back("smoothquant", o.no_smoothquant ? "off" : o.smoothquant ? str_cat(*o.smoothquant) : "auto");
  if (!o.config.exclude_nodes.empty()) s.settings.emplace_back("exclude-nodes", o.config.exclude_nodes);
  if (!f.exclude_ops.empty()) s.settings.emplace_back("exclude-ops", f.exclude_ops);
  s.inputs.emplace_back("model", with_hash(o.model_path));
  if (!o.calib_data.empty()) s.inputs.emplace_back("calibration data", o.calib_data);
  if (!o.load_calib.empty()) s.inputs.emplace_back("calibration table", with_hash(o.load_calib));
  if (o.check_accuracy && !o.accuracy.data_path.empty()) s.inputs.emplace_back("evaluation data", o.accuracy.data_path);
  if (o.check_accuracy && !o.accuracy.labels_path.empty()) s.inputs.emplace_back("labels", with_hash(o.accuracy.labels_path));
  s.fp32_bytes = r.fp32_bytes;
  s.int8_bytes = r.int8_bytes;
  s.quantized_nodes = r.quantized_nodes;
  s.fp32_nodes = r.fp32;
  return s;
}

// --bits / --block-size: checked and defaulted for --mode weight-only, a warning with other modes.
void set_weight_only_options(pipeline::QuantizeOptions& o, int bits, int64_t block_size, const CLI::App& app) {
  if (o.mode != pipeline::Mode::kWeightOnly) {
    for (const char* flag : {"--bits", "--block-size"})
      if (app.count(flag) > 0) spdlog::warn("{} has no effect without --mode weight-only", flag);
    return;
  }
  PTQ_CHECK(bits == 4 || bits == 8, UsageError, "--bits: ", bits, " is not 4 or 8");
  if (app.count("--block-size") == 0) block_size = bits == 4 ? 16 : 128;  // docs/results.md#weight-only-mode
  PTQ_CHECK(block_size >= 16 && block_size <= (int64_t{1} << 20) && (block_size & (block_size - 1)) == 0, UsageError,
            "--block-size: ", block_size, " is not a power of two from 16 to 2^20");
  o.bits = bits;
  o.block_size = block_size;
}

}  // namespace

void add_calibration_flags(CLI::App& app, QuantizeFlags& f) {
  app.add_option("model", f.o.model_path, "fp32 ONNX model to quantize");
  app.add_option("--calib", f.o.calib_data,
                 "Calibration data: a folder (.npy, .npz, .pb, test_data_set_*, images) or a list file");
  app.add_option("--threads", f.o.threads, "Threads for the reference runtime (default: all cores)")
      ->check(finite_range(1, kMaxThreads));
  add_data_flags(app, f.data);
  app.add_option("--method", f.o.method, methods_help())->default_str(f.o.method);
  app.add_option("--percentile", f.o.params.percentile, "Share of values percentile keeps")
      ->default_str("99.999")->check(finite_range(50.0, 100.0));
  app.add_flag("--minmax-average", f.minmax_average, "minmax: mean of per-sample extremes");
  app.add_flag("--asymmetric-calib", f.asymmetric_calib,
               "percentile/entropy: clip each side separately instead of |x|");
  app.add_option("--target", f.target, "ort-x86 (uint8 activations), trt (int8 symmetric), generic")
      ->default_str("ort-x86");
  app.add_option("--preset", f.preset,
                 "Q/DQ placement: auto (transformer when the graph has attention), cnn, transformer")
      ->default_str("auto");
  app.add_option("--elementwise", f.elementwise,
                 "Add/Mul in CNN placement: fp32 (float between the DQ and the next Q; default for ort-x86 and "
                 "generic) or int8 (QLinearAdd/QLinearMul; default for trt, which fuses residual Adds)");
  app.add_option("--hardswish", f.hardswish,
                 "A HardSwish written out as x * Clip(x + 3, 0, 6): int8 (QLinearAdd/QLinearMul, the default) or fp32 "
                 "(float between the DQ and the next Q, as 6 * x * HardSigmoid(x))");
  app.add_flag("--fit-written-out-hardswish", f.fit_written_out_hardswish,
               "Treat such a HardSwish's input as a HardSwish node's: its range fitted to the error after the activation "
               "and its Conv given a gain per channel by empirical bias correction (off by default: better on average "
               "on PP-OCRv4-rec over eight calibration sets, not on ppocr-cls; docs/quantization.md)");
  f.smoothquant_option = app.add_option("--smoothquant", f.smoothquant,
                                        "Migrate activation outliers into the next MatMul's weights (SmoothQuant), "
                                        "strength ALPHA in [0, 1]")
                             ->expected(0, 1)->check(finite_range(0.0, 1.0));
  app.add_flag("--no-smoothquant", f.no_smoothquant, "No SmoothQuant (on by default for transformers)")
      ->excludes(f.smoothquant_option);
  app.add_option("--activation-type", f.activation_type, "generic target: int8 or uint8");
  app.add_flag("--activation-symmetric", f.activation_symmetric, "generic target: symmetric activations");
  app.add_option("--weight-type", f.weight_type, "generic target: int8 or uint8");
  app.add_flag("--per-tensor", f.per_tensor, "One scale per weight tensor instead of per channel");
  auto* rr = app.add_flag("--reduce-range", f.reduce_range,
                          "7-bit weights everywhere: no int16 saturation in ORT on x86 CPUs without VNNI "
                          "(default: 7-bit for nodes reading the model's input data, elsewhere 8-bit with scales that keep "
                          "pairs of activation codes up to 192 from saturating)");
  app.add_flag("--no-reduce-range", f.no_reduce_range, "Plain full-range 8-bit weights everywhere")
      ->excludes(rr);
  app.add_option("--uint8-weights", f.uint8_weights,
                 "With --reduce-range auto: Conv (not depthwise)/MatMul/Gemm weights as uint8 (zero point 127), which "
                 "ORT runs through its u8xu8 kernels (no saturation, full 8-bit grid): auto (default: on the nodes whose "
                 "pair-safe or 7-bit int8 grid costs over 1 dB of weight precision, kept where the output SQNR on the "
                 "--effort rows rises by 0.5 dB), on (every such node), off (int8 with pair-safe scales)");
  app.add_option("--exclude-nodes", f.o.config.exclude_nodes, "Regex of node names to leave in fp32");
  app.add_option("--exclude-ops", f.exclude_ops, "Comma-separated op types to leave in fp32");
}

pipeline::QuantizeOptions to_quantize_options(const QuantizeFlags& fl, const CLI::App& app) {
  const QuantizeFlags* f = &fl;
  pipeline::QuantizeOptions o = f->o;
  PTQ_CHECK(!o.model_path.empty(), UsageError, "no model given (see quantize --help)");
  if (app.get_parent() == nullptr && !std::filesystem::exists(o.model_path)) {
    const std::string sub = closest(o.model_path, subcommand_names(app));
    PTQ_CHECK(sub.empty(), UsageError, "'", o.model_path, "' is neither a model file nor a subcommand (did you mean quantize ",
              sub, "?)");
  }
  o.mode = pipeline::parse_mode(f->mode);
  const quant::Target target = quant::parse_target(f->target);
  quant::QuantConfig c = quant::config_for(target);
  c.exclude_nodes = o.config.exclude_nodes;
  c.preset = quant::parse_preset(f->preset);
  if (!f->elementwise.empty()) c.quantize_elementwise = quant::parse_int8_or_fp32("--elementwise", f->elementwise);
  if (!f->hardswish.empty()) c.quantize_hardswish = quant::parse_int8_or_fp32("--hardswish", f->hardswish);
  c.fit_written_out_hardswish = f->fit_written_out_hardswish;
  if (!f->uint8_weights.empty()) c.uint8_weights = quant::parse_uint8_weights(f->uint8_weights);
  // Flags the chosen method ignores: said, so nobody believes they took effect.
  const bool weight_only = o.mode == pipeline::Mode::kWeightOnly;
  const bool dynamic = o.mode == pipeline::Mode::kDynamic || weight_only;
  const auto ignored = [&](const char* flag, bool applies) {
    if (app.count(flag) == 0 || applies) return;
    if (weight_only) spdlog::warn("{} has no effect with --mode weight-only (activations stay float)", flag);
    else if (dynamic) spdlog::warn("{} has no effect with --mode dynamic (activation ranges come at run time)", flag);
    else spdlog::warn("{} has no effect with --method {}", flag, o.method);
  };
  ignored("--method", !dynamic);
  const bool any = o.method == pipeline::kAutoMethod;  // every method's ranges are candidates
  ignored("--percentile", !dynamic && (any || o.method == "percentile"));
  ignored("--minmax-average", !dynamic && (any || o.method == "minmax"));
  ignored("--asymmetric-calib", !dynamic && (any || o.method == "percentile" || o.method == "entropy"));
  for (const char* flag : {"--smoothquant", "--no-smoothquant", "--reduce-range", "--no-reduce-range", "--per-tensor",
                           "--target", "--elementwise", "--hardswish", "--activation-type", "--activation-symmetric", "--weight-type"})
    ignored(flag, !weight_only);
  ignored("--uint8-weights", !dynamic);
  ignored("--fit-written-out-hardswish", !dynamic);  // a static-mode choice, measured on the calibration rows
  if (f->smoothquant_option->count() > 0)
    o.smoothquant = f->smoothquant.empty() ? passes::kDefaultSmoothQuantAlpha : std::stof(f->smoothquant);
  o.no_smoothquant = f->no_smoothquant;
  c.exclude_ops = split_commas(f->exclude_ops);
  const bool generic_flags = !f->activation_type.empty() || f->activation_symmetric || !f->weight_type.empty();
  PTQ_CHECK(!generic_flags || target == quant::Target::kGeneric, UsageError,
            "--activation-type, --activation-symmetric and --weight-type need --target generic");
  if (!f->activation_type.empty()) c.activation_type = parse_int_type("--activation-type", f->activation_type);
  if (f->activation_symmetric) c.activation_symmetry = quant::Symmetry::kSymmetric;
  if (!f->weight_type.empty()) c.weight_type = parse_int_type("--weight-type", f->weight_type);
  c.per_channel = !f->per_tensor;
  if (f->reduce_range) c.reduce_range = quant::ReduceRange::kOn;
  if (f->no_reduce_range) c.reduce_range = quant::ReduceRange::kOff;
  if (app.count("--uint8-weights") && c.uint8_weights != quant::Uint8Weights::kOff && !quant::pair_safe_weights(c))
    spdlog::warn("--uint8-weights has no effect with --reduce-range, --no-reduce-range, int8 activations (--target "
                 "trt) or --weight-type uint8: it replaces the pair-safe int8 weights of the default");
  o.config = c;
  o.params.moving_average = f->minmax_average;
  o.params.symmetric = !f->asymmetric_calib;
  o.params.activation_type = c.activation_type;
  o.params.activation_symmetry = c.activation_symmetry;
  o.data = to_data_options(f->data);
  o.progress = print_progress;
  return o;
}

void add_quantize(CLI::App& app, Run& run) {
  struct Flags : QuantizeFlags {
    bool external_data = false;
    int bits = 4;
    int64_t block_size = 0;  // 0: the default for --bits
    ReportFlags report;
  };
  auto f = std::make_shared<Flags>();
  add_calibration_flags(app, *f);
  app.add_option("-o,--output", f->o.output_path, "Where to write the int8 QDQ model");
  app.add_option("--mode", f->mode,
                 "static: calibrated QDQ (needs --calib); dynamic: int8 weights, activations quantized at "
                 "run time (DynamicQuantizeLinear, as ORT's quantize_dynamic; no --calib needed); weight-only: "
                 "blockwise --bits 4|8 weights (MatMulNBits, GatherBlockQuantized), float activations")
      ->default_str("static");
  app.add_option("--effort", f->effort,
                 "Accuracy work after calibration: fast (none), default (bias correction where it measures better, "
                 "fp32 for the few nodes whose error dominates; measured on 4 calibration rows), max (16 rows, more "
                 "nodes)")
      ->default_str("default");
  app.add_flag("--no-bias-correction", f->no_bias_correction,
               "Keep the float biases as they are (default: each quantized Conv/Gemm bias absorbs the mean shift its "
               "int8 weights cause, where that raises the output SQNR on both halves of the --effort rows, each "
               "corrected with the other half's means)");
  app.add_flag("--no-empirical-bias-correction", f->no_empirical_bias_correction,
               "Keep the biases as bias correction left them (default: each quantized Conv's bias is moved, in graph "
               "order, by the fp32 minus int8 mean of its output on the first 16 calibration rows, where that lowers "
               "the error of what the next layer reads on the other half of the rows; a Conv read through a SiLU or "
               "HardSwish also gets a gain per output channel that undoes its int8 output's attenuation)");
  app.add_flag("--no-depthwise-scales", f->no_depthwise_scales,
               "One activation scale per depthwise Conv input as calibrated (default: each channel gets a finer grid "
               "up to 4x, folded into the weights of the Convs around it so ORT still runs integer Convs, where that "
               "raises the output SQNR measured on the --effort rows)");
  app.add_option("--bits", f->bits, "--mode weight-only: 4 or 8 bits per weight")->default_str("4");
  app.add_option("--block-size", f->block_size,
                 "--mode weight-only: weights per scale along K, a power of two >= 16 (default 16 for 4 bits, "
                 "128 for 8)");
  app.add_option("--eval", f->report.eval,
                 "Evaluation data (layouts and preprocessing as --calib): report fp32 vs int8 after emitting")
      ->group("Accuracy report");
  add_report_flags(app, f->report, true);
  app.add_option("--load-calib", f->o.load_calib, "Reuse a calibration table (skips calibration)");
  app.add_option("--save-calib", f->o.save_calib, "Write the calibration table (JSON)");
  app.add_flag("--force", f->o.force, "Use a calibration table made for another model file");
  app.add_flag("--external-data", f->external_data, "Store tensors of 1 KiB or more in OUTPUT.data");
  app.callback([f, &app, &run] {
    if (!app.get_subcommands().empty()) return;  // a subcommand runs instead
    run = [f, &app] {
      pipeline::QuantizeOptions o = to_quantize_options(*f, app);
      set_weight_only_options(o, f->bits, f->block_size, app);
      o.effort = pipeline::parse_effort(f->effort);
      o.bias_correction = !f->no_bias_correction;
      o.empirical_bias_correction = !f->no_empirical_bias_correction;
      o.depthwise_scales = !f->no_depthwise_scales;
      if (app.count("--effort") > 0 && o.mode != pipeline::Mode::kStatic)
        spdlog::warn("--effort has no effect with --mode {}", f->mode);
      PTQ_CHECK(!o.output_path.empty(), UsageError, "-o/--output is required");
      if (f->external_data) o.save.external_data = onnx_io::ExternalData::kAlways;
      o.check_accuracy = f->report.wanted();
      if (o.check_accuracy) o.accuracy = to_accuracy_options(f->report, o.data);
      // The output-safety rule (file_checks.h): no output replaces an input or a special file.
      std::vector<PathArg> outputs = {{"-o", o.output_path},
                                      {"--save-calib", o.save_calib},
                                      {"--report", f->report.json},
                                      {"--report-html", f->report.html},
                                      {"--report-md", f->report.md}};
      if (f->external_data) outputs.push_back({"-o (external data)", o.output_path + ".data"});
      check_output_safety({{"model", o.model_path},
                           {"--calib", o.calib_data},
                           {"--eval", f->report.eval},
                           {"--labels", f->report.labels},
                           {"--load-calib", o.load_calib}},
                          outputs);
      check_writable({o.output_path, o.save_calib, f->report.json, f->report.html, f->report.md});
      std::vector<std::string> declared;
      for (const PathArg& a : outputs) declared.push_back(a.path);
      ptq::declare_outputs(declared);
      const auto start = std::chrono::steady_clock::now();
      pipeline::QuantizeResult r = pipeline::quantize(o);
      if (r.phases.empty())  // modes that do not time their phases
        r.phases.emplace_back("total", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      spdlog::info("placement: {}", r.placement);
      for (const std::string& n : r.notes) spdlog::warn("{}", n);
      if (!r.fp32.empty()) {
        spdlog::warn("{} node(s) stay fp32:", r.fp32.size());
        for (const std::string& n : r.fp32) spdlog::warn("  {}", n);
      }
      if (o.mode == pipeline::Mode::kWeightOnly)
        std::printf("quantized %zu nodes weight-only (%d bits, block %lld; %zu weights)\n", r.quantized_nodes, o.bits,
                    static_cast<long long>(o.block_size), r.weights);
      else if (o.mode == pipeline::Mode::kDynamic)
        std::printf("quantized %zu nodes dynamically (%zu DynamicQuantizeLinear, %zu weights)\n", r.quantized_nodes,
                    r.activation_pairs, r.weights);
      else
        std::printf("quantized %zu nodes (%zu activation Q/DQ pairs, %zu weights%s, %zu int32 biases, %d Relu/Clip folded)\n",
                    r.quantized_nodes, r.activation_pairs, r.weights,
                    r.uint8_weights ? str_cat(" (", r.uint8_weights, " uint8)").c_str() : "", r.biases,
                    r.folded_activations);
      std::printf("wrote %s\n", o.output_path.c_str());
      std::string times;
      double total = 0;
      for (const auto& [name, seconds] : r.phases) {
        times += str_cat(times.empty() ? "" : ", ", name, " ", format_seconds(seconds));
        total += seconds;
      }
      if (r.phases.size() > 1) times += str_cat(" (total ", format_seconds(total), ")");
      std::printf("time: %s\n", times.c_str());
      report::Summary summary = run_summary(*f, o, r);
      if (r.report) {
        r.report->summary = std::move(summary);
        return finish_report(*r.report, f->report);
      }
      std::printf("summary\n");
      for (const std::string& l : report::summary_text(summary)) std::printf("  %s\n", l.c_str());
      return 0;
    };
  });
}

}  // namespace ptq::cli
