// Issue 12: infinite activations (Log(Relu(x)) gives -inf) hung the histogram methods; every
// method must now finish and give finite ranges from the finite values (minmax reports the
// infinity, and the planner keeps such tensors fp32).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "ptq/calib/methods.h"

namespace ptq::calib {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

Range calibrate(const Method& m, const std::vector<std::vector<float>>& samples) {
  CalibParams p;
  const bool hist = m.histogram(p) != HistogramKind::kNone;
  Observation obs(histogram_bins(p));
  for (const auto& s : samples) obs.observe(s.data(), s.size(), hist);
  return m.compute(obs, p);
}

TEST(NonFiniteCalibration, InfinitiesDoNotHangAndHistogramRangesStayFinite) {
  // The hang: a sample whose negative side held only -inf and finite values (the -inf maximum
  // of the negated side left the histogram range unset, then it "grew" from 2^INT_MIN).
  const std::vector<std::vector<float>> samples = {
      {-kInf, -0.5f, -1.25f, 0.3f}, {-kInf, -kInf, 2.f}, {kInf, -0.1f, 0.7f}, {-2.f, 1.f}};
  for (const Method& m : methods()) {
    SCOPED_TRACE(m.name);
    const Range r = calibrate(m, samples);
    if (std::string(m.name) == "minmax") {
      EXPECT_TRUE(std::isinf(r.min) && std::isinf(r.max));  // the planner refuses it (fp32)
      continue;
    }
    EXPECT_TRUE(std::isfinite(r.min) && std::isfinite(r.max)) << r.min << " " << r.max;
    EXPECT_LE(r.min, r.max);
    EXPECT_GE(r.min, -2.5f);
    EXPECT_LE(r.max, 2.5f);
  }
}

TEST(NonFiniteCalibration, OnlyInfinitiesAndHugeValuesFinish) {
  const std::vector<std::vector<float>> samples = {{-kInf, -kInf}, {3e38f, -3e38f, 1e-40f}, {0.f}};
  for (const Method& m : methods()) {
    SCOPED_TRACE(m.name);
    const Range r = calibrate(m, samples);
    EXPECT_FALSE(std::isnan(r.min) || std::isnan(r.max));
  }
}

}  // namespace
}  // namespace ptq::calib
