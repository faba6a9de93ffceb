// Internal: the squared error of fake-quantizing a histogram on a range, optionally through an
// activation (mse and the ranges fitted through SiLU/HardSwish share it).
#pragma once

#include <cstdint>
#include <unordered_map>
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

// histogram_loss for a search that offers many ranges: the loss depends on a range only through
// the grid (scale, zero point) it gives, and many offered ranges give the same grid (every low
// shrink of a tensor whose minimum is 0), so each grid's loss is computed once. Same values.
class LossMemo {
 public:
  LossMemo(const LossBins& bins, Through f, const CalibParams& p) : bins_(bins), f_(f), p_(p) {}
  double operator()(double lo, double hi);

 private:
  const LossBins& bins_;
  Through f_;
  const CalibParams& p_;
  std::unordered_map<uint64_t, double> seen_;
};

}  // namespace ptq::calib
