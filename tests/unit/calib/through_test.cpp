// Ranges fitted through SiLU/HardSwish: the long negative tail is cut where the activation
// flattens, the high end and identity/minmax tensors stay as the method gave them.
#include <gtest/gtest.h>

#include <random>

#include "ptq/calib/through.h"

namespace ptq::calib {
namespace {

// A Conv output before SiLU: most values near 0, a long negative tail to -90, positives to 30.
Observation conv_output(bool histograms) {
  std::mt19937 rng(31337);
  std::normal_distribution<float> d(0.f, 2.f);
  std::vector<float> v(20000);
  for (float& x : v) x = d(rng);
  v[10] = -90.f;
  v[11] = -60.f;
  v[12] = 30.f;
  Observation obs(histograms ? 4096 : 1);
  obs.observe(v.data(), v.size(), histograms);
  return obs;
}

TEST(Through, SiluCutsTheNegativeTailAndKeepsTheHighEnd) {
  const Observation obs = conv_output(true);
  const CalibParams p;
  const Range r = fit_through(obs, {-90.f, 30.f}, Through::kSilu, p);
  // SiLU(x) >= -0.28 and -> 0 below -5: any low end between -12 and -2 costs less than the
  // resolution it wins; -90 would waste three quarters of the uint8 grid.
  EXPECT_GT(r.min, -12.f);
  EXPECT_LT(r.min, -2.f);
  EXPECT_EQ(r.max, 30.f);
  // HardSwish is exactly 0 below -3: nothing below it is worth a code.
  const Range h = fit_through(obs, {-90.f, 30.f}, Through::kHardSwish, p);
  EXPECT_GE(h.min, -3.6f);
  EXPECT_EQ(h.max, 30.f);
}

TEST(Through, IdentityMinmaxAndNonNegativeRangesAreLeftAlone) {
  const CalibParams p;
  const Range r{-90.f, 30.f};
  const Range a = fit_through(conv_output(true), r, Through::kIdentity, p);
  EXPECT_EQ(a.min, r.min);
  const Range b = fit_through(conv_output(false), r, Through::kSilu, p);  // minmax: no histograms
  EXPECT_EQ(b.min, r.min);
  const Range c = fit_through(conv_output(true), {0.f, 30.f}, Through::kSilu, p);
  EXPECT_EQ(c.min, 0.f);
}

TEST(Through, NamesRoundTrip) {
  for (Through f : {Through::kIdentity, Through::kSilu, Through::kHardSwish})
    EXPECT_EQ(parse_through(through_name(f)), f);
  EXPECT_FALSE(parse_through("gelu"));
  EXPECT_NEAR(through_apply(Through::kSilu, -1.278), -0.2785, 1e-4);
  EXPECT_EQ(through_apply(Through::kHardSwish, -3.5), 0.0);
}

}  // namespace
}  // namespace ptq::calib
