// The calibration method table, built from methods.inc, and histogram plumbing shared by methods.
#include "ptq/calib/methods.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ptq::calib {

#define PTQ_CALIB_METHOD(name, description)                 \
  HistogramKind name##_histogram(const CalibParams& params); \
  Range name##_compute(const Observation& obs, const CalibParams& params);
#include "methods.inc"
#undef PTQ_CALIB_METHOD

namespace {
constexpr Method kMethods[] = {
#define PTQ_CALIB_METHOD(name, description) {#name, description, name##_histogram, name##_compute},
#include "methods.inc"
#undef PTQ_CALIB_METHOD
};
}  // namespace

std::span<const Method> methods() { return kMethods; }

const Method* find_method(std::string_view name) {
  for (const Method& m : kMethods)
    if (name == m.name) return &m;
  return nullptr;
}

std::string method_names() {
  std::string s;
  for (const Method& m : kMethods) s += (s.empty() ? "" : ", ") + std::string(m.name);
  return s;
}

std::string method_label(std::string_view method, const CalibParams& params) {
  if (method == "minmax" && params.moving_average) return "minmax (mean of per-sample extremes)";
  return std::string(method);
}

int histogram_bins(const CalibParams& params) {
  int bins = 1;
  while (bins < 2 * params.num_bins) bins *= 2;
  return bins;
}

Observation::Observation(int num_bins) : positive(num_bins), negative(num_bins) {}

void Observation::observe(const float* x, size_t n, bool histograms) { observe(x, n, histograms ? this : nullptr); }

void Observation::observe(const float* x, size_t n, Observation* histograms) {
  float lo, hi;
  if (histograms && Pow2Histogram::add_split_within(histograms->positive, histograms->negative, x, n, lo, hi)) {
    range.observe_extremes(lo, hi);
    return;
  }
  const size_t before = range.samples;
  range.observe(x, n);
  if (!histograms || range.samples == before) return;  // nothing but NaN
  Pow2Histogram::add_split(histograms->positive, histograms->negative, x, n, range.last_min, range.last_max);
}

void Observation::merge(const Observation& later) {
  range.merge(later.range);
  positive.merge(later.positive);
  negative.merge(later.negative);
}

namespace {

// Drops empty bins at both ends, so methods see the range that holds data.
Histogram trimmed(double lo, double width, const std::vector<uint64_t>& c) {
  size_t first = 0, last = c.size();
  while (first < c.size() && c[first] == 0) ++first;
  while (last > first && c[last - 1] == 0) --last;
  if (first == last) return Histogram(0.0, 0.0, {0});
  return Histogram(lo + width * static_cast<double>(first), lo + width * static_cast<double>(last),
                   std::vector<uint64_t>(c.begin() + static_cast<std::ptrdiff_t>(first),
                                         c.begin() + static_cast<std::ptrdiff_t>(last)));
}

// The one-sided histogram of `h` over [0, R) with its zero bin kept (one-sided views start at 0).
Histogram one_sided(const std::vector<uint64_t>& c, double range) {
  size_t last = c.size();
  while (last > 0 && c[last - 1] == 0) --last;
  if (last == 0) return Histogram(0.0, 0.0, {0});
  const double width = range / static_cast<double>(c.size());
  return Histogram(0.0, width * static_cast<double>(last),
                   std::vector<uint64_t>(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(last)));
}

}  // namespace

Histogram Observation::absolute() const {
  const Pow2Histogram& wide = positive.range() >= negative.range() ? positive : negative;
  std::vector<uint64_t> c = positive.counts_at_range_of(wide);
  const std::vector<uint64_t> n = negative.counts_at_range_of(wide);
  for (size_t i = 0; i < c.size(); ++i) c[i] += n[i];
  return one_sided(c, wide.range());
}

Histogram Observation::signed_view() const {
  const Pow2Histogram& wide = positive.range() >= negative.range() ? positive : negative;
  const std::vector<uint64_t> p = positive.counts_at_range_of(wide);
  const std::vector<uint64_t> n = negative.counts_at_range_of(wide);
  // Negative bin i covers (-(i+1)w, -iw]: reversed, it sits left of the positive bins.
  std::vector<uint64_t> c(n.rbegin(), n.rend());
  c.insert(c.end(), p.begin(), p.end());
  const double r = wide.range();
  return trimmed(-r, r / static_cast<double>(p.size()), c);
}

Histogram Observation::positive_view() const { return one_sided(positive.counts(), positive.range()); }

Histogram Observation::negative_view() const { return one_sided(negative.counts(), negative.range()); }

}  // namespace ptq::calib
