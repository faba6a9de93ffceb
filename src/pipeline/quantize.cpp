// The quantize pipeline: load, prepare, ranges, fold, plan, emit, save.
#include "ptq/pipeline/quantize.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>

#include <spdlog/spdlog.h>

#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "ptq/core/sha256.h"
#include "ptq/calib/calibrate.h"
#include "ptq/calib/channel_stats.h"
#include "ptq/data/dataset.h"
#include "ptq/emit/qdq_emitter.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/opset.h"
#include "ptq/passes/activation_inputs.h"
#include "ptq/passes/depthwise_scales.h"
#include "ptq/passes/output_values.h"
#include "ptq/passes/prepare.h"
#include "ptq/passes/quant_plan.h"
#include "ptq/passes/smoothquant.h"
#include "ptq/report/sensitivity.h"
#include "after_calibration.h"
#include "dynamic.h"
#include "int8_build.h"
#include "weight_only.h"
#include "smoothing.h"

namespace ptq::pipeline {

ir::Model load_prepared(const std::string& model_path) {
  ir::Model m = onnx_io::load_model(model_path);
  const int64_t opset = m.opset();
  PTQ_CHECK(opset <= kMaxOutputOpset, UnsupportedError, model_path, ": opset ", opset,
            " is newer than ", kMaxOutputOpset, ", the newest ptq emits");
  if (opset < kMinOutputOpset) {
    spdlog::info("converting {} from opset {} to {} (per-axis QuantizeLinear needs 13)", model_path, opset,
                 kMinOutputOpset);
    with_context(model_path, [&] { onnx_io::convert_opset(m, kMinOutputOpset); });
  }
  for (const std::string& c : passes::prepare_for_quantization(m)) spdlog::debug("prepare: {}", c);
  ir::verify(m);
  return m;
}

namespace {

// Value ids of the prepared graph whose ranges the default int8 model uses: fold and plan with a
// placeholder range on every possibly-float tensor. Calibration builds histograms only for these
// (tensors removed by Relu/Clip folding or never quantized keep their exact min/max).
std::vector<bool> ranged_values(const ir::Model& prepared, const quant::QuantConfig& config) {
  const ir::Graph& g0 = prepared.graph;
  ir::Model m = prepared;
  passes::RangeMap ranges = placeholder_ranges(g0);
  passes::fold_activations_into_quantized_producers(m.graph, config, ranges);
  const passes::QuantPlan plan = passes::plan_quantization(m.graph, config, ranges);
  std::vector<bool> need(g0.id_bound_values(), false);
  const auto mark = [&](ir::ValueId v) {
    const auto r = ranges.find(m.graph.value(v).name);
    if (r == ranges.end()) return;
    const auto tag = static_cast<size_t>(std::ldexp(r->second.max, 20));
    if (tag >= 1 && tag <= need.size()) need[tag - 1] = true;
  };
  for (ir::ValueId v : plan.activations) mark(v);
  for (const auto& [a, b] : plan.tied) {
    mark(a);
    mark(b);
  }
  return need;
}

// Image files with no preprocessing flag at all: the model gets raw 0..255 pixels, which is right
// for a few models (uint8 inputs, YOLOX) and silently wrong for most.
bool raw_pixels(const data::Dataset& ds, const data::Preprocess& p) {
  const bool untouched = p.preset == data::PreprocessPreset::kNone && !p.scale && !p.mean && !p.stddev;
  if (!untouched || ds.plan().empty()) return false;
  for (const data::Dataset::File& f : ds.plan().front())
    if (f.kind == data::Dataset::FileKind::kImage) return true;
  return false;
}

// --method auto's candidates after percentile: a method and whether minmax averages per-sample
// extremes. mse is not one: on none of the shared models did it measure best (docs/results.md),
// and its grid search cost as much as the rest of auto together (0.3 s and a model build on
// mobilenetv2). The mean of per-sample extremes (NNCF's MEAN_MINMAX) clips each tensor's rare
// extremes: mobilenetv2's output SQNR 19.0 dB with entropy, 21.0 dB with it.
struct AutoCandidate {
  const char* method;
  bool moving_average;
};
constexpr AutoCandidate kAutoCandidates[] = {{"minmax", false}, {"entropy", false}, {"minmax", true}};

// The per-channel maxima of `inputs` onto their ranges (quant::Range::channel_max).
void attach_channel_max(calib::CalibTable& table, const ir::Graph& g, const std::vector<ir::ValueId>& inputs,
                        const std::map<std::string, std::vector<float>>& channel_max) {
  for (ir::ValueId x : inputs) {
    const auto m = channel_max.find(g.value(x).name);
    const auto r = table.ranges.find(g.value(x).name);
    if (m != channel_max.end() && r != table.ranges.end()) r->second.channel_max = m->second;
  }
}

// The depthwise inputs whose per-channel maxima the run's depthwise input scales
// (passes/depthwise_scales.h) need: none with --effort fast (nothing measured) or on
// transformer placement (no search).
std::vector<ir::ValueId> depthwise_max_inputs(const QuantizeOptions& o, const ir::Graph& g) {
  std::vector<ir::ValueId> out;
  if (o.depthwise_scales && o.effort != Effort::kFast && !passes::transformer_placement(g, o.config))
    for (const auto& [node, x] : passes::depthwise_scale_candidates(g)) out.push_back(x);
  return out;
}

// The per-channel maxima of depthwise `inputs` into the table (CalibTable::depthwise_channel_max).
void attach_depthwise_max(calib::CalibTable& table, const ir::Graph& g, const std::vector<ir::ValueId>& inputs,
                          const std::map<std::string, std::vector<float>>& channel_max) {
  for (ir::ValueId x : inputs) {
    const auto m = channel_max.find(g.value(x).name);
    if (m != channel_max.end()) table.depthwise_channel_max[m->first] = m->second;
  }
}

// The calibration pass over `ds` (all of --calib, or a shard), notes for the user appended.
calib::CalibStats calibrate_part(const QuantizeOptions& o, const ir::Model& model, data::Dataset& ds,
                                 const std::string& hash, std::vector<std::string>& notes,
                                 const std::vector<ir::ValueId>& channel_max_values = {}) {
  if (raw_pixels(ds, o.data.preprocess))
    notes.push_back(str_cat("--calib ", o.calib_data, ": images are fed as raw 0..255 pixels (no --preprocess, "
                            "--scale, --mean or --std given); most models expect normalized input"));
  spdlog::info("calibrating on {} samples from {} ({}, method {})", ds.size(), o.calib_data,
               data::layout_name(ds.layout()), o.method);
  calib::CalibrateOptions co;
  co.method = o.method;
  co.params = o.params;
  co.threads = o.threads;
  co.histogram_values = ranged_values(model, o.config);
  co.channel_max_values = channel_max_values;
  co.progress = o.progress;
  calib::CalibStats stats = calib::calibrate_stats(model, ds, co, hash);
  // Ranges of SiLU/HardSwish inputs are fitted through the activation (calib/through.h).
  for (const auto& [v, kind] : passes::activation_inputs(model.graph, o.config.fit_written_out_hardswish)) {
    const auto t = stats.tensors.find(model.graph.value(v).name);
    if (t != stats.tensors.end())
      t->second.through = kind == passes::ActivationInput::kSilu ? calib::Through::kSilu : calib::Through::kHardSwish;
  }
  // Values that reach a graph output unchanged keep their exact min/max (passes/output_values.h).
  for (ir::ValueId v : passes::output_values(model.graph)) {
    const auto t = stats.tensors.find(model.graph.value(v).name);
    if (t != stats.tensors.end()) t->second.exact = true;
  }
  if (ds.skipped_nonfinite() > 0)
    notes.push_back(str_cat("skipped ", ds.skipped_nonfinite(), " calibration samples with NaN/Inf"));
  return stats;
}

}  // namespace

calib::CalibStats calibrate_shard(const QuantizeOptions& o, const calib::Shard& shard) {
  PTQ_CHECK(o.method != kAutoMethod, UsageError, "--method auto chooses by measuring each method's int8 model on the "
            "data, which a shard does not have all of: calibrate shards with a named method (",
            calib::method_names(), ")");
  const calib::Method* method = calib::find_method(o.method);
  PTQ_CHECK(method, UsageError, "--method: unknown method '", o.method, "' (use ", calib::method_names(), ")");
  PTQ_CHECK(!o.calib_data.empty(), UsageError, "calibration data is needed: pass --calib DATA");
  ir::Model model = load_prepared(o.model_path);
  const std::string hash = sha256_file(o.model_path);
  // SmoothQuant rescales the graph by per-channel maxima over all samples before ranges are
  // taken: one pass per shard cannot know them.
  PTQ_CHECK(o.no_smoothquant || (!o.smoothquant && !passes::transformer_placement(model.graph, o.config)), UsageError,
            "quantize calibrate: SmoothQuant (on by default for transformers) needs statistics of every sample "
            "before ranges can be gathered; pass --no-smoothquant, or calibrate on one machine (--save-calib)");
  data::Dataset all = open_calib(o, model.graph);
  PTQ_CHECK(shard.index <= all.size(), UsageError, "--shard ", shard.index, "/", shard.count, ": ", o.calib_data,
            " has only ", all.size(), " samples");
  data::Dataset ds = all.every_nth(shard.index - 1, shard.count);
  std::vector<std::string> notes;
  calib::CalibStats stats = calibrate_part(o, model, ds, hash, notes);
  stats.shard = shard;
  for (const std::string& n : notes) spdlog::warn("{}", n);
  return stats;
}

uint64_t model_bytes(const ir::Model& model, const std::string& path) {
  std::error_code ec;
  uint64_t bytes = std::filesystem::file_size(path, ec);
  for (const std::string& f : model.external_data_files) {
    const uint64_t n = std::filesystem::file_size(std::filesystem::path(path).parent_path() / f, ec);
    if (!ec) bytes += n;
  }
  return bytes;
}

report::AccuracyOptions accuracy_setup(const QuantizeOptions& o) {
  report::AccuracyOptions acc = o.accuracy;
  if (acc.data_path.empty() && acc.samples == nullptr) {
    PTQ_CHECK(!o.calib_data.empty() || o.calib_samples != nullptr, UsageError, "the accuracy report needs data: pass --eval DATA",
              o.load_calib.empty() ? "" : " (there is no calibration data with --load-calib)");
    acc.data_path = o.calib_data;
    acc.samples = o.calib_samples;
    acc.data = o.data;
    acc.data_is_calibration = true;
    spdlog::warn("no --eval data: the accuracy report uses the calibration data (optimistic)");
  }
  report::validate(acc);
  acc.fp32_runtime.threads = acc.int8_runtime.threads = o.threads;
  if (acc.model_a.empty()) acc.model_a = o.model_path;
  if (acc.model_b.empty()) acc.model_b = o.output_path;
  return acc;
}

data::Dataset open_calib(const QuantizeOptions& o, const ir::Graph& graph) {
  if (o.calib_samples) return data::memory_dataset(o.calib_samples, o.calib_data, graph, o.data);
  return data::open_dataset(o.calib_data, graph, o.data);
}

Effort parse_effort(const std::string& name) {
  if (name == "fast") return Effort::kFast;
  if (name == "default") return Effort::kDefault;
  if (name == "max") return Effort::kMax;
  throw UsageError(str_cat("--effort: '", name, "' is not fast, default or max"));
}

std::optional<report::SearchOptions> search_options(Effort effort) {
  if (effort == Effort::kFast) return std::nullopt;
  report::SearchOptions s;
  if (effort == Effort::kMax) {
    s.samples = 16;
    s.target_db = 30;
    s.max_fp32_share = 0.06;
  }
  return s;
}

Mode parse_mode(const std::string& name) {
  if (name == "static") return Mode::kStatic;
  if (name == "dynamic") return Mode::kDynamic;
  if (name == "weight-only") return Mode::kWeightOnly;
  throw UsageError(str_cat("--mode: '", name, "' is not static, dynamic or weight-only"));
}

QuantizeResult quantize(const QuantizeOptions& o) {
  if (o.mode == Mode::kDynamic) return quantize_dynamic(o);
  if (o.mode == Mode::kWeightOnly) return quantize_weight_only(o);
  QuantizeResult result;
  auto lap = std::chrono::steady_clock::now();
  const auto phase = [&](const char* name) {  // wall time since the previous phase ended
    const auto now = std::chrono::steady_clock::now();
    result.phases.emplace_back(name, std::chrono::duration<double>(now - lap).count());
    lap = now;
  };
  const bool auto_method = o.method == kAutoMethod;
  PTQ_CHECK(auto_method || calib::find_method(o.method), UsageError, "--method: unknown method '", o.method, "' (use ",
            kAutoMethod, ", ", calib::method_names(), ")");
  PTQ_CHECK(!same_file(o.model_path, o.output_path), UsageError, "the output '", o.output_path,
            "' would overwrite the input model");
  if (o.check_accuracy) report::validate(o.accuracy);
  // The file's hash on another thread while the model is parsed (one thread each: 0.1 s apiece
  // for mobilenetv2's 14 MB).
  std::future<std::string> hashing = std::async(std::launch::async, [&o] { return sha256_file(o.model_path); });
  ir::Model model = load_prepared(o.model_path);
  const std::string hash = hashing.get();
  result.fp32_bytes = model_bytes(model, o.model_path);
  phase("load");
  PTQ_CHECK(!o.load_calib.empty() || !o.calib_data.empty(), UsageError,
            "calibration data is needed: pass --calib DATA or --load-calib TABLE.json");
  // SmoothQuant: --smoothquant ALPHA, or by default where the graph is a transformer (MiniLM:
  // cosine to fp32 0.989 -> 0.996 at alpha 0.8, docs/results.md).
  std::optional<float> smooth = o.smoothquant;
  if (!smooth && !o.no_smoothquant && passes::transformer_placement(model.graph, o.config)) smooth = passes::kDefaultSmoothQuantAlpha;
  calib::CalibTable table;
  std::vector<calib::CalibTable> candidates;  // --method auto
  if (!o.load_calib.empty()) {
    table = calib::load_calib_table(o.load_calib);
    PTQ_CHECK(o.force || table.model_sha256 == hash, IoError, o.load_calib,
              ": calibration table was made for another model (sha256 ", table.model_sha256.substr(0, 12),
              "... vs ", hash.substr(0, 12), "...); use --force to use it anyway");
    // A table records the activation grid it was calibrated for (--target and the generic-target
    // flags): emitting for another grid is a forgotten flag, not a choice (a sharded run's final
    // command must repeat the shards' flags).
    const auto grid = [](const calib::CalibParams& p) {
      return str_cat(dtype_name(p.activation_type), p.activation_symmetry == quant::Symmetry::kSymmetric ? " symmetric" : " asymmetric");
    };
    PTQ_CHECK(o.force || grid(table.params) == grid(o.params), UsageError, "--load-calib: ", o.load_calib,
              " was calibrated for ", grid(table.params), " activations, this run emits ", grid(o.params),
              " (pass the --target the table was made with, or --force)");
    // The table's ranges belong to the graph smoothed as it records, whatever the defaults now.
    if (table.smoothquant_alpha >= 0.f) {
      PTQ_CHECK(!o.no_smoothquant && (!o.smoothquant || *o.smoothquant == table.smoothquant_alpha), UsageError,
                "--load-calib: ", o.load_calib, " was made with --smoothquant ", table.smoothquant_alpha,
                "; its ranges hold only for that setting");
      apply_smoothquant(model, table.channel_abs_max, table.smoothquant_alpha);
    } else {
      PTQ_CHECK(!o.smoothquant, UsageError, "--smoothquant: ", o.load_calib,
                " was made without it; recalibrate with --calib to smooth");
    }
    // Names the prepared graph lacks: a table from a ptq whose graph preparation differed (a
    // folded BatchNormalization, scale or shift removes the tensor after the Conv, and the Conv's
    // own output then holds other values than the table's range for it describes).
    std::vector<std::string> unknown;
    for (const auto& [name, r] : table.ranges)
      if (model.graph.find(name) == ir::kNone) unknown.push_back(name);
    if (!unknown.empty())
      spdlog::warn("--load-calib: {} of the {} tensors in {} are not in the prepared graph (e.g. '{}'): the table may "
                   "come from a ptq version that prepared the graph differently; recalibrate with --calib",
                   unknown.size(), table.ranges.size(), o.load_calib, unknown.front());
    // A table merged from shards has no per-channel maxima (neither the pair inputs' nor the
    // depthwise inputs'): with --calib, one pass measures them, so the model is the one a single
    // run writes. (Without data: pairs bounded at code 192, no depthwise input scales.)
    std::vector<ir::ValueId> pair_missing, dw_missing;
    for (ir::ValueId x : emit::pair_safe_inputs(model.graph, o.config)) {
      const auto r = table.ranges.find(model.graph.value(x).name);
      if (r != table.ranges.end() && r->second.channel_max.empty()) pair_missing.push_back(x);
    }
    // A full table records what its run measured (an empty list: the scales were not kept).
    const bool merged = table.channel_mean.empty() && !table.search_fp32;
    if (merged && table.depthwise_channel_max.empty()) dw_missing = depthwise_max_inputs(o, model.graph);
    std::vector<ir::ValueId> missing = pair_missing;
    missing.insert(missing.end(), dw_missing.begin(), dw_missing.end());
    if (!missing.empty() && (!o.calib_data.empty() || o.calib_samples)) {
      data::Dataset all = open_calib(o, model.graph);
      std::map<std::string, std::vector<float>> by_name;
      // Signed maxima: a pair's uint8 codes need max(0, max x); depthwise inputs are >= 0.
      for (auto& [v, mx] : calib::channel_max_of(model, all, missing, o.threads, 1, calib::MaxKind::kSigned))
        by_name[model.graph.value(v).name] = std::move(mx);
      attach_channel_max(table, model.graph, pair_missing, by_name);
      attach_depthwise_max(table, model.graph, dw_missing, by_name);
    }
  } else {
    std::map<std::string, std::vector<float>> channel_max;
    if (smooth) {
      data::Dataset ds = open_calib(o, model.graph);
      channel_max = smoothing_statistics(model, ds, o.threads);
      apply_smoothquant(model, channel_max, *smooth);
    }
    data::Dataset ds = open_calib(o, model.graph);
    // --method auto: one pass gathering percentile's statistics (exact ranges and both sides'
    // histograms), which every method reduces to its ranges.
    QuantizeOptions pass = o;
    if (auto_method) pass.method = "percentile";
    // Depthwise inputs' per-channel maxima in the same pass, where they will be measured.
    const std::vector<ir::ValueId> dw_inputs = depthwise_max_inputs(o, model.graph);
    // And those of the inputs whose weight scales must keep ORT's K pairs from saturating.
    const std::vector<ir::ValueId> pair_inputs = emit::pair_safe_inputs(model.graph, o.config);
    std::vector<ir::ValueId> channel_max_values = dw_inputs;
    channel_max_values.insert(channel_max_values.end(), pair_inputs.begin(), pair_inputs.end());
    calib::CalibStats stats = calibrate_part(pass, model, ds, hash, result.notes, channel_max_values);
    table = calib::ranges_from(stats);
    attach_depthwise_max(table, model.graph, dw_inputs, stats.channel_max);
    attach_channel_max(table, model.graph, pair_inputs, stats.channel_max);
    if (auto_method && o.effort != Effort::kFast && !passes::transformer_placement(model.graph, o.config)) {
      // Percentile first: it stays unless another leads by a margin. (--effort fast measures
      // nothing; transformer placement keeps percentile: its padded calibration rows would count
      // padding in the measured error.)
      candidates.push_back(table);
      for (const AutoCandidate& c : kAutoCandidates) {
        stats.method = c.method;
        stats.params.moving_average = c.moving_average;
        candidates.push_back(calib::ranges_from(stats));
        attach_channel_max(candidates.back(), model.graph, pair_inputs, stats.channel_max);
      }
    }
    if (smooth) {
      table.smoothquant_alpha = *smooth;
      table.channel_abs_max = std::move(channel_max);
    }
    for (calib::CalibTable& c : candidates) {
      c.smoothquant_alpha = table.smoothquant_alpha;
      c.channel_abs_max = table.channel_abs_max;
    }
    if (ds.skipped_nonfinite() > 0)
      result.notes.push_back(str_cat("skipped ", ds.skipped_nonfinite(), " calibration samples with NaN/Inf"));
  }
  phase("calibrate");
  const report::AccuracyOptions acc = o.check_accuracy ? accuracy_setup(o) : o.accuracy;
  // Bad report flags or data fail before the search and before anything is written.
  if (o.check_accuracy) report::preflight(model, acc);
  // Bias correction, the placement search, empirical bias correction (--effort); every model below
  // is built with them.
  const Measured measured = measure_after_calibration(o, model, acc, table, std::move(candidates), result);
  result.method = calib::method_label(table.method, table.params);
  const report::NodeSelection& searched = measured.searched;
  const emit::ChannelMeans& means = measured.means;
  if (measured.ran) phase("search");
  if (!o.save_calib.empty()) calib::save_calib_table(table, o.save_calib);
  // A selection with the searched nodes in fp32 on top (the report's sensitivity, fallback).
  const auto with_search = [&searched](report::NodeSelection sel) {
    sel.fp32.insert(searched.fp32.begin(), searched.fp32.end());
    sel.searched = searched.searched;
    return sel;
  };
  // Model first: unless --auto-fallback may still change it, the int8 model (and the table) are
  // written and committed before the report runs, so an interrupted or failed report keeps them.
  // Every int8 model of the run: the table's ranges and what was measured after calibration.
  const auto build = [&](const passes::NodeFilter& filter) {
    return build_int8(model, table.ranges, measured.config, filter, means, measured.depthwise, measured.bias_shift,
                      measured.output_gain);
  };
  const bool model_first = !o.check_accuracy || !acc.auto_fallback;
  std::optional<Int8Build> first;
  if (model_first && o.check_accuracy) {
    first = build(to_filter(with_search({})));
    result.int8_bytes = onnx_io::save_model(first->built.model, o.output_path, o.save);
    commit_finished_outputs();
    phase("emit");
    spdlog::info("wrote {}; computing the accuracy report", o.output_path);
  }
  passes::NodeFilter final_filter = to_filter(with_search({}));
  if (o.check_accuracy) {
    const report::Builder builder = [&](const report::NodeSelection& sel) {
      return build(to_filter(with_search(sel))).built;
    };
    report::AccuracyOutcome outcome = report::check_accuracy(model, builder, acc);
    final_filter = to_filter(with_search(outcome.selection));
    result.report = std::move(outcome.report);
    phase("report");
  }
  Int8Build b = first ? std::move(*first) : build(final_filter);
  for (std::string& n : passes::unmatched_exclusions(model.graph, o.config)) result.notes.push_back(std::move(n));
  result.folded_activations = b.folded;
  result.fp32 = b.plan.fp32;
  result.placement = b.plan.placement;
  result.quantized_nodes = b.summary.quantized_nodes;
  result.activation_pairs = b.summary.activation_pairs;
  result.weights = b.summary.weights;
  result.uint8_weights = b.summary.uint8_weights;
  result.biases = b.summary.biases;
  result.notes.insert(result.notes.end(), b.summary.notes.begin(), b.summary.notes.end());
  if (!first) {
    result.int8_bytes = onnx_io::save_model(b.built.model, o.output_path, o.save);
    phase("emit");
  }
  return result;
}

}  // namespace ptq::pipeline
