// Internal: the squared error of fake-quantizing a histogram on a range, optionally through an
// activation (mse and the ranges fitted through SiLU/HardSwish share it).
#pragma once

#include <vector>

#include "ptq/calib/methods.h"
#include "ptq/calib/through.h"

namespace ptq::calib {

// The non-empty bins of a histogram in bin order: centre (as the float fake_quantize sees it),
// count, and f at the centre. Searches evaluate the loss hundreds of times per tensor; empty bins
// and the centre arithmetic are paid once here.
struct LossBins {
  std::vector<float> centre;
  std::vector<double> count, fx;
  LossBins(const Histogram& h, Through f);
};

// Sum over the bins of count * (f(fake_quantize(centre)) - f(centre))^2 on the target grid of
// `p` with range [lo, hi], summed in bin order.
double histogram_loss(const LossBins& bins, double lo, double hi, Through f, const CalibParams& p);

}  // namespace ptq::calib
