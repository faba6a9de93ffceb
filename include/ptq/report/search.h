// Placement search: which quantized nodes go back to fp32, decided by the measured model-output
// error on a few calibration samples rather than by op type (the default command's --effort).
#pragma once

#include <string>
#include <vector>

#include "ptq/data/dataset.h"
#include "ptq/ir/model.h"
#include "ptq/report/accuracy.h"
#include "ptq/report/sensitivity.h"

namespace ptq::report {

struct SearchOptions {
  size_t samples = 4;       // calibration rows the error is measured on (the caller's fp32 runs)
  double target_db = 20;    // no search once the model-output SQNR reaches this
  double margin_db = 3;     // a round takes the nodes whose sensitivity is below the SQNR + this
  double min_gain_db = 1;   // a round is kept only when it raises the SQNR by this much
  double max_fp32_share = 0.03;  // at most this share of the quantized nodes in fp32 (at least 4)
};

struct SearchRound {
  std::vector<std::string> nodes;  // labels of the nodes the round returned to fp32
  double sqnr_db = 0;              // model-output SQNR with them (and earlier rounds') in fp32
  bool kept = false;
};

struct SearchResult {
  NodeSelection selection;  // `fp32`: the nodes the kept rounds returned
  size_t samples = 0;
  double before_db = 0, after_db = 0;  // min model-output SQNR before and after (+inf: exact)
  std::vector<SearchRound> rounds;
};

// Measures the int8 model `build({})` on the kept fp32 runs (sensitivity.h); below the target, ranks the
// nodes by sensitivity (output SQNR with only that node quantized) and returns to fp32, round by
// round, every node whose sensitivity is within `margin_db` of the current SQNR, keeping a round
// only when it gains `min_gain_db` (noise from one node that alone costs nearly as much as all of
// them together is what a few fp32 nodes fix: YOLOX's Focus stem). Same result for any thread count.
SearchResult search_placement(const ir::Model& fp32, const Builder& build, const std::vector<Fp32Sample>& kept,
                              const AccuracyOptions& o, const SearchOptions& s);

}  // namespace ptq::report
