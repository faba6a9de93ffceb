// Internal: the squared error of fake-quantizing a histogram on a range, optionally through an
// activation (mse and the ranges fitted through SiLU/HardSwish share it).
#pragma once

#include <vector>

#include "ptq/calib/methods.h"
#include "ptq/calib/through.h"

namespace ptq::calib {

// Sum over the bins of count * (f(fake_quantize(centre)) - fx[bin])^2 on the target grid of `p`
// with range [lo, hi]; fx holds f at the bin centres (the centres themselves for the identity).
inline double histogram_loss(const Histogram& h, const std::vector<double>& fx, double lo, double hi, Through f,
                             const CalibParams& p) {
  const quant::QuantParams qp = quant::compute_scale_zp(static_cast<float>(lo), static_cast<float>(hi),
                                                        p.activation_type, p.activation_symmetry);
  const quant::IntRange r = quant::full_range(p.activation_type);
  double total = 0;
  const auto& c = h.counts();
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i] == 0) continue;
    const double e = through_apply(f, quant::fake_quantize(static_cast<float>(h.center(i)), qp, r)) - fx[i];
    total += static_cast<double>(c[i]) * e * e;
  }
  return total;
}

// f at the histogram's bin centres.
inline std::vector<double> centres_through(const Histogram& h, Through f) {
  std::vector<double> fx(h.counts().size());
  for (size_t i = 0; i < fx.size(); ++i) fx[i] = through_apply(f, static_cast<float>(h.center(i)));
  return fx;
}

}  // namespace ptq::calib
