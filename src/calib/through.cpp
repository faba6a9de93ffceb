// Ranges fitted through an elementwise activation: a 1-D search of the low end on the histogram.
#include "ptq/calib/through.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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

namespace {

// Squared error after f of quantizing the histogram's bin centres on [lo, hi]; fx: f at the centres.
double loss(const Histogram& h, const std::vector<double>& fx, double lo, double hi, Through f, const CalibParams& p) {
  const quant::QuantParams qp = quant::compute_scale_zp(static_cast<float>(lo), static_cast<float>(hi),
                                                        p.activation_type, p.activation_symmetry);
  const quant::IntRange r = quant::full_range(p.activation_type);
  double total = 0;
  const auto& c = h.counts();
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i] == 0) continue;
    const float x = static_cast<float>(h.center(i));
    const double e = through_apply(f, quant::fake_quantize(x, qp, r)) - fx[i];
    total += static_cast<double>(c[i]) * e * e;
  }
  return total;
}

}  // namespace

Range fit_through(const Observation& obs, Range r, Through f, const CalibParams& p) {
  if (f == Through::kIdentity || !(r.min < 0.f) || !(r.max > 0.f)) return r;
  const Histogram h = obs.signed_view();
  if (h.total() == 0 || obs.positive.bins() <= 1) return r;  // no histograms (minmax)
  // Candidates lo * k / kSteps: the loss has one broad minimum in the low end, and a step of 1/128
  // of the range is far below the resolution it trades against.
  constexpr int kSteps = 128;
  std::vector<double> fx(h.counts().size());
  for (size_t i = 0; i < fx.size(); ++i) fx[i] = through_apply(f, h.center(i));
  double best = std::numeric_limits<double>::infinity();
  float best_lo = r.min;
  for (int k = kSteps; k >= 1; --k) {
    const double lo = static_cast<double>(r.min) * k / kSteps;
    const double l = loss(h, fx, lo, r.max, f, p);
    if (l < best) {
      best = l;
      best_lo = static_cast<float>(lo);
    }
  }
  return {best_lo, r.max};
}

}  // namespace ptq::calib
