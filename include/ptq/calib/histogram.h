// Fixed-range histograms and exact min/max: the per-tensor statistics calibration streams into.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace ptq::calib {

// Exact range of everything observed, plus the mean of per-sample extremes (for averaged minmax).
// Merging is order-independent, so results do not depend on batching or threads.
struct RangeStats {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double sum_sample_min = 0;
  double sum_sample_max = 0;
  size_t samples = 0;

  // One sample's values (NaN is ignored).
  void observe(const float* x, size_t n);
  bool empty() const { return samples == 0 || min > max; }
};

// Equal-width bins over [lo, hi] fixed up front (from the min/max pre-pass), so the counts never
// depend on the order or grouping of samples. Values outside clamp into the end bins.
class Histogram {
 public:
  Histogram() = default;
  Histogram(double lo, double hi, int bins);
  void add(double v) {
    if (!(v == v)) return;  // NaN
    double t = (v - lo_) * inv_width_;
    int64_t b = t <= 0 ? 0 : static_cast<int64_t>(t);
    if (b >= static_cast<int64_t>(counts_.size())) b = static_cast<int64_t>(counts_.size()) - 1;
    ++counts_[static_cast<size_t>(b)];
  }
  void add(const float* x, size_t n) {
    for (size_t i = 0; i < n; ++i) add(static_cast<double>(x[i]));
  }
  void merge(const Histogram& other);
  double lo() const { return lo_; }
  double hi() const { return hi_; }
  double width() const { return width_; }
  double edge(size_t i) const { return lo_ + width_ * static_cast<double>(i); }  // i in [0, bins]
  double center(size_t i) const { return lo_ + width_ * (static_cast<double>(i) + 0.5); }
  size_t bins() const { return counts_.size(); }
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t total() const;

 private:
  double lo_ = 0, hi_ = 0, width_ = 0, inv_width_ = 0;
  std::vector<uint64_t> counts_;
};

}  // namespace ptq::calib
