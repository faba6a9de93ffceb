// Ranges fitted through an elementwise activation: a 1-D search of the low end on the histogram.
#include "ptq/calib/through.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "histogram_loss.h"

namespace ptq::calib {

const char* through_name(Through f) {
  switch (f) {
    case Through::kSilu: return "silu";
    case Through::kHardSwish: return "hardswish";
    case Through::kIdentity: break;
  }
  return "identity";
}

std::optional<Through> parse_through(std::string_view name) {
  for (Through f : {Through::kIdentity, Through::kSilu, Through::kHardSwish})
    if (name == through_name(f)) return f;
  return std::nullopt;
}

double through_apply(Through f, double x) {
  switch (f) {
    case Through::kSilu: return x / (1.0 + std::exp(-x));
    case Through::kHardSwish: return x * std::clamp(x / 6.0 + 0.5, 0.0, 1.0);
    case Through::kIdentity: break;
  }
  return x;
}

Range fit_through(const Observation& obs, Range r, Through f, const CalibParams& p) {
  if (f == Through::kIdentity || !(r.min < 0.f) || !(r.max > 0.f)) return r;
  const Histogram h = obs.signed_view();
  if (h.total() == 0 || obs.positive.bins() <= 1) return r;  // no histograms (minmax)
  // Candidates lo * k / kSteps: the loss has one broad minimum in the low end, and a step of 1/128
  // of the range is far below the resolution it trades against.
  constexpr int kSteps = 128;
  const LossBins bins(h, f);
  LossMemo loss(bins, f, p);
  double best = std::numeric_limits<double>::infinity();
  float best_lo = r.min;
  for (int k = kSteps; k >= 1; --k) {
    const double lo = static_cast<double>(r.min) * k / kSteps;
    const double l = loss(lo, r.max);
    if (l < best) {
      best = l;
      best_lo = static_cast<float>(lo);
    }
  }
  return {best_lo, r.max};
}

}  // namespace ptq::calib
