// Per-node sensitivity (model-output SQNR with one node quantized) and the fp32 values it reuses:
// shared by the accuracy report and the placement search.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"
#include "ptq/data/dataset.h"
#include "ptq/report/accuracy.h"

namespace ptq::report {

// The fp32 model's values on one sample: what partial runs of a one-node model reuse.
struct Fp32Sample {
  std::map<std::string, Tensor> inputs;
  std::vector<Tensor> values;   // by fp32 value id (top-level graph; empty where not computed)
  std::vector<Tensor> outputs;  // the model outputs, named
};

// Runs the fp32 model on the first `n` samples of `ds`, keeping every top-level value. With
// `rows`: the first `n` batch rows instead, each run alone (data/rows.h), so that the figures do
// not depend on how the data is batched.
std::vector<Fp32Sample> fp32_values(const ir::Model& fp32, data::Dataset& ds, size_t n, const AccuracyOptions& o,
                                    bool rows = false);

// Calls fn(i) for i in [0, n) on `workers` threads; rethrows the error of the lowest index.
void parallel_indexed(size_t n, size_t workers, const std::function<void(size_t)>& fn);

// Lowest model-output SQNR (dB, +inf when exact) of `test` against the kept fp32 outputs. With
// `reuse` (the fp32 graph), values `test` computes exactly as fp32 does are taken from the kept
// run instead of recomputed; each figure is a serial sum over the samples in order.
double output_sqnr(const ir::Model& fp32, const ir::Model& test, const std::vector<Fp32Sample>& kept,
                   const runtime::InterpreterOptions& runtime, bool reuse);

// For each node, output_sqnr of the model with only that node quantized; nodes spread over the
// workers, one figure per node whatever the thread count.
std::vector<double> node_sensitivity(const ir::Model& fp32, const Builder& build, const std::vector<QuantNode>& nodes,
                                     const std::vector<Fp32Sample>& kept, const AccuracyOptions& o);

}  // namespace ptq::report
