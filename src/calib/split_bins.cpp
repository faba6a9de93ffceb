// Vector histogram binning (AVX2, AVX-512): bin indices of 8 or 16 values at once, counted in 32-bit scratch tables.
#include "split_bins.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "ptq/core/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ptq::calib {

bool split_bins_available() { return cpu_features().avx2 && cpu_features().popcnt; }
bool split_bins_avx512_available() { return cpu_features().avx512 && cpu_features().popcnt; }

bool within_ranges(float lo, float hi, float ps, float ns, size_t bins) {
  const auto b = static_cast<double>(bins);
  if (!(lo <= hi)) return true;  // nothing but NaN
  // Exact products: the factors are powers of two.
  if (hi >= 0.f && (ps == 0.f || !(static_cast<double>(hi) * ps < b))) return false;
  if (lo < 0.f && (ns == 0.f || !(-static_cast<double>(lo) * ns < b))) return false;
  return true;
}

#if defined(__x86_64__) || defined(__i386__)

namespace {

// The scalar loop's cost was the branch on each value's sign and the 64-bit read-modify-write
// per value. The vector loops compute the indices (negative values offset by `bins`), left-pack
// those of the nonzero values into a buffer (zeros, half of a post-ReLU tensor, and NaN need no
// increment), and the buffer is counted in a tight loop into two 32-bit tables, alternately
// (neighbouring values often share a bin, and incrementing one slot back to back waits on the
// previous store), folded into the 64-bit bins at the end. They find the extremes on the way (so
// calibration reads each tensor once when the histograms' ranges already cover it).
constexpr size_t kBuf = 1024;

// One thread's two tables of 2·bins counts. They are all zero between calls (the fold clears
// what it reads): a tensor of a few thousand values must not pay a memset of the tables.
uint32_t* scratch_tables(size_t bins) {
  thread_local std::vector<uint32_t> table;
  if (table.size() != 4 * bins) table.assign(4 * bins, 0);
  return table.data();
}

inline void count(uint32_t* t, uint32_t* t2, const uint32_t* buf, size_t cnt) {
  size_t k = 0;
  for (; k + 2 <= cnt; k += 2) {
    ++t[buf[k]];
    ++t2[buf[k + 1]];
  }
  if (k < cnt) ++t[buf[k]];
}

// Where the values of [lo, hi] fall: bins [0, pos_used) and [0, neg_used) may hold counts.
// False when a value lies outside the ranges (SplitBins' contract).
bool used_bins(const SplitBins& j, size_t& pos_used, size_t& neg_used) {
  pos_used = neg_used = 0;
  if (!within_ranges(j.lo, j.hi, j.ps, j.ns, j.last + 1)) return false;
  if (!(j.lo <= j.hi)) return true;  // nothing but NaN
  if (j.hi >= 0.f) pos_used = static_cast<size_t>(static_cast<double>(j.hi) * j.ps) + 1;
  if (j.lo < 0.f) neg_used = static_cast<size_t>(-static_cast<double>(j.lo) * j.ns) + 1;
  return true;
}

// Adds the scratch counts of the first pos_used/neg_used bins to the job's bins and totals, and
// clears them (nothing else can be nonzero).
void fold(uint32_t* t, size_t bins, size_t pos_used, size_t neg_used, SplitBins& j) {
  uint32_t* t2 = t + 2 * bins;
  uint64_t p = 0, q = 0;
  for (size_t b = 0; b < pos_used; ++b) {
    const uint64_t a = uint64_t{t[b]} + t2[b];
    j.pos[b] += a;
    p += a;
  }
  for (size_t b = 0; b < neg_used; ++b) {
    const uint64_t c = uint64_t{t[bins + b]} + t2[bins + b];
    j.neg[b] += c;
    q += c;
  }
  std::fill(t, t + pos_used, 0u);
  std::fill(t2, t2 + pos_used, 0u);
  std::fill(t + bins, t + bins + neg_used, 0u);
  std::fill(t2 + bins, t2 + bins + neg_used, 0u);
  j.np += p;
  j.nn += q;
}

// Commits (fold) or drops (clear) the counts of a finished pass.
bool finish(uint32_t* t, size_t bins, SplitBins& j, uint64_t zeros) {
  size_t pos_used, neg_used;
  if (used_bins(j, pos_used, neg_used)) {
    fold(t, bins, pos_used, neg_used, j);
    j.zeros += zeros;
    return true;
  }
  std::fill(t, t + 4 * bins, 0u);
  return false;
}

// Left-pack permutations for AVX2: for each 8-lane mask, the indices of its set lanes first.
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

// Tensors past 2^30 values would need the 32-bit counts folded mid-pass: they take the scalar loop.
__attribute__((target("avx2,popcnt"))) bool split_bins_avx2(SplitBins& j) {
  if (j.n > kSplitBinsMaxValues) return false;
  const size_t bins = j.last + 1;
  uint32_t* t = scratch_tables(bins);
  uint32_t* t2 = t + 2 * bins;
  const __m256 zero = _mm256_setzero_ps(), psv = _mm256_set1_ps(j.ps), nsv = _mm256_set1_ps(j.ns);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i lastv = _mm256_set1_epi32(static_cast<int>(j.last));
  const __m256i binsv = _mm256_set1_epi32(static_cast<int>(bins));
  __m256 lo = _mm256_set1_ps(std::numeric_limits<float>::infinity()), hi = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  uint64_t z = 0;
  alignas(32) uint32_t buf[kBuf + 8];
  size_t cnt = 0;
  for (size_t i = 0; i < j.n; i += 8) {
    const __m256 v = _mm256_loadu_ps(j.x + i);
    lo = _mm256_min_ps(v, lo);  // NaN keeps the second operand: ignored
    hi = _mm256_max_ps(v, hi);
    const __m256 is_neg = _mm256_cmp_ps(v, zero, _CMP_LT_OQ);
    const __m256 is_pos = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
    const __m256 scaled = _mm256_mul_ps(_mm256_and_ps(v, abs_mask), _mm256_blendv_ps(psv, nsv, is_neg));
    __m256i b = _mm256_min_epu32(_mm256_cvttps_epi32(scaled), lastv);
    b = _mm256_add_epi32(b, _mm256_and_si256(_mm256_castps_si256(is_neg), binsv));
    const auto m = static_cast<unsigned>(_mm256_movemask_ps(_mm256_or_ps(is_pos, is_neg)));
    const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kPack.perm[m]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(buf + cnt), _mm256_permutevar8x32_epi32(b, perm));
    cnt += static_cast<size_t>(__builtin_popcount(m));
    z += static_cast<uint64_t>(__builtin_popcount(
        static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_EQ_OQ)))));
    if (cnt >= kBuf) {
      count(t, t2, buf, cnt);
      cnt = 0;
    }
  }
  count(t, t2, buf, cnt);
  alignas(32) float l[8], h[8];
  _mm256_store_ps(l, lo);
  _mm256_store_ps(h, hi);
  j.lo = *std::min_element(l, l + 8);
  j.hi = *std::max_element(h, h + 8);
  return finish(t, bins, j, z);
}

// The same 16 values at a time: the masks live in mask registers and the left-pack is one
// compress instruction.
#pragma GCC diagnostic push
// GCC 12's avx512fintrin.h builds unmasked intrinsics on _mm512_undefined_*(): a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f,popcnt"))) bool split_bins_avx512(SplitBins& j) {
  if (j.n > kSplitBinsMaxValues) return false;
  const size_t bins = j.last + 1;
  uint32_t* t = scratch_tables(bins);
  uint32_t* t2 = t + 2 * bins;
  const __m512 zero = _mm512_setzero_ps(), psv = _mm512_set1_ps(j.ps), nsv = _mm512_set1_ps(j.ns);
  const __m512i lastv = _mm512_set1_epi32(static_cast<int>(j.last));
  const __m512i binsv = _mm512_set1_epi32(static_cast<int>(bins));
  __m512 lo = _mm512_set1_ps(std::numeric_limits<float>::infinity()), hi = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  uint64_t z = 0;
  alignas(64) uint32_t buf[kBuf + 16];
  size_t cnt = 0;
  for (size_t i = 0; i < j.n; i += 16) {
    const __m512 v = _mm512_loadu_ps(j.x + i);
    lo = _mm512_min_ps(v, lo);  // NaN keeps the second operand: ignored
    hi = _mm512_max_ps(v, hi);
    const __mmask16 is_neg = _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ);
    const __mmask16 nonzero = _mm512_cmp_ps_mask(v, zero, _CMP_NEQ_OQ);  // NaN: neither
    const __mmask16 is_zero = _mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ);
    const __m512 scaled = _mm512_mul_ps(_mm512_abs_ps(v), _mm512_mask_blend_ps(is_neg, psv, nsv));
    __m512i b = _mm512_min_epu32(_mm512_cvttps_epi32(scaled), lastv);
    b = _mm512_mask_add_epi32(b, is_neg, b, binsv);
    _mm512_storeu_si512(buf + cnt, _mm512_maskz_compress_epi32(nonzero, b));
    cnt += static_cast<size_t>(__builtin_popcount(_cvtmask16_u32(nonzero)));
    z += static_cast<uint64_t>(__builtin_popcount(_cvtmask16_u32(is_zero)));
    if (cnt >= kBuf) {
      count(t, t2, buf, cnt);
      cnt = 0;
    }
  }
  count(t, t2, buf, cnt);
  j.lo = _mm512_reduce_min_ps(lo);
  j.hi = _mm512_reduce_max_ps(hi);
  return finish(t, bins, j, z);
}
#pragma GCC diagnostic pop

#else

bool split_bins_avx2(SplitBins&) { return false; }
bool split_bins_avx512(SplitBins&) { return false; }

#endif

}  // namespace ptq::calib
