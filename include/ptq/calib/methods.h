// Calibration methods by name: a plain table of {name, description, histogram kind, compute}.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "ptq/calib/histogram.h"
#include "ptq/core/dtype.h"
#include "ptq/quant/quant_config.h"
#include "ptq/quant/quant_params.h"

namespace ptq::calib {

using Range = quant::Range;

// The histogram view a method reads.
enum class HistogramKind {
  kNone,      // min/max only
  kAbsolute,  // |x| over [0, R)
  kSigned,    // x over [-R, R)
  kSplit,     // positives over [0, Rp) and negated negatives over [0, Rn), separately
};

struct CalibParams {
  double percentile = 99.999;    // percentile: share of values kept
  int num_bins = 2048;           // histogram resolution over [0, max|x|] (at least; TensorRT uses 2048)
  int num_quantized_bins = 128;  // entropy: levels the reference distribution is merged into
  bool symmetric = true;         // percentile/entropy on |x|; false: the asymmetric variant
  bool moving_average = false;   // minmax: mean of per-sample extremes instead of the extremes
  // The grid the tensor will be quantized to (mse measures error on it).
  DType activation_type = DType::kUint8;
  quant::Symmetry activation_symmetry = quant::Symmetry::kAsymmetric;
};

// Statistics gathered for one tensor in a single pass: exact range and, when the method needs
// them, one-sided power-of-two histograms of the positive and negated negative values.
struct Observation {
  RangeStats range;
  Pow2Histogram positive;
  Pow2Histogram negative;
  explicit Observation(int num_bins = 2048);
  void observe(const float* x, size_t n, bool histograms);
  // The range here, the histograms (if any) into `histograms`: counts on power-of-two grids are
  // exact integers, so one accumulator may take samples in any order (calibration keeps one per
  // worker instead of a 2 x 4096-bin histogram per sample).
  void observe(const float* x, size_t n, Observation* histograms);
  // Folds in the observation of later samples (merge in sample order: see RangeStats::merge).
  void merge(const Observation& later);

  // Views (bins over the trimmed range that holds data; see histogram_bins()).
  Histogram absolute() const;
  Histogram signed_view() const;
  Histogram positive_view() const;
  Histogram negative_view() const;
};

// Storage bins per side: twice the requested resolution, because a power-of-two range may be up to
// twice the largest value.
int histogram_bins(const CalibParams& params);

struct Method {
  const char* name;
  const char* description;  // shown by the CLI help
  HistogramKind (*histogram)(const CalibParams&);
  Range (*compute)(const Observation&, const CalibParams&);
};

// All registered methods, in the order of methods.inc.
std::span<const Method> methods();
// nullptr when unknown.
const Method* find_method(std::string_view name);
// "minmax, percentile, entropy, mse" for messages and help.
std::string method_names();
// How a method with its parameters is named in notes and the summary: "minmax (mean of per-sample
// extremes)" for --minmax-average, else the method's name.
std::string method_label(std::string_view method, const CalibParams& params);

// Building blocks, exposed for tests.
// TensorRT-style KL search on a one-sided histogram: returns the number of bins i (the threshold
// is edge(i)) minimising KL(P_i || Q_i), P_i = first i bins with the tail folded into the last,
// Q_i = P_i merged into `quantized_bins` levels and expanded over its non-empty bins.
// Candidates start at `first_candidate` bins (at least `quantized_bins`).
size_t entropy_threshold_bins(const std::vector<uint64_t>& counts, int quantized_bins, size_t first_candidate = 0);
// Left edge of the bin where the cumulative share first reaches `share` (0..1).
double percentile_edge(const Histogram& h, double share);

}  // namespace ptq::calib
