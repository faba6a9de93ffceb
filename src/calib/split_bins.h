// Internal: the vector binning of Pow2Histogram::add_split (float scales), AVX2 and AVX-512.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ptq::calib {

// True when split_bins_avx2 / split_bins_avx512 may be called (checked once).
bool split_bins_available();
bool split_bins_avx512_available();

// The most values one kernel call takes (its 32-bit scratch counts); longer runs are refused.
constexpr size_t kSplitBinsMaxValues = size_t{1} << 30;

// One call of a binning kernel.
struct SplitBins {
  // n is a multiple of 8 (AVX2) or 16 (AVX-512); the caller bins the rest. ps and ns are normal
  // powers of two (products exact, or binned to 0 either way, so the bins equal the scalar
  // loop's), or 0 for a side that has no range yet.
  const float* x = nullptr;
  size_t n = 0;
  float ps = 0.f, ns = 0.f;
  size_t last = 0;  // bins - 1
  uint64_t* pos = nullptr;
  uint64_t* neg = nullptr;
  // Added on success: positive values, negative values, exact zeros (bin 0 of pos).
  uint64_t np = 0, nn = 0, zeros = 0;
  // Always: the extremes of the non-NaN values (lo > hi when there are none).
  float lo = 0.f, hi = 0.f;
};

// True when every value in [lo, hi] (none when lo > hi) lies within the ranges: x >= 0 needs
// ps > 0 and x·ps < bins, x < 0 needs ns > 0 and -x·ns < bins (infinities never fit).
bool within_ranges(float lo, float hi, float ps, float ns, size_t bins);

// For each finite x: x > 0 adds one to pos[trunc(x·ps)], x < 0 to neg[trunc(-x·ns)], x == 0 is
// a zero, NaN nothing. Returns false and adds nothing when a value lies outside the ranges: x >= 0
// with ps == 0 or x·ps >= bins, x < 0 with ns == 0 or -x·ns >= bins (infinities included).
bool split_bins_avx2(SplitBins& job);
bool split_bins_avx512(SplitBins& job);

}  // namespace ptq::calib
