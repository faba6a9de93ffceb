// Per-tensor statistics calibration streams into: exact min/max and single-pass histograms.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace ptq::calib {

// The exact sum of floats, in fixed point (units of 2^-149, the smallest float): additions are
// exact, so the total does not depend on the order or grouping of the terms. What lets shards on
// different machines merge into the same averaged-minmax range as one run.
class ExactSum {
 public:
  void add(float x);
  void merge(const ExactSum& other);
  double value() const;  // the sum rounded to nearest double; +-inf/NaN as the terms say
  bool operator==(const ExactSum& other) const = default;
  // Round trip through text (partial statistics files): "-inf", "inf", "nan" or 96 hex digits.
  std::string to_hex() const;
  static ExactSum from_hex(const std::string& text);  // std::invalid_argument on bad text

 private:
  static constexpr size_t kLimbs = 6;  // 384 bits: 2^128 * 2^149 * 2^64 terms fit with the sign
  std::array<uint64_t, kLimbs> limbs_{};  // two's complement, least significant first
  bool pos_inf_ = false, neg_inf_ = false, nan_ = false;
};

// Exact range of everything observed, plus the mean of per-sample extremes (for averaged minmax).
// Merging is order-independent, so results do not depend on batching or threads.
struct RangeStats {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  ExactSum sum_sample_min;
  ExactSum sum_sample_max;
  size_t samples = 0;
  float last_min = 0.f, last_max = 0.f;  // extremes of the latest sample

  // One sample's values (NaN is ignored).
  void observe(const float* x, size_t n);
  // A sample whose extremes are known (NaN ignored; lo > hi: no values).
  void observe_extremes(float lo, float hi);
  bool empty() const { return samples == 0 || min > max; }
  // Folds in the statistics of other samples: exact and order-independent (last_min/last_max
  // take `later`'s, which only the observation in progress reads).
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
  // add_split in the same pass that finds the extremes, when the histograms' ranges already
  // cover every value (after the first samples, nearly always): true, with min/max of the
  // non-NaN values (min > max: none). False, and nothing added, otherwise (or where no vector
  // kernel serves it): then find the extremes and call add_split.
  static bool add_split_within(Pow2Histogram& positive, Pow2Histogram& negative, const float* x, size_t n,
                               float& min, float& max);
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
  // The range's exponent e (range 2^e); meaningless while empty.
  int exponent() const { return exp_; }
  // A histogram from saved parts (partial statistics files): `counts` (a power-of-two number of
  // bins) over [0, 2^exponent). std::invalid_argument when the parts are inconsistent.
  static Pow2Histogram restore(std::vector<uint64_t> counts, int exponent);

 private:
  void grow_to(float max_value);
  void commit(uint64_t values, uint64_t zeros);  // totals after binning; zeros go to bin 0
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
