// minmax: the exact extremes, or the mean of per-sample extremes (NNCF's MEAN_MINMAX).
#include "ptq/calib/methods.h"

namespace ptq::calib {

HistogramKind minmax_histogram(const CalibParams&) { return HistogramKind::kNone; }

Range minmax_compute(const Observation& obs, const CalibParams& params) {
  const RangeStats& r = obs.range;
  if (r.empty()) return {0.f, 0.f};
  if (params.moving_average) {
    const double n = static_cast<double>(r.samples);
    return {static_cast<float>(r.sum_sample_min.value() / n), static_cast<float>(r.sum_sample_max.value() / n)};
  }
  return {static_cast<float>(r.min), static_cast<float>(r.max)};
}

}  // namespace ptq::calib
