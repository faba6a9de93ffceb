// Internal: clamps a threshold pair to the observed range, as ORT does after every histogram method.
#pragma once

#include <algorithm>

#include "ptq/calib/methods.h"

namespace ptq::calib {

inline Range clamp_to_observed(double lo, double hi, const RangeStats& r) {
  if (r.empty()) return {0.f, 0.f};
  return {static_cast<float>(std::max(lo, r.min)), static_cast<float>(std::min(hi, r.max))};
}

}  // namespace ptq::calib
