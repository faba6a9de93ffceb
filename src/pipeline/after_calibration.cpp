// Bias correction (kept where the measured output SQNR rises), the placement search, then
// empirical bias correction on the searched model.
#include "after_calibration.h"

#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "ptq/core/error.h"
#include "ptq/data/rows.h"
#include "ptq/passes/depthwise_scales.h"
#include "ptq/passes/quant_plan.h"
#include "ptq/report/search.h"
#include "ptq/report/sensitivity.h"
#include "empirical_bias.h"
#include "int8_build.h"
#include "smoothing.h"

namespace ptq::pipeline {
namespace {

// Bias correction's statistics: the mean per input channel of every Conv and Gemm input with a
// constant weight (axis 1 of [N, C, ...], the last axis of Gemm's [N, K]) over the kept runs.
emit::ChannelMeans weighted_input_means(const ir::Graph& g, const std::vector<report::Fp32Sample>& kept) {
  emit::ChannelMeans means;
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    if (!n.is_default_domain() || (n.op_type != "Conv" && n.op_type != "Gemm") || n.inputs.size() < 2) continue;
    if (!g.constant(n.inputs[1]) || means.count(g.value(n.inputs[0]).name)) continue;
    const auto x = static_cast<size_t>(n.inputs[0]);
    std::vector<double> sum;
    size_t count = 0;
    for (const report::Fp32Sample& s : kept) {
      const Tensor& t = s.values[x];
      if (t.dtype() != DType::kFloat || t.rank() < 2 || (n.op_type == "Gemm" && t.rank() != 2)) continue;
      const Dims& d = t.dims();
      constexpr size_t axis = 1;  // C of [N, C, ...]; K of Gemm's [N, K]
      const size_t c = static_cast<size_t>(d[axis]);
      size_t inner = 1;
      for (size_t k = axis + 1; k < d.size(); ++k) inner *= static_cast<size_t>(d[k]);
      const size_t outer = t.numel() / (c * inner);
      if (sum.empty()) sum.assign(c, 0.0);
      if (sum.size() != c) continue;
      const float* p = t.data<float>();
      for (size_t o = 0; o < outer; ++o)
        for (size_t ch = 0; ch < c; ++ch)
          for (size_t i = 0; i < inner; ++i) sum[ch] += p[(o * c + ch) * inner + i];
      count += outer * inner;
    }
    if (count == 0) continue;
    for (double& v : sum) v /= static_cast<double>(count);
    means[g.value(n.inputs[0]).name] = std::move(sum);
  }
  return means;
}

// The first n calibration rows' inputs, each batch row alone (as report::fp32_values keeps them).
std::vector<std::map<std::string, Tensor>> calibration_rows(data::Dataset& ds, const ir::Graph& g, size_t n) {
  std::vector<std::map<std::string, Tensor>> rows;
  ds.rewind();
  while (rows.size() < n) {
    std::optional<data::Sample> s = ds.next();
    if (!s) break;
    for (std::map<std::string, Tensor>& r : data::split_batch(g, s->inputs)) {
      if (rows.size() == n) break;
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

// Empirical bias correction's rows, whatever the --effort. Its gate compares the halves' means,
// and on the 4 rows the other steps measure on it was a coin flip per Conv: across 4 calibration
// subsets of YOLOX-nano it moved 12 to 46 of 111 Convs. Photos' detections reproduced, the 4
// subsets together: 86.5 % with 4 rows, 90.0 % with 8, 92.1 % with 16, 90.4 % with 32
// (docs/quantization.md). Only the front of the graph is kept per row: rows cost time, not memory.
constexpr size_t kEmpiricalBiasRows = 16;

// How the measurements run: what the report predicts (ORT's integer kernels for ORT's x86
// profile, exact arithmetic else).
report::AccuracyOptions measuring_options(const QuantizeOptions& o, const report::AccuracyOptions& acc) {
  report::AccuracyOptions so;
  so.fp32_runtime.threads = so.int8_runtime.threads = o.threads;
  so.int8_runtime.qdq_mode = o.check_accuracy ? acc.int8_runtime.qdq_mode
                             : o.config.target == quant::Target::kOrtX86 ? runtime::QdqMode::kIntegerKernel
                                                                         : runtime::QdqMode::kFakeQuant;
  return so;
}

// --method auto: each candidate table's int8 model (no bias correction, no search) measured on the
// first calibration rows. The first candidate (percentile) stays unless another measures at least
// kAutoMarginDb more; then the best of the others wins (the earlier one on a tie). The consumers'
// error is what counts, not each tensor's own: mse minimises every tensor's own error yet measures
// 3 dB below entropy on mobilenetv2, where entropy is 3.7 dB above percentile (top-1 drop 0.44
// instead of 2.33 pt); on PP-OCRv4-rec percentile is 1.5 dB above entropy (exact-match drop 0.33
// instead of 1.22 pt). The margin: a few rows measure noisily, and a smaller lead did not carry
// over to the task (YOLOX: entropy +0.7 dB on 4 rows, yet 4-5 points fewer detections reproduced).
constexpr double kAutoMarginDb = 1.0;

// Depthwise input scales are kept where they measure at least this much more: the rows they are
// measured on are among those their maxima came from, and small leads flip with last bits (on
// efficientnet-lite0 a 0.19 dB lead on the rows came with 0.5 dB less on the eval split; on
// mobilenetv2 they lead by 2.4 dB).
constexpr double kDepthwiseMarginDb = 0.5;
// uint8 weights (--uint8-weights auto) likewise: kept where the output SQNR rises this much.
constexpr double kUint8WeightsMarginDb = 0.5;

// Returns the chosen table's figure (what bias correction compares against).
double choose_method(const quant::QuantConfig& config, const ir::Model& model, const std::vector<report::Fp32Sample>& kept,
                     const report::AccuracyOptions& so, const DepthwiseMax& depthwise, calib::CalibTable& table,
                     std::vector<calib::CalibTable> candidates, QuantizeResult& result) {
  std::string figures;
  double best = -std::numeric_limits<double>::infinity();
  size_t pick = 0;
  double first = 0;
  std::vector<double> dbs;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const double db = report::output_sqnr(model, build_int8(model, candidates[i].ranges, config, {}, {}, depthwise).built.model,
                                          kept, so.int8_runtime, false);
    dbs.push_back(db);
    figures += str_cat(i ? ", " : "", calib::method_label(candidates[i].method, candidates[i].params), " ", report::format_db(db));
    if (i == 0) {
      first = db;
    } else if (db > best) {
      best = db;
      pick = i;
    }
  }
  // (An exact first candidate (+inf) stays; NaN figures never win.)
  if (pick == 0 || !(best >= first + kAutoMarginDb)) pick = 0;
  const std::string kept_unless = candidates.front().method;
  table = std::move(candidates[pick]);
  result.notes.push_back(str_cat("--method auto: ", calib::method_label(table.method, table.params), " (model-output SQNR in dB on ", kept.size(),
                                 " calibration rows, no bias correction or search: ", figures,
                                 "; another method replaces ", kept_unless, " when it measures ", kAutoMarginDb,
                                 " dB more)"));
  return dbs[pick];
}

}  // namespace

Measured measure_after_calibration(const QuantizeOptions& o, const ir::Model& model, const report::AccuracyOptions& acc,
                                   calib::CalibTable& table, std::vector<calib::CalibTable> candidates,
                                   QuantizeResult& result) {
  Measured m;
  report::NodeSelection& searched = m.searched;
  emit::ChannelMeans& means = m.means;
  // --uint8-weights auto is measured below, or taken from a loaded table; unmeasured, it is off.
  const bool uint8_auto = o.config.uint8_weights == quant::Uint8Weights::kAuto;
  quant::QuantConfig& config = m.config;
  config = o.config;
  if (uint8_auto) config.uint8_weights = quant::Uint8Weights::kOff;
  // The search is for CNN placement: transformer placement already keeps what int8 cannot carry
  // fp32 by design, and its padded calibration rows would count padding in the output SQNR.
  const std::optional<report::SearchOptions> search =
      passes::transformer_placement(model.graph, o.config) ? std::nullopt : search_options(o.effort);
  if (!o.load_calib.empty() && search && o.depthwise_scales)
    m.depthwise = depthwise_max_by_node(model.graph, table.depthwise_channel_max);
  if (!o.load_calib.empty() && (!table.channel_mean.empty() || !table.bias_shift.empty() || !table.output_gain.empty() ||
                                table.search_fp32)) {
    // The table records what its run measured: the same model without the data. (A table merged
    // from shards has only ranges: with --calib, the measurements below run on its first rows.)
    if (search && uint8_auto && table.uint8_weights) config.uint8_weights = quant::Uint8Weights::kWhereCoarse;
    if (search && o.bias_correction) means = table.channel_mean;
    if (search && o.bias_correction && o.empirical_bias_correction) {
      m.bias_shift = table.bias_shift;
      m.output_gain = table.output_gain;
    }
    if (search && table.search_fp32) {
      for (const std::string& name : *table.search_fp32) {
        const ir::ValueId v = model.graph.find(name);
        const ir::Node* p = v == ir::kNone ? nullptr : model.graph.producer(v);
        PTQ_CHECK(p || o.force, IoError, o.load_calib, ": the placement search kept the node computing '", name,
                  "' fp32, which this model does not have");
        if (p) searched.fp32.insert(p->id);
      }
      searched.searched = searched.fp32;
    }
  } else if (search && (!o.calib_data.empty() || o.calib_samples)) {
    const report::AccuracyOptions so = measuring_options(o, acc);
    data::Dataset ds = open_calib(o, model.graph);
    const std::vector<report::Fp32Sample> kept = report::fp32_values(model, ds, search->samples, so, true);
    // Depthwise inputs' per-channel grids (passes/depthwise_scales.h): their maxima over all of
    // the calibration data (a few rows' maxima clip the rest: mobilenetv2 14.8 dB with 4 rows'),
    // kept where the measured output SQNR rises. The calibration pass gathers them (for a table
    // merged from shards, quantize.cpp's pass over the data).
    DepthwiseMax& depthwise = m.depthwise;
    std::map<std::string, std::vector<float>> dw_max = std::move(table.depthwise_channel_max);
    if (!o.depthwise_scales) dw_max.clear();
    depthwise = depthwise_max_by_node(model.graph, dw_max);
    // --method auto's choice; its figure is the model without bias correction, measured already.
    std::optional<double> chosen_db;
    if (!candidates.empty()) chosen_db = choose_method(config, model, kept, so, depthwise, table, std::move(candidates), result);
    table.depthwise_channel_max = std::move(dw_max);  // (after the choice, which replaces the table)
    if (!depthwise.empty()) {
      const auto measure = [&](const DepthwiseMax& with) {
        return report::output_sqnr(model, build_int8(model, table.ranges, config, {}, {}, with).built.model, kept,
                                   so.int8_runtime, false);
      };
      const double with = chosen_db ? *chosen_db : measure(depthwise), without = measure({});
      if (!(with >= without + kDepthwiseMarginDb)) {
        result.notes.push_back(str_cat("depthwise input scales not kept: output SQNR ", report::format_db(with),
                                       " dB with them, ", report::format_db(without), " dB without, on ", kept.size(),
                                       " calibration rows (kept when they measure ", kDepthwiseMarginDb, " dB more)"));
        depthwise.clear();
        table.depthwise_channel_max.clear();
        chosen_db = without;
      } else {
        spdlog::info("depthwise input scales kept: output SQNR {} dB with them, {} dB without, on {} calibration rows",
                     report::format_db(with), report::format_db(without), kept.size());
        chosen_db = with;
      }
    }
    if (uint8_auto) {
      // uint8 weights where the pair-safe int8 grid costs precision (emit's per-node rule), kept
      // where the output SQNR rises: their u8×u8 kernels are slower in ORT on small K, and on
      // YOLOX-nano and PP-OCRv4-rec they measured no better.
      quant::QuantConfig with = config;
      with.uint8_weights = quant::Uint8Weights::kWhereCoarse;
      const Int8Build b = build_int8(model, table.ranges, with, {}, {}, depthwise);
      if (b.summary.uint8_weights > 0) {
        const double on = report::output_sqnr(model, b.built.model, kept, so.int8_runtime, false);
        const double off = chosen_db ? *chosen_db
                                     : report::output_sqnr(model, build_int8(model, table.ranges, config, {}, {}, depthwise).built.model,
                                                           kept, so.int8_runtime, false);
        if (on >= off + kUint8WeightsMarginDb) {
          spdlog::info("uint8 weights kept on {} node(s): output SQNR {} dB with them, {} dB without, on {} calibration rows",
                       b.summary.uint8_weights, report::format_db(on), report::format_db(off), kept.size());
          config = with;
          chosen_db = on;
        } else {
          result.notes.push_back(str_cat("uint8 weights not kept: output SQNR ", report::format_db(on), " dB with them on ",
                                         b.summary.uint8_weights, " node(s), ", report::format_db(off), " dB without, on ",
                                         kept.size(), " calibration rows (kept when they measure ", kUint8WeightsMarginDb,
                                         " dB more)"));
          chosen_db = off;
        }
      }
    }
    if (o.bias_correction) {
      // Kept only where measured to help: the analytic shift is exact for each layer's own weights,
      // yet PP-OCRv4-rec lost 8 points of exact match with it (mobilenetv2 gained 0.7). Measured on
      // rows its means did not come from: means fit the rows they are taken from. On the same 4 rows
      // mobilenetv2 measured 24.7 dB with it and 23.8 without, across halves 23.77 and 23.81, and
      // its eval split agreed less with fp32 with it (96.7 vs 97.1 %); PP-OCRv4-rec's percentile
      // model the other way (dropped in-sample, kept across halves: exact match 886 -> 890/900).
      // With two rows or more: the means of each half measured on the other half, and kept only
      // when the output SQNR rises on both halves, as empirical bias correction's gate: the two
      // figures averaged had kept it on a rise on one half outweighing a fall on the other (a 0.01
      // dB lead on mobilenetv2, which measured -0.02 dB on 16 rows and 741 instead of 743/900 top-1
      // on the eval split; squeezenet1.1 and efficientnet-lite0 likewise on other calibration sets).
      means = weighted_input_means(model.graph, kept);
      const auto sqnr = [&](const emit::ChannelMeans& with_means, const std::vector<report::Fp32Sample>& rows) {
        return report::output_sqnr(model, build_int8(model, table.ranges, config, {}, with_means, depthwise).built.model,
                                   rows, so.int8_runtime, false);
      };
      bool keep = false;
      std::string figures;
      if (kept.size() >= 2) {
        const auto half = kept.begin() + static_cast<std::ptrdiff_t>(kept.size() / 2);
        const std::vector<report::Fp32Sample> a(kept.begin(), half), b(half, kept.end());
        const ir::Model none = build_int8(model, table.ranges, config, {}, {}, depthwise).built.model;
        const double without_a = report::output_sqnr(model, none, a, so.int8_runtime, false),
                     without_b = report::output_sqnr(model, none, b, so.int8_runtime, false);
        const double with_a = sqnr(weighted_input_means(model.graph, b), a),
                     with_b = sqnr(weighted_input_means(model.graph, a), b);
        keep = with_a > without_a && with_b > without_b;
        figures = str_cat("output SQNR ", report::format_db(with_a), " and ", report::format_db(with_b), " dB with it, ",
                          report::format_db(without_a), " and ", report::format_db(without_b), " dB without, on two halves of ",
                          kept.size(), " calibration rows, each corrected with the other half's means (kept when it measures better on "
                          "both)");
      } else {
        const double without = chosen_db ? *chosen_db : sqnr({}, kept), with = sqnr(means, kept);
        keep = with > without;
        figures = str_cat("output SQNR ", report::format_db(with), " dB with it, ", report::format_db(without),
                          " dB without, on ", kept.size(), " calibration row");
      }
      if (!keep) {
        result.notes.push_back(str_cat("bias correction not kept: ", figures));
        means.clear();
      } else {
        spdlog::info("bias correction kept: {}", figures);
      }
      table.channel_mean = means;
    }
    const report::Builder plain = [&](const report::NodeSelection& sel) {
      return build_int8(model, table.ranges, config, to_filter(sel), means, depthwise).built;
    };
    report::SearchResult sr = report::search_placement(model, plain, kept, so, *search);
    searched = sr.selection;
    searched.searched = searched.fp32;
    table.search_fp32.emplace();
    for (ir::NodeId id : searched.fp32) table.search_fp32->push_back(model.graph.value(model.graph.node(id).outputs[0]).name);
    if (!sr.rounds.empty()) {
      std::string rounds;
      for (const report::SearchRound& r : sr.rounds)
        rounds += str_cat(rounds.empty() ? "" : ", ", r.nodes.size(), " node(s) -> ", report::format_db(r.sqnr_db),
                          " dB", r.kept ? "" : " (not kept)");
      result.notes.push_back(str_cat("placement search: ", searched.fp32.size(), " node(s) kept fp32, output SQNR ",
                                     report::format_db(sr.before_db), " -> ", report::format_db(sr.after_db), " dB on ",
                                     sr.samples, " calibration rows (rounds: ", rounds,
                                     "; --effort fast skips the search)"));
    }
    result.search = std::move(sr);
    if (o.bias_correction && o.empirical_bias_correction) {
      const report::BuiltModel searched_model =
          build_int8(model, table.ranges, config, to_filter(searched), means, depthwise).built;
      const std::vector<std::map<std::string, Tensor>> rows = calibration_rows(ds, model.graph, kEmpiricalBiasRows);
      const EmpiricalBias eb = empirical_bias_shift(model, searched_model, rows, so.fp32_runtime, o.threads,
                                                     o.config.fit_written_out_hardswish);
      m.bias_shift = eb.shift;
      table.bias_shift = eb.shift;
      m.output_gain = eb.gain;
      table.output_gain = eb.gain;
      spdlog::info("empirical bias correction: {} of {} Convs' biases moved: {} read through a SiLU or HardSwish, "
                   "with a gain per channel as well; the others where the other half of the {} calibration rows "
                   "measured less error in what the next layer reads",
                   eb.shift.size(), eb.measured, eb.gain.size(), rows.size());
    }
    m.ran = true;
  } else if (search) {
    result.notes.push_back(str_cat(o.load_calib, " has no bias-correction statistics or placement search (a table "
                                   "merged from shards): pass --calib DATA too to measure them, or --effort fast to say "
                                   "they are not wanted"));
  }
  table.uint8_weights = config.uint8_weights == quant::Uint8Weights::kWhereCoarse;  // what this run built
  return m;
}

}  // namespace ptq::pipeline
