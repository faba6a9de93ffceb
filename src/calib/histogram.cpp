// Histogram and range statistics.
#include "ptq/calib/histogram.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ptq/core/error.h"

namespace ptq::calib {

void RangeStats::observe(const float* x, size_t n) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  for (size_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (!(v == v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (lo > hi) return;
  min = std::min(min, lo);
  max = std::max(max, hi);
  sum_sample_min += lo;
  sum_sample_max += hi;
  ++samples;
}

Histogram::Histogram(double lo, double hi, int bins) : lo_(lo), hi_(hi) {
  PTQ_ASSERT(bins > 0 && std::isfinite(lo) && std::isfinite(hi) && hi >= lo);
  // A zero-width range (constant tensor) still gets a usable bin width.
  if (hi_ <= lo_) hi_ = lo_ + 1e-30;
  width_ = (hi_ - lo_) / bins;
  inv_width_ = 1.0 / width_;
  counts_.assign(static_cast<size_t>(bins), 0);
}

void Histogram::merge(const Histogram& o) {
  PTQ_ASSERT(o.lo_ == lo_ && o.hi_ == hi_ && o.counts_.size() == counts_.size(),
             "histograms over different ranges");
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
}

uint64_t Histogram::total() const {
  return std::accumulate(counts_.begin(), counts_.end(), uint64_t{0});
}

}  // namespace ptq::calib
