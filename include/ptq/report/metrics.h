// Error statistics between a reference tensor and a test tensor, and top-k helpers for classifiers.
#pragma once

#include <cstddef>
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
  void merge(const ErrorStats& o);
  // 10 log10(signal / noise); nullopt when noise is 0 (identical: infinite SQNR).
  std::optional<double> sqnr_db() const;
  double cosine() const;  // 1 when both are all zeros
  double mean_abs() const { return count ? sum_abs / static_cast<double>(count) : 0.0; }
};

// SQNR as a comparable number: +inf for nullopt.
double sqnr_or_inf(const std::optional<double>& db);

// Indices of the k largest values, largest first (ties: lower index first).
std::vector<size_t> top_k(const float* row, size_t n, size_t k);

// A classifier output: [N, C], or [N, C, 1, 1, ...] style shapes whose non-batch dims have exactly
// one dim > 1 (squeezenet's [1, 1000, 1, 1]). Returns C (0 when not a classifier shape).
size_t classifier_classes(const std::vector<int64_t>& dims);

}  // namespace ptq::report
