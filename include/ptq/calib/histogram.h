// Per-tensor statistics calibration streams into: exact min/max and single-pass histograms.
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
  float last_min = 0.f, last_max = 0.f;  // extremes of the latest sample

  // One sample's values (NaN is ignored).
  void observe(const float* x, size_t n);
  bool empty() const { return samples == 0 || min > max; }
  // Folds in the statistics of later samples (as if they had been observed here after ours):
  // sums add in the order merges happen, so merge samples in sample order.
  void merge(const RangeStats& later);
};

// A one-sided histogram of non-negative values over [0, 2^e) in a power-of-two number of bins.
// When a value reaches the range, the range doubles and neighbouring bins merge pairwise. Bin
// edges of every such range are nested and a value's bin is computed by scaling with a power of
// two (exact in floating point), so the counts equal those of a histogram built directly over
// the final range: they do not depend on the order or grouping of samples, and one pass suffices.
class Pow2Histogram {
 public:
  explicit Pow2Histogram(int bins = 4096);
  void add_nonnegative(const float* x, size_t n);  // adds every x >= 0 (zeros included)
  void add_negated(const float* x, size_t n);      // adds -x for every x < 0
  // Both at once in one pass, given the values' min and max (as RangeStats just saw them): what
  // calibration runs on every tensor, so it avoids rescanning the data for each side.
  static void add_split(Pow2Histogram& positive, Pow2Histogram& negative, const float* x, size_t n,
                        float min, float max);
  bool empty() const { return total_ == 0; }
  double range() const;  // 2^e: every value seen is below it
  size_t bins() const { return counts_.size(); }
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t total() const { return total_; }
  // This histogram's counts over the range of `other` when that is larger (bins merge pairwise).
  std::vector<uint64_t> counts_at_range_of(const Pow2Histogram& other) const;
  // Adds another histogram's counts (same bin count): exact, the counts equal those of one
  // histogram fed both inputs, in any order.
  void merge(const Pow2Histogram& other);

 private:
  void grow_to(float max_value);
  template <typename Bin>
  void add_binned(const float* x, size_t n, Bin value_of);
  int exp_ = std::numeric_limits<int>::min();  // range 2^exp_; min() while empty
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
};

// Equal-width bins over [lo, hi]: the view calibration methods read (built from Pow2Histograms).
class Histogram {
 public:
  Histogram() = default;
  Histogram(double lo, double hi, std::vector<uint64_t> counts);
  double lo() const { return lo_; }
  double hi() const { return hi_; }
  double width() const { return width_; }
  double edge(size_t i) const { return lo_ + width_ * static_cast<double>(i); }  // i in [0, bins]
  double center(size_t i) const { return lo_ + width_ * (static_cast<double>(i) + 0.5); }
  size_t bins() const { return counts_.size(); }
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t total() const;

 private:
  double lo_ = 0, hi_ = 0, width_ = 0;
  std::vector<uint64_t> counts_;
};

}  // namespace ptq::calib
