// The quantize pipeline: load, prepare, ranges, fold, plan, emit, save.
#include "ptq/pipeline/quantize.h"

#include <spdlog/spdlog.h>

#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "ptq/core/sha256.h"
#include "ptq/calib/calibrate.h"
#include "ptq/data/dataset.h"
#include "ptq/emit/qdq_emitter.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/opset.h"
#include "ptq/passes/prepare.h"
#include "ptq/passes/quant_plan.h"

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

QuantizeResult quantize(const QuantizeOptions& o) {
  QuantizeResult result;
  const calib::Method* method = calib::find_method(o.method);
  PTQ_CHECK(method, UsageError, "--method: unknown method '", o.method, "' (use ", calib::method_names(), ")");
  PTQ_CHECK(!same_file(o.model_path, o.output_path), UsageError, "the output '", o.output_path,
            "' would overwrite the input model");
  ir::Model model = load_prepared(o.model_path);
  const std::string hash = sha256_file(o.model_path);
  PTQ_CHECK(!o.load_calib.empty() || !o.calib_data.empty(), UsageError,
            "calibration data is needed: pass --calib DATA or --load-calib TABLE.json");
  PTQ_CHECK(o.load_calib.empty() || o.calib_data.empty(), UsageError,
            "--calib and --load-calib exclude each other");
  calib::CalibTable table;
  if (!o.load_calib.empty()) {
    table = calib::load_calib_table(o.load_calib);
    PTQ_CHECK(o.force || table.model_sha256 == hash, IoError, o.load_calib,
              ": calibration table was made for another model (sha256 ", table.model_sha256.substr(0, 12),
              "... vs ", hash.substr(0, 12), "...); use --force to use it anyway");
  } else {
    data::Dataset ds = data::open_dataset(o.calib_data, model.graph, o.data);
    spdlog::info("calibrating on {} samples from {} ({}, method {})", ds.size(), o.calib_data,
                 data::layout_name(ds.layout()), o.method);
    calib::CalibrateOptions co;
    co.method = o.method;
    co.params = o.params;
    co.threads = o.threads;
    co.progress = o.progress;
    table = calib::calibrate(model, ds, co, hash);
    if (ds.skipped_nonfinite() > 0)
      result.notes.push_back(str_cat("skipped ", ds.skipped_nonfinite(), " calibration samples with NaN/Inf"));
  }
  if (!o.save_calib.empty()) calib::save_calib_table(table, o.save_calib);
  passes::RangeMap ranges = table.ranges;
  result.folded_activations = passes::fold_activations_into_quantized_producers(model.graph, o.config, ranges);
  const passes::QuantPlan plan = passes::plan_quantization(model.graph, o.config, ranges);
  result.fp32 = plan.fp32;
  const emit::EmitSummary s = emit::emit_qdq(model, plan, ranges, o.config);
  result.quantized_nodes = s.quantized_nodes;
  result.activation_pairs = s.activation_pairs;
  result.weights = s.weights;
  result.biases = s.biases;
  result.notes.insert(result.notes.end(), s.notes.begin(), s.notes.end());
  model.ir_version = std::max(model.ir_version, onnx_io::min_ir_version_for_opset(model.opset()));
  ir::verify(model);
  onnx_io::save_model(model, o.output_path, o.save);
  return result;
}

}  // namespace ptq::pipeline
