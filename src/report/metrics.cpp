// Error statistics (SQNR, cosine, abs errors) and top-k selection.
#include "ptq/report/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>

#include "ptq/core/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include "ptq/core/error.h"

namespace ptq::report {

namespace {

// Sums in blocks: each block of kBlock elements per lane in float vectors, then added to per-lane
// double totals, lanes combined in a fixed order at the end. Doubles all the way made this 9 % of
// a mobilenetv2 report; a block's float partial sums lose nothing the report shows. The result
// depends only on the data and the CPU's vector unit (lane count, and on AVX-512 the fused
// multiply-adds the compiler makes of the sums), never on threads or batching.
typedef float v4f __attribute__((vector_size(16)));
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
template <typename V>
using IntsOf = std::conditional_t<sizeof(V) == 16, v4i, std::conditional_t<sizeof(V) == 32, v8i, v16i>>;
constexpr size_t kBlock = 32;

// The test side, element i or a vector of them from i, as floats.
struct Floats {
  const float* y;
  float operator()(size_t i) const { return y[i]; }
  template <typename V>
  [[gnu::always_inline]] void load(size_t i, V& v) const {  // by reference: no vector ABI
    std::memcpy(&v, y + i, sizeof(V));
  }
};

// Codes dequantized the way DequantizeLinear does it: (q - zero_point) * scale in float, so both
// forms of the same values give bit-identical sums.
template <typename Q>
struct Codes {
  const Q* q;
  int32_t zero;
  float scale;
  float operator()(size_t i) const { return static_cast<float>(int32_t{q[i]} - zero) * scale; }
  template <typename V>
  [[gnu::always_inline]] void load(size_t i, V& v) const {
    constexpr int L = sizeof(V) / sizeof(float);
    IntsOf<V> c;
    for (int l = 0; l < L; ++l) c[l] = q[i + l];
    v = __builtin_convertvector(c - zero, V) * scale;
  }
};

template <typename V, typename Test>
[[gnu::always_inline]] inline ErrorStats accumulate(const float* x, size_t n, Test test) {
  constexpr int L = sizeof(V) / sizeof(float);
  double tot[5][L] = {};  // signal, noise, dot, norm_b, sum_abs per lane
  V mx = {};
  const V zero = {};
  const size_t body = n - n % L;
  for (size_t i0 = 0; i0 < body;) {
    const size_t end = std::min(body, i0 + kBlock * L);
    V s = {}, nz = {}, dt = {}, nb = {}, sa = {};
    for (; i0 < end; i0 += L) {
      V p;
      std::memcpy(&p, x + i0, sizeof(V));
      V q;
      test.load(i0, q);
      const V d = p - q;
      const V ad = d < zero ? -d : d;
      s += p * p;
      nz += d * d;
      dt += p * q;
      nb += q * q;
      sa += ad;
      mx = mx < ad ? ad : mx;
    }
    for (int l = 0; l < L; ++l) {
      tot[0][l] += s[l];
      tot[1][l] += nz[l];
      tot[2][l] += dt[l];
      tot[3][l] += nb[l];
      tot[4][l] += sa[l];
    }
  }
  ErrorStats r;
  r.count = n;
  for (int l = 0; l < L; ++l) {
    r.signal += tot[0][l];
    r.noise += tot[1][l];
    r.dot += tot[2][l];
    r.norm_b += tot[3][l];
    r.sum_abs += tot[4][l];
    r.max_abs = std::max(r.max_abs, static_cast<double>(mx[l]));
  }
  for (size_t i = body; i < n; ++i) {  // the tail, in double
    const double p = x[i], q = test(i), d = p - q, ad = std::fabs(d);
    r.signal += p * p;
    r.noise += d * d;
    r.dot += p * q;
    r.norm_b += q * q;
    r.sum_abs += ad;
    r.max_abs = std::max(r.max_abs, ad);
  }
  return r;
}

template <typename Test>
ErrorStats accumulate_generic(const float* x, size_t n, Test test) { return accumulate<v4f>(x, n, test); }

#if defined(__x86_64__) || defined(__i386__)
// Eight lanes in one AVX register (no FMA: the products and sums stay separately rounded).
template <typename Test>
__attribute__((target("avx2"))) ErrorStats accumulate_avx2(const float* x, size_t n, Test test) {
  return accumulate<v8f>(x, n, test);
}

// Sixteen lanes where AVX-512 is there: the report's per-layer comparison reads every probed
// activation of every evaluated sample, and on 8 lanes it was 9 % of a mobilenetv2 command's CPU.
template <typename Test>
__attribute__((target("avx512f"))) ErrorStats accumulate_avx512(const float* x, size_t n, Test test) {
  return accumulate<v16f>(x, n, test);
}

bool has_avx2() { return cpu_features().avx2; }
bool has_avx512() { return cpu_features().avx512; }
#endif

}  // namespace

template <typename Test>
void ErrorStats::add_with(const float* x, size_t n, Test test) {
#if defined(__x86_64__) || defined(__i386__)
  merge(has_avx512()  ? accumulate_avx512(x, n, test)
        : has_avx2() ? accumulate_avx2(x, n, test)
                     : accumulate_generic(x, n, test));
#else
  merge(accumulate_generic(x, n, test));
#endif
}

void ErrorStats::add(const Tensor& a, const Tensor& b) {
  PTQ_CHECK(a.dtype() == DType::kFloat && b.dtype() == DType::kFloat, IoError,
            "only float32 tensors are compared");
  PTQ_CHECK(a.numel() == b.numel(), IoError, "tensors to compare have ", a.numel(), " and ", b.numel(),
            " elements");
  add_with(a.data<float>(), a.numel(), Floats{b.data<float>()});
}

void ErrorStats::add_codes(const Tensor& a, const Tensor& codes, int32_t zero_point, float scale) {
  PTQ_CHECK(a.dtype() == DType::kFloat, IoError, "only float32 tensors are compared");
  PTQ_CHECK(codes.dtype() == DType::kUint8 || codes.dtype() == DType::kInt8, IoError,
            "codes to compare must be uint8 or int8");
  PTQ_CHECK(a.numel() == codes.numel(), IoError, "tensors to compare have ", a.numel(), " and ",
            codes.numel(), " elements");
  if (codes.dtype() == DType::kUint8)
    add_with(a.data<float>(), a.numel(), Codes<uint8_t>{codes.data<uint8_t>(), zero_point, scale});
  else
    add_with(a.data<float>(), a.numel(), Codes<int8_t>{codes.data<int8_t>(), zero_point, scale});
}

void ErrorStats::merge(const ErrorStats& o) {
  signal += o.signal;
  noise += o.noise;
  dot += o.dot;
  norm_b += o.norm_b;
  sum_abs += o.sum_abs;
  max_abs = std::max(max_abs, o.max_abs);
  count += o.count;
}

std::optional<double> ErrorStats::sqnr_db() const {
  if (noise <= 0) return std::nullopt;
  if (signal <= 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

double ErrorStats::cosine() const {
  if (signal <= 0 && norm_b <= 0) return 1.0;
  if (signal <= 0 || norm_b <= 0) return 0.0;
  return dot / (std::sqrt(signal) * std::sqrt(norm_b));
}

ValueHistogram ValueHistogram::for_range(double clip_lo, double clip_hi, size_t inside) {
  ValueHistogram h;
  inside = std::max<size_t>(inside / 4 * 4, 4);
  const size_t margin = inside / 4;
  const double w = std::max(clip_hi - clip_lo, 1e-12) / static_cast<double>(inside);
  h.clip_lo = clip_lo;
  h.clip_hi = clip_hi;
  h.lo = clip_lo - w * static_cast<double>(margin);
  h.hi = clip_hi + w * static_cast<double>(margin);
  h.bins.assign(inside + 2 * margin, 0);
  h.first_inside = margin;
  h.end_inside = margin + inside;
  return h;
}

namespace {

// What one histogram pass sees, with the bounds copied out of the histogram (reading them
// through `this` in the loop made the compiler reload them after every count).
struct BinGeometry {
  double lo, hi, clip_lo, clip_hi, scale;
  size_t last, first_inside, end_inside;
};
struct BinTotals {
  uint64_t below = 0, above = 0, clipped = 0, nonfinite = 0;
};

// Bins x[i] for i in [i0, n) into counts[(i % kCopies)·bins + k]: values below lo, above hi or
// not finite are counted apart; a finite value outside the clip range counts as clipped and lands
// in a bar outside it, whatever the rounding of its index.
constexpr size_t kCopies = 4;
void bin_scalar(const float* x, size_t i0, size_t n, const BinGeometry& g, uint64_t* counts, BinTotals& t) {
  const size_t nb = g.last + 1;
  for (size_t i = i0; i < n; ++i) {
    const double v = x[i];
    if (!std::isfinite(v)) {
      ++t.nonfinite;
      continue;
    }
    const bool is_below = v < g.lo, is_above = v > g.hi, below_clip = v < g.clip_lo, above_clip = v > g.clip_hi;
    // The index clamped to [0, last] before the cast (the cast of an in-range value is then
    // min(last, cast), and an out-of-range value's index is not used), then to the bars on its
    // side of the clip range.
    const double k_lo = below_clip ? 0.0 : static_cast<double>(above_clip ? g.end_inside : g.first_inside);
    const double k_hi = static_cast<double>(below_clip ? g.first_inside - 1 : above_clip ? g.last : g.end_inside - 1);
    const double r = std::min(std::max((v - g.lo) * g.scale, 0.0), static_cast<double>(g.last));
    // clamp(floor(r), a, b) = floor(clamp(r, a, b)) for integers a <= b.
    const size_t k = static_cast<size_t>(std::min(std::max(r, k_lo), k_hi));
    counts[(i % kCopies) * nb + k] += !(is_below || is_above);
    t.below += is_below;
    t.above += is_above;
    t.clipped += below_clip || above_clip;
  }
}

#if defined(__x86_64__) || defined(__i386__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's intrinsics pass "undefined" vectors
// bin_scalar's arithmetic on 8 doubles at a time (the same compares, clamps and truncation, so
// the same bins); the counts are still added one by one. Returns where it stopped.
__attribute__((target("avx512f,popcnt"))) size_t bin_avx512(const float* x, size_t n, const BinGeometry& g,
                                                            uint64_t* counts, BinTotals& t) {
  const size_t nb = g.last + 1;
  const __m512d lo = _mm512_set1_pd(g.lo), hi = _mm512_set1_pd(g.hi), clo = _mm512_set1_pd(g.clip_lo);
  const __m512d chi = _mm512_set1_pd(g.clip_hi), scale = _mm512_set1_pd(g.scale), zero = _mm512_setzero_pd();
  const __m512d last = _mm512_set1_pd(static_cast<double>(g.last)), inf = _mm512_set1_pd(HUGE_VAL);
  const __m512d first_in = _mm512_set1_pd(static_cast<double>(g.first_inside));
  const __m512d end_in = _mm512_set1_pd(static_cast<double>(g.end_inside));
  const __m512d first_in_m1 = _mm512_set1_pd(static_cast<double>(g.first_inside - 1));
  const __m512d end_in_m1 = _mm512_set1_pd(static_cast<double>(g.end_inside - 1));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
    const __mmask8 finite = _mm512_cmp_pd_mask(_mm512_abs_pd(v), inf, _CMP_LT_OQ);
    const __mmask8 below = _mm512_mask_cmp_pd_mask(finite, v, lo, _CMP_LT_OQ);
    const __mmask8 above = _mm512_mask_cmp_pd_mask(finite, v, hi, _CMP_GT_OQ);
    const __mmask8 bclip = _mm512_mask_cmp_pd_mask(finite, v, clo, _CMP_LT_OQ);
    const __mmask8 aclip = _mm512_mask_cmp_pd_mask(finite, v, chi, _CMP_GT_OQ);
    const __m512d k_lo = _mm512_mask_blend_pd(bclip, _mm512_mask_blend_pd(aclip, first_in, end_in), zero);
    const __m512d k_hi = _mm512_mask_blend_pd(bclip, _mm512_mask_blend_pd(aclip, end_in_m1, last), first_in_m1);
    // max_pd(r, 0) gives 0 for a NaN r (non-finite lanes: their index is not used).
    __m512d r = _mm512_min_pd(_mm512_max_pd(_mm512_mul_pd(_mm512_sub_pd(v, lo), scale), zero), last);
    r = _mm512_min_pd(_mm512_max_pd(r, k_lo), k_hi);
    alignas(32) int32_t k[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(k), _mm512_cvttpd_epi32(r));
    const unsigned inside = finite & ~(below | above);
    for (unsigned l = 0; l < 8; ++l) counts[((i + l) % kCopies) * nb + static_cast<size_t>(k[l])] += (inside >> l) & 1u;
    t.below += static_cast<uint64_t>(__builtin_popcount(below));
    t.above += static_cast<uint64_t>(__builtin_popcount(above));
    t.clipped += static_cast<uint64_t>(__builtin_popcount(bclip | aclip));
    t.nonfinite += static_cast<uint64_t>(8 - __builtin_popcount(finite));
  }
  return i;
}
#pragma GCC diagnostic pop
#endif

}  // namespace

void ValueHistogram::add(const Tensor& a) {
  PTQ_CHECK(a.dtype() == DType::kFloat, IoError, "only float32 tensors are binned");
  // Compares and selects instead of branches on each value, into four interleaved copies of the
  // counts (runs of equal values, the zeros after a ReLU, made each count wait for the previous
  // one's store): the report bins 32 samples of every probed tensor, and the branchy loop was
  // 3-4 % of a mobilenetv2 command. Integer counts: the copies add up to the same bins.
  const BinGeometry g{lo, hi, clip_lo, clip_hi, static_cast<double>(bins.size()) / (hi - lo),
                      bins.size() - 1, first_inside, end_inside};
  thread_local std::vector<uint64_t> counts;
  counts.assign(kCopies * bins.size(), 0);
  BinTotals t;
  const float* x = a.data<float>();
  size_t i = 0;
#if defined(__x86_64__) || defined(__i386__)
  if (has_avx512()) i = bin_avx512(x, a.numel(), g, counts.data(), t);
#endif
  bin_scalar(x, i, a.numel(), g, counts.data(), t);
  for (size_t c = 0; c < kCopies; ++c)
    for (size_t k = 0; k < bins.size(); ++k) bins[k] += counts[c * bins.size() + k];
  below += t.below;
  above += t.above;
  clipped += t.clipped;
  nonfinite += t.nonfinite;
}

void ValueHistogram::merge(const ValueHistogram& o) {
  PTQ_CHECK(o.bins.size() == bins.size() && o.lo == lo && o.hi == hi, IoError, "histograms of different ranges");
  for (size_t i = 0; i < bins.size(); ++i) bins[i] += o.bins[i];
  below += o.below;
  above += o.above;
  nonfinite += o.nonfinite;
  clipped += o.clipped;
}

uint64_t ValueHistogram::total() const {
  return std::accumulate(bins.begin(), bins.end(), below + above);
}

double ValueHistogram::clipped_fraction() const {
  const uint64_t n = total();
  return n ? static_cast<double>(clipped) / static_cast<double>(n) : 0.0;
}

double sqnr_or_inf(const std::optional<double>& db) {
  return db ? *db : std::numeric_limits<double>::infinity();
}

std::vector<size_t> top_k(const float* row, size_t n, size_t k) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), size_t{0});
  k = std::min(k, n);
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), [&](size_t i, size_t j) {
    if (row[i] != row[j]) return row[i] > row[j];
    return i < j;
  });
  idx.resize(k);
  return idx;
}

size_t classifier_classes(const std::vector<int64_t>& dims) {
  if (dims.size() < 2) return 0;
  size_t classes = 0;
  for (size_t i = 1; i < dims.size(); ++i) {
    if (dims[i] > 1) {
      if (classes) return 0;
      classes = static_cast<size_t>(dims[i]);
    }
  }
  return classes;
}

}  // namespace ptq::report
