// percentile: drop the rarest (100 - P)% of values, symmetric on |x| or one tail each side.
#include <cmath>

#include "clamp_range.h"
#include "ptq/calib/methods.h"

namespace ptq::calib {

double percentile_edge(const Histogram& h, double share) {
  const uint64_t total = h.total();
  if (total == 0) return h.lo();
  // Interpolate inside the bin where the cumulative count reaches the target: this tracks
  // numpy's percentile to within a bin, where ORT's left edge always undershoots.
  const double target = share * static_cast<double>(total);
  double cum = 0;
  const auto& c = h.counts();
  for (size_t i = 0; i < c.size(); ++i) {
    const double next = cum + static_cast<double>(c[i]);
    if (next >= target && c[i] > 0) {
      const double frac = (target - cum) / static_cast<double>(c[i]);
      return h.edge(i) + h.width() * std::fmin(std::fmax(frac, 0.0), 1.0);
    }
    cum = next;
  }
  return h.hi();
}

HistogramKind percentile_histogram(const CalibParams& p) {
  return p.symmetric ? HistogramKind::kAbsolute : HistogramKind::kSigned;
}

Range percentile_compute(const Observation& obs, const CalibParams& p) {
  const double share = p.percentile / 100.0;
  if (p.symmetric) {
    const double t = percentile_edge(obs.absolute(), share);
    return clamp_to_observed(-t, t, obs.range);
  }
  const double tail = (1.0 - share) / 2.0;
  const Histogram h = obs.signed_view();
  return clamp_to_observed(percentile_edge(h, tail), percentile_edge(h, 1.0 - tail), obs.range);
}

}  // namespace ptq::calib
