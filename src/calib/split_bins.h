// Internal: the AVX2 binning of Pow2Histogram::add_split (float scales), when the CPU has AVX2.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ptq::calib {

// True when split_bins_avx2 may be called (checked once).
bool split_bins_available();

// n is a multiple of 8 (the caller bins the rest). For each finite x[i]: x > 0 adds one to
// pos[min(trunc(x·ps), last)], x < 0 to neg[min(trunc(-x·ns), last)]; exact zeros are counted in `zeros` (bin 0 of pos), NaN nowhere.
// `np`/`nn` count the positive/negative values. ps and ns are normal powers of two (products
// exact or binned to 0 either way), so the bins equal the scalar loop's.
void split_bins_avx2(const float* x, size_t n, float ps, float ns, size_t last, uint64_t* pos,
                     uint64_t* neg, uint64_t& np, uint64_t& nn, uint64_t& zeros);

}  // namespace ptq::calib
