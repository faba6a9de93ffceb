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

// What the second (histogram) pass collects for a tensor.
enum class HistogramKind {
  kNone,      // min/max only
  kAbsolute,  // |x| over [0, max|x|]
  kSigned,    // x over [min, max]
  kSplit,     // positives over [0, max] and negated negatives over [0, -min], separately
};

struct CalibParams {
  double percentile = 99.999;    // percentile: share of values kept
  int num_bins = 2048;           // histogram bins (TensorRT uses 2048; ORT's default 128 is degenerate)
  int num_quantized_bins = 128;  // entropy: levels the reference distribution is merged into
  bool symmetric = true;         // percentile/entropy on |x|; false: the asymmetric variant
  bool moving_average = false;   // minmax: mean of per-sample extremes instead of the extremes
  // The grid the tensor will be quantized to (mse measures error on it).
  DType activation_type = DType::kUint8;
  quant::Symmetry activation_symmetry = quant::Symmetry::kAsymmetric;
};

// Statistics gathered for one tensor: exact range from the first pass, histograms from the second.
struct Observation {
  RangeStats range;
  Histogram hist;      // kAbsolute, kSigned, or the positive side of kSplit
  Histogram negative;  // kSplit only: the negated negative values
};

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

// Creates the histograms a method needs over the first pass's range.
void prepare_histograms(Observation& obs, HistogramKind kind, int num_bins);
// Adds a sample's values to the histograms of `kind`.
void observe_histogram(Observation& obs, HistogramKind kind, const float* x, size_t n);

// Building blocks, exposed for tests.
// TensorRT-style KL search on a one-sided histogram: returns the number of bins i (the threshold
// is edge(i)) minimising KL(P_i || Q_i), P_i = first i bins with the tail folded into the last,
// Q_i = P_i merged into `quantized_bins` levels and expanded over its non-empty bins.
size_t entropy_threshold_bins(const std::vector<uint64_t>& counts, int quantized_bins);
// Left edge of the bin where the cumulative share first reaches `share` (0..1).
double percentile_edge(const Histogram& h, double share);

}  // namespace ptq::calib
