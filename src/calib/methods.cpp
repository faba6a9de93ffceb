// The calibration method table, built from methods.inc, and histogram plumbing shared by methods.
#include "ptq/calib/methods.h"

#include <algorithm>
#include <cmath>

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

void prepare_histograms(Observation& obs, HistogramKind kind, int num_bins) {
  const double lo = obs.range.empty() ? 0.0 : obs.range.min;
  const double hi = obs.range.empty() ? 0.0 : obs.range.max;
  switch (kind) {
    case HistogramKind::kNone: break;
    case HistogramKind::kAbsolute:
      obs.hist = Histogram(0.0, std::max(std::fabs(lo), std::fabs(hi)), num_bins);
      break;
    case HistogramKind::kSigned: obs.hist = Histogram(lo, hi, num_bins); break;
    case HistogramKind::kSplit:
      obs.hist = Histogram(0.0, std::max(hi, 0.0), num_bins);
      obs.negative = Histogram(0.0, std::max(-lo, 0.0), num_bins);
      break;
  }
}

void observe_histogram(Observation& obs, HistogramKind kind, const float* x, size_t n) {
  switch (kind) {
    case HistogramKind::kNone: break;
    case HistogramKind::kAbsolute:
      for (size_t i = 0; i < n; ++i) obs.hist.add(std::fabs(static_cast<double>(x[i])));
      break;
    case HistogramKind::kSigned: obs.hist.add(x, n); break;
    case HistogramKind::kSplit:
      for (size_t i = 0; i < n; ++i) {
        const double v = x[i];
        if (v > 0) obs.hist.add(v);
        else if (v < 0) obs.negative.add(-v);
      }
      break;
  }
}

}  // namespace ptq::calib
