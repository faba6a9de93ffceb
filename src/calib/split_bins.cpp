// AVX2 histogram binning: bin indices for 8 values at once, counted in 32-bit scratch tables.
#include "split_bins.h"

#include <algorithm>
#include <vector>

#include "ptq/core/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ptq::calib {

bool split_bins_available() { return cpu_features().avx2 && cpu_features().popcnt; }

#if defined(__x86_64__) || defined(__i386__)

namespace {

// Left-pack permutations: for each 8-lane mask, the indices of its set lanes first.
struct PackTable {
  alignas(32) uint32_t perm[256][8];
  PackTable() {
    for (int m = 0; m < 256; ++m) {
      int k = 0;
      for (int l = 0; l < 8; ++l)
        if (m & (1 << l)) perm[m][k++] = static_cast<uint32_t>(l);
      for (; k < 8; ++k) perm[m][k] = 0;
    }
  }
};
const PackTable kPack;

}  // namespace

__attribute__((target("avx2,popcnt"))) void split_bins_avx2(const float* x, size_t n, float ps, float ns,
                                                            size_t last, uint64_t* pos, uint64_t* neg,
                                                            uint64_t& np, uint64_t& nn, uint64_t& zeros) {
  // The scalar loop's cost was the branch on each value's sign and the 64-bit read-modify-write
  // per value. Here the index comes from vector arithmetic (negative values offset by `bins`),
  // the bin indices of the nonzero values are left-packed into a buffer (zeros, half of a
  // post-ReLU tensor, and NaN need no increment), and the buffer is counted in a tight loop into
  // two 32-bit tables, alternately (neighbouring values often share a bin, and incrementing one
  // slot back to back waits on the previous store), folded in at the end.
  const size_t bins = last + 1;
  thread_local std::vector<uint32_t> table;
  table.assign(4 * bins, 0);
  uint32_t* t = table.data();
  uint32_t* t2 = t + 2 * bins;
  const __m256 zero = _mm256_setzero_ps(), psv = _mm256_set1_ps(ps), nsv = _mm256_set1_ps(ns);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i lastv = _mm256_set1_epi32(static_cast<int>(last));
  const __m256i binsv = _mm256_set1_epi32(static_cast<int>(bins));
  uint64_t p = 0, q = 0, z = 0;
  constexpr size_t kBuf = 1024;
  alignas(32) uint32_t buf[kBuf + 8];
  size_t cnt = 0;
  const auto count = [&] {
    size_t k = 0;
    for (; k + 2 <= cnt; k += 2) {
      ++t[buf[k]];
      ++t2[buf[k + 1]];
    }
    if (k < cnt) ++t[buf[k]];
    cnt = 0;
  };
  // 32-bit counts: folded into the 64-bit bins every 2^30 values.
  constexpr size_t kChunk = size_t{1} << 30;
  size_t i = 0;
  while (i < n) {
    for (const size_t end = std::min(n, i + kChunk); i < end; i += 8) {
      const __m256 v = _mm256_loadu_ps(x + i);
      const __m256 is_neg = _mm256_cmp_ps(v, zero, _CMP_LT_OQ);
      const __m256 is_pos = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
      const __m256 scaled = _mm256_mul_ps(_mm256_and_ps(v, abs_mask), _mm256_blendv_ps(psv, nsv, is_neg));
      __m256i b = _mm256_min_epu32(_mm256_cvttps_epi32(scaled), lastv);
      b = _mm256_add_epi32(b, _mm256_and_si256(_mm256_castps_si256(is_neg), binsv));
      const auto mp = static_cast<unsigned>(_mm256_movemask_ps(is_pos));
      const auto mn = static_cast<unsigned>(_mm256_movemask_ps(is_neg));
      const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kPack.perm[mp | mn]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(buf + cnt), _mm256_permutevar8x32_epi32(b, perm));
      cnt += static_cast<size_t>(__builtin_popcount(mp | mn));
      p += static_cast<uint64_t>(__builtin_popcount(mp));
      q += static_cast<uint64_t>(__builtin_popcount(mn));
      z += static_cast<uint64_t>(__builtin_popcount(
          static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_EQ_OQ)))));
      if (cnt >= kBuf) count();
    }
    count();
    for (size_t b = 0; b < bins; ++b) {
      pos[b] += uint64_t{t[b]} + t2[b];
      neg[b] += uint64_t{t[bins + b]} + t2[bins + b];
    }
    std::fill(table.begin(), table.end(), 0u);
  }
  np += p;
  nn += q;
  zeros += z;
}

#else

void split_bins_avx2(const float*, size_t, float, float, size_t, uint64_t*, uint64_t*, uint64_t&, uint64_t&,
                     uint64_t&) {}

#endif

}  // namespace ptq::calib
