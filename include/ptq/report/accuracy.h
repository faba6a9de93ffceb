// The accuracy check around quantization: fp32 vs int8 on evaluation data, per-layer error and
// sensitivity, the budget gate and automatic fallback; and the same report for any two models.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ptq/data/dataset.h"
#include "ptq/ir/model.h"
#include "ptq/report/evaluate.h"
#include "ptq/report/report.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::report {

// Which nodes the int8 model quantizes (ids of the prepared fp32 graph).
struct NodeSelection {
  bool use_only = false;  // only the nodes in `only`
  std::set<ir::NodeId> only;
  std::set<ir::NodeId> fp32;      // returned to fp32
  std::set<ir::NodeId> searched;  // those of `fp32` the placement search returned (search.h)
};

// A node the int8 model quantizes. `output` names its output as the fp32 graph has it (for a
// folded Relu/Clip: the activation's output), `test_output` as the int8 graph has it before
// Q/DQ insertion (then make_probe() finds its QuantizeLinear).
struct QuantNode {
  ir::NodeId id = ir::kNone;
  std::string label, op, output, test_output;
  std::vector<float> channel_scale;  // the test output per channel (axis 1) is this much larger (Probe)
};

struct BuiltModel {
  ir::Model model;
  std::vector<QuantNode> nodes;  // in graph order
};
// Builds the int8 model for a selection (the pipeline's plan -> emit with a node filter).
using Builder = std::function<BuiltModel(const NodeSelection&)>;

struct AccuracyOptions {
  std::string data_path;  // --eval (or the calibration data)
  // Samples in memory instead (the Python package); data_path then only names them.
  std::shared_ptr<const data::MemorySamples> samples;
  data::DataOptions data;
  size_t max_samples = 0;  // 0: all
  bool data_is_calibration = false;
  std::string labels_path;
  Task task = Task::kAuto;
  size_t sensitivity_samples = 16;  // 0: no sensitivity
  size_t layer_samples = 128;       // per-layer SQNR on the first N samples; 0: all
  Budget budget;
  bool auto_fallback = false;
  size_t max_fallback = 10;
  runtime::InterpreterOptions fp32_runtime;
  runtime::InterpreterOptions int8_runtime;  // the int8 execution mode (integer kernels when set)
  std::string int8_execution = "qdq-fake-quant";
  std::string model_a, model_b;  // paths shown in the report
  std::function<void(const std::string&)> log;  // progress lines (optional)
};

struct AccuracyOutcome {
  Report report;
  BuiltModel model;         // the model to write: after fallback when it ran
  NodeSelection selection;  // what built it
};

// Checks usage before any work: budgets that need labels, fallback without a budget.
void validate(const AccuracyOptions& o);

// What check_accuracy checks before any work: flags, the labels file, the data folder and its
// samples' layout. The pipeline runs it before writing the model it writes ahead of the report.
void preflight(const ir::Model& fp32, const AccuracyOptions& o);

AccuracyOutcome check_accuracy(const ir::Model& fp32, const Builder& build, const AccuracyOptions& o);

// The same report for two given models (A = reference, B = test); per-layer rows for every
// float tensor both graphs name alike; no sensitivity or fallback.
Report compare_models(const ir::Model& a, const ir::Model& b, const AccuracyOptions& o);

}  // namespace ptq::report
