// mse: the range whose fake-quantization error over the histogram is smallest, on the target grid.
#include <cmath>
#include <limits>

#include "clamp_range.h"
#include "histogram_loss.h"
#include "ptq/calib/methods.h"

namespace ptq::calib {
namespace {

struct Best {
  double loss = std::numeric_limits<double>::infinity();
  double a = 1, b = 1;  // shrink factors of the low and high ends
  void offer(double l, double na, double nb) {
    if (l < loss) {
      loss = l;
      a = na;
      b = nb;
    }
  }
};

}  // namespace

HistogramKind mse_histogram(const CalibParams&) { return HistogramKind::kSigned; }

Range mse_compute(const Observation& obs, const CalibParams& p) {
  const RangeStats& r = obs.range;
  const Histogram h = obs.signed_view();
  if (r.empty() || h.total() == 0) return {0.f, 0.f};
  // Infinities are never binned: the search spans the finite values (the histogram's extent).
  const double lo = std::min(std::isfinite(r.min) ? r.min : h.lo(), 0.0);
  const double hi = std::max(std::isfinite(r.max) ? r.max : h.hi(), 0.0);
  const bool symmetric = p.activation_symmetry == quant::Symmetry::kSymmetric;
  const LossBins bins(h, Through::kIdentity);
  LossMemo loss(bins, Through::kIdentity, p);
  // Coarse grid of shrink factors, then a finer grid around the best: the loss is smooth enough
  // in the range that a two-level search lands within a fraction of a percent of the optimum.
  constexpr int kCoarse = 64, kFine = 16;
  Best best;
  if (symmetric) {
    const double absmax = std::max(-lo, hi);
    for (int k = 1; k <= kCoarse; ++k) {
      const double s = static_cast<double>(k) / kCoarse;
      best.offer(loss(-absmax * s, absmax * s), s, s);
    }
    const double center = best.a;
    for (int k = -kFine; k <= kFine; ++k) {
      const double s = center + static_cast<double>(k) / (kCoarse * kFine);
      if (s > 0 && s <= 1) best.offer(loss(-absmax * s, absmax * s), s, s);
    }
    return clamp_to_observed(-absmax * best.a, absmax * best.b, r);
  }
  constexpr int kGrid = 32;
  for (int i = 1; i <= kGrid; ++i)
    for (int j = 1; j <= kGrid; ++j) {
      const double a = static_cast<double>(i) / kGrid, b = static_cast<double>(j) / kGrid;
      best.offer(loss(lo * a, hi * b), a, b);
    }
  const double ca = best.a, cb = best.b;
  for (int i = -8; i <= 8; ++i)
    for (int j = -8; j <= 8; ++j) {
      const double a = ca + static_cast<double>(i) / (kGrid * 8), b = cb + static_cast<double>(j) / (kGrid * 8);
      if (a > 0 && a <= 1 && b > 0 && b <= 1) best.offer(loss(lo * a, hi * b), a, b);
    }
  return clamp_to_observed(lo * best.a, hi * best.b, r);
}

}  // namespace ptq::calib
