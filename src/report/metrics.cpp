// Error statistics (SQNR, cosine, abs errors) and top-k selection.
#include "ptq/report/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "ptq/core/error.h"

namespace ptq::report {

void ErrorStats::add(const Tensor& a, const Tensor& b) {
  PTQ_CHECK(a.dtype() == DType::kFloat && b.dtype() == DType::kFloat, IoError,
            "only float32 tensors are compared");
  PTQ_CHECK(a.numel() == b.numel(), IoError, "tensors to compare have ", a.numel(), " and ", b.numel(),
            " elements");
  const float* x = a.data<float>();
  const float* y = b.data<float>();
  for (size_t i = 0; i < a.numel(); ++i) {
    const double p = x[i], q = y[i], d = p - q;
    signal += p * p;
    noise += d * d;
    dot += p * q;
    norm_b += q * q;
    sum_abs += std::fabs(d);
    max_abs = std::max(max_abs, std::fabs(d));
  }
  count += a.numel();
}

void ErrorStats::merge(const ErrorStats& o) {
  signal += o.signal;
  noise += o.noise;
  dot += o.dot;
  norm_b += o.norm_b;
  sum_abs += o.sum_abs;
  max_abs = std::max(max_abs, o.max_abs);
  count += o.count;
}

std::optional<double> ErrorStats::sqnr_db() const {
  if (noise <= 0) return std::nullopt;
  if (signal <= 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

double ErrorStats::cosine() const {
  if (signal <= 0 && norm_b <= 0) return 1.0;
  if (signal <= 0 || norm_b <= 0) return 0.0;
  return dot / (std::sqrt(signal) * std::sqrt(norm_b));
}

double sqnr_or_inf(const std::optional<double>& db) {
  return db ? *db : std::numeric_limits<double>::infinity();
}

std::vector<size_t> top_k(const float* row, size_t n, size_t k) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), size_t{0});
  k = std::min(k, n);
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), [&](size_t i, size_t j) {
    if (row[i] != row[j]) return row[i] > row[j];
    return i < j;
  });
  idx.resize(k);
  return idx;
}

size_t classifier_classes(const std::vector<int64_t>& dims) {
  if (dims.size() < 2) return 0;
  size_t classes = 0;
  for (size_t i = 1; i < dims.size(); ++i) {
    if (dims[i] > 1) {
      if (classes) return 0;
      classes = static_cast<size_t>(dims[i]);
    }
  }
  return classes;
}

}  // namespace ptq::report
