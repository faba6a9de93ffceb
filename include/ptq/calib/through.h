// Elementwise activations a tensor is read through (SiLU, HardSwish): its range is fitted to the
// error after the activation, not to the tensor's own error.
#pragma once

#include <optional>
#include <string_view>

#include "ptq/calib/methods.h"

namespace ptq::calib {

enum class Through { kIdentity, kSilu, kHardSwish };

// "identity" | "silu" | "hardswish".
const char* through_name(Through f);
std::optional<Through> parse_through(std::string_view name);
// f(x): x*sigmoid(x), x*clip(x/6 + 1/2, 0, 1), or x.
double through_apply(Through f, double x);

// The method's range `r` with its low end raised to the value that minimises the histogram's
// squared error after f (the fake-quantized value through f vs the value through f). Only the low
// end moves: SiLU and HardSwish flatten towards 0 below zero, so a Conv output's long negative
// tail (YOLOX: down to -93 where the SiLU output never goes below -0.28) costs resolution and buys
// nothing; above zero both are near the identity, where the method's clip stands. Unchanged
// without histograms (minmax) or for the identity.
Range fit_through(const Observation& obs, Range r, Through f, const CalibParams& p);

}  // namespace ptq::calib
