// Error statistics between a reference tensor and a test tensor, and top-k helpers for classifiers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "ptq/core/tensor.h"

namespace ptq::report {

// Accumulates over any number of tensor pairs (in a fixed order, so results are reproducible).
struct ErrorStats {
  double signal = 0;   // sum a^2
  double noise = 0;    // sum (a - b)^2
  double dot = 0;      // sum a * b
  double norm_b = 0;   // sum b^2
  double sum_abs = 0;  // sum |a - b|
  double max_abs = 0;  // max |a - b|
  size_t count = 0;    // elements compared

  // a: reference, b: test; both float32 with the same element count (IoError otherwise).
  void add(const Tensor& a, const Tensor& b);
  // b given as uint8/int8 codes: the same sums as add(a, DequantizeLinear(codes)), bit for bit,
  // without the float tensor (the report's probes: a fifth of the memory traffic).
  void add_codes(const Tensor& a, const Tensor& codes, int32_t zero_point, float scale);
  void merge(const ErrorStats& o);
  // 10 log10(signal / noise); nullopt when noise is 0 (identical: infinite SQNR).
  std::optional<double> sqnr_db() const;
  double cosine() const;  // 1 when both are all zeros
  double mean_abs() const { return count ? sum_abs / static_cast<double>(count) : 0.0; }

 private:
  template <typename Test>
  void add_with(const float* x, size_t n, Test test);
};

// Reference values of a quantized tensor binned over its int8 grid's range widened by a quarter on
// each side: the picture of why a layer is bad (mass clipped beyond the range, or a range far
// wider than the values). The clip range spans whole bins [first_inside, end_inside), so a bar
// is either clipped or not. Integer counts: any merge order gives the same histogram.
struct ValueHistogram {
  double lo = 0, hi = 0;            // the binned range
  double clip_lo = 0, clip_hi = 0;  // what the int8 grid represents
  std::vector<uint64_t> bins;
  size_t first_inside = 0, end_inside = 0;
  uint64_t below = 0, above = 0;  // outside [lo, hi]
  uint64_t nonfinite = 0;
  uint64_t clipped = 0;  // finite values outside [clip_lo, clip_hi]

  // `inside` bins over the clip range (a multiple of 4) and a quarter of that on each side.
  static ValueHistogram for_range(double clip_lo, double clip_hi, size_t inside = 64);
  void add(const Tensor& a);  // float32 values
  void merge(const ValueHistogram& o);
  uint64_t total() const;
  // Values the int8 grid clips, as a fraction of all finite values.
  double clipped_fraction() const;
};

// The report bins the first this-many samples (by index, so the same for any thread count):
// enough for the picture at a fraction of the binning cost.
constexpr size_t kHistogramSamples = 32;

// SQNR as a comparable number: +inf for nullopt.
double sqnr_or_inf(const std::optional<double>& db);

// Indices of the k largest values, largest first (ties: lower index first).
std::vector<size_t> top_k(const float* row, size_t n, size_t k);

// A classifier output: [N, C], or [N, C, 1, 1, ...] style shapes whose non-batch dims have exactly
// one dim > 1 (squeezenet's [1, 1000, 1, 1]). Returns C (0 when not a classifier shape).
size_t classifier_classes(const std::vector<int64_t>& dims);

}  // namespace ptq::report
