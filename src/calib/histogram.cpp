// Range statistics, power-of-two histograms that grow by exact pairwise merging, and views.
#include "ptq/calib/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>

#include "ptq/core/cpu_features.h"
#include "ptq/core/error.h"
#include "split_bins.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ptq::calib {

namespace {

// a += b, modulo 2^(64 * N): two's complement addition of multi-limb integers.
template <size_t N>
void add_limbs(std::array<uint64_t, N>& a, const std::array<uint64_t, N>& b) {
  uint64_t carry = 0;
  for (size_t i = 0; i < N; ++i) {
    const uint64_t s = a[i] + b[i];
    const uint64_t t = s + carry;
    carry = (s < a[i] || t < s) ? 1 : 0;
    a[i] = t;
  }
}

// Extremes of the non-NaN values (lo > hi when there are none). `v < l ? v : l` ignores NaN.
void min_max(const float* x, size_t n, float& lo, float& hi) {
  // Four independent lanes: one running min/max is a chain of dependent compares.
  constexpr float kInf = std::numeric_limits<float>::infinity();
  float l[4] = {kInf, kInf, kInf, kInf}, h[4] = {-kInf, -kInf, -kInf, -kInf};
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (size_t k = 0; k < 4; ++k) {
      const float v = x[i + k];
      l[k] = v < l[k] ? v : l[k];
      h[k] = v > h[k] ? v : h[k];
    }
  for (; i < n; ++i) {
    const float v = x[i];
    l[0] = v < l[0] ? v : l[0];
    h[0] = v > h[0] ? v : h[0];
  }
  lo = l[0], hi = h[0];
  for (size_t k = 1; k < 4; ++k) {
    lo = l[k] < lo ? l[k] : lo;
    hi = h[k] > hi ? h[k] : hi;
  }
}

#if defined(__x86_64__) || defined(__i386__)
// The same on 16 lanes (a tenth of a calibration pass ran the loop above): min_ps(v, l) is
// `v < l ? v : l` and max_ps(v, h) is `v > h ? v : h`, NaN included.
__attribute__((target("avx2"))) void min_max_avx2(const float* x, size_t n, float& lo, float& hi) {
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 l0 = inf, l1 = inf, h0 = ninf, h1 = ninf;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    l0 = _mm256_min_ps(v0, l0);
    l1 = _mm256_min_ps(v1, l1);
    h0 = _mm256_max_ps(v0, h0);
    h1 = _mm256_max_ps(v1, h1);
  }
  alignas(32) float l[8], h[8];
  _mm256_store_ps(l, _mm256_min_ps(l1, l0));
  _mm256_store_ps(h, _mm256_max_ps(h1, h0));
  min_max(x + i, n - i, lo, hi);
  for (int k = 0; k < 8; ++k) {
    lo = l[k] < lo ? l[k] : lo;
    hi = h[k] > hi ? h[k] : hi;
  }
}
#else
void min_max_avx2(const float* x, size_t n, float& lo, float& hi) { min_max(x, n, lo, hi); }
#endif

// Values binned by one call: positive, negative, exact zeros (bin 0 of the positive side).
struct BinCounts {
  uint64_t np = 0, nn = 0, zeros = 0;
};

// The scalar binning (T: float when both factors are normal floats, else double): a power-of-two
// product is exact, and where a float one would round (a subnormal result) the bin is 0 either way.
template <typename T>
void bin_scalar(const float* x, size_t n, T ps, T ns, size_t last, uint64_t* pc, uint64_t* nc, BinCounts& c) {
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    // Exact zeros (half of a post-ReLU tensor) are counted in a register: incrementing the
    // same bin back to back stalls on the store.
    if (v == 0.f) {
      ++c.zeros;
    } else if (v > 0.f) {
      const auto b = static_cast<size_t>(static_cast<int64_t>(static_cast<T>(v) * ps));
      ++pc[b < last ? b : last];
      ++c.np;
    } else if (v < 0.f) {
      const auto b = static_cast<size_t>(static_cast<int64_t>(-static_cast<T>(v) * ns));
      ++nc[b < last ? b : last];
      ++c.nn;
    }  // NaN: neither
  }
}

bool normal_float(double f) { return f == 0.0 || (f >= 0x1p-126 && f <= 0x1p127); }

}  // namespace

void ExactSum::add(float x) {
  if (std::isnan(x)) { nan_ = true; return; }
  if (std::isinf(x)) { (x > 0 ? pos_inf_ : neg_inf_) = true; return; }
  if (x == 0.f) return;
  int e;
  const float m = std::frexp(std::fabs(x), &e);  // |x| = m * 2^e, m in [0.5, 1)
  // |x| = mant * 2^(e - 24) with a 24-bit integer mant; in units of 2^-149 it is mant << shift.
  // Subnormals (e - 24 < -149) have their low mantissa bits zero, so shifting right is exact.
  auto mant = static_cast<uint64_t>(std::ldexp(m, 24));
  int shift = e - 24 + 149;
  if (shift < 0) {
    mant >>= -shift;
    shift = 0;
  }
  const size_t limb = static_cast<size_t>(shift) / 64, bit = static_cast<size_t>(shift) % 64;
  std::array<uint64_t, kLimbs> term{};
  term[limb] = mant << bit;
  if (bit > 0 && limb + 1 < kLimbs) term[limb + 1] = mant >> (64 - bit);
  if (x < 0) {  // two's complement negation of the term
    uint64_t carry = 1;
    for (uint64_t& t : term) {
      t = ~t + carry;
      carry = (carry && t == 0) ? 1 : 0;
    }
  }
  add_limbs(limbs_, term);
}

void ExactSum::merge(const ExactSum& o) {
  add_limbs(limbs_, o.limbs_);
  pos_inf_ |= o.pos_inf_;
  neg_inf_ |= o.neg_inf_;
  nan_ |= o.nan_;
}

double ExactSum::value() const {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (nan_ || (pos_inf_ && neg_inf_)) return std::numeric_limits<double>::quiet_NaN();
  if (pos_inf_) return kInf;
  if (neg_inf_) return -kInf;
  std::array<uint64_t, kLimbs> mag = limbs_;
  const bool negative = mag[kLimbs - 1] >> 63;
  if (negative) {
    uint64_t carry = 1;
    for (uint64_t& t : mag) {
      t = ~t + carry;
      carry = (carry && t == 0) ? 1 : 0;
    }
  }
  size_t top = kLimbs;
  while (top > 0 && mag[top - 1] == 0) --top;
  if (top == 0) return 0.0;
  // The highest (up to) 64 significant bits, every lower bit folded into the last one (sticky),
  // so the one rounding to double below is the correct rounding of the exact value.
  const auto bit_at = [&](size_t b) -> uint64_t { return (mag[b / 64] >> (b % 64)) & 1u; };
  const size_t msb = (top - 1) * 64 + static_cast<size_t>(63 - std::countl_zero(mag[top - 1]));
  const size_t width = std::min<size_t>(64, msb + 1);
  const size_t head_low = msb + 1 - width;  // the head's lowest bit position
  uint64_t head = 0;
  for (size_t b = msb + 1; b-- > head_low;) head = (head << 1) | bit_at(b);
  bool sticky = false;
  for (size_t b = 0; b < head_low && !sticky; ++b) sticky = bit_at(b) != 0;
  if (sticky) head |= 1u;
  const double v = std::ldexp(static_cast<double>(head), static_cast<int>(head_low) - 149);
  return negative ? -v : v;
}

std::string ExactSum::to_hex() const {
  if (nan_ || (pos_inf_ && neg_inf_)) return "nan";
  if (pos_inf_) return "inf";
  if (neg_inf_) return "-inf";
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = kLimbs; i-- > 0;)
    for (int k = 60; k >= 0; k -= 4) s += kDigits[(limbs_[i] >> k) & 0xf];
  return s;
}

ExactSum ExactSum::from_hex(const std::string& text) {
  ExactSum r;
  if (text == "nan") r.nan_ = true;
  else if (text == "inf") r.pos_inf_ = true;
  else if (text == "-inf") r.neg_inf_ = true;
  else {
    if (text.size() != kLimbs * 16) throw std::invalid_argument("an exact sum is 96 hex digits, inf, -inf or nan");
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) throw std::invalid_argument("an exact sum is 96 hex digits, inf, -inf or nan");
      const size_t limb = kLimbs - 1 - i / 16;
      r.limbs_[limb] = (r.limbs_[limb] << 4) | static_cast<uint64_t>(d);
    }
  }
  return r;
}

void RangeStats::observe(const float* x, size_t n) {
  float lo, hi;
  if (cpu_features().avx2) min_max_avx2(x, n, lo, hi);
  else min_max(x, n, lo, hi);
  observe_extremes(lo, hi);
}

void RangeStats::observe_extremes(float lo, float hi) {
  // An extreme of exactly zero is +0 whichever signed zero came first: then the result does not
  // depend on how the values were split into lanes.
  if (lo == 0.f) lo = 0.f;
  if (hi == 0.f) hi = 0.f;
  if (lo > hi) return;
  min = std::min(min, static_cast<double>(lo));
  max = std::max(max, static_cast<double>(hi));
  sum_sample_min.add(lo);
  sum_sample_max.add(hi);
  last_min = lo;
  last_max = hi;
  ++samples;
}

void RangeStats::merge(const RangeStats& o) {
  if (o.samples == 0) return;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
  sum_sample_min.merge(o.sum_sample_min);
  sum_sample_max.merge(o.sum_sample_max);
  last_min = o.last_min;
  last_max = o.last_max;
  samples += o.samples;
}

Pow2Histogram Pow2Histogram::restore(std::vector<uint64_t> counts, int exponent) {
  const size_t n = counts.size();
  if (n == 0 || (n & (n - 1)) != 0) throw std::invalid_argument("histogram bins must be a power of two");
  Pow2Histogram h(static_cast<int>(n));
  uint64_t total = 0;
  for (uint64_t c : counts) {
    if (total + c < total) throw std::invalid_argument("histogram counts overflow");
    total += c;
  }
  // The ranges calibration creates: 2^-126 (zeros only) up to 2^128 (the float maximum).
  if (total > 0 && (exponent < -126 || exponent > 128)) throw std::invalid_argument("histogram exponent out of range");
  h.counts_ = std::move(counts);
  h.total_ = total;
  if (total > 0) h.exp_ = exponent;
  return h;
}

Pow2Histogram::Pow2Histogram(int bins) : counts_(static_cast<size_t>(bins), 0) {
  PTQ_ASSERT(bins > 0 && (bins & (bins - 1)) == 0, "histogram bins must be a power of two");
}

double Pow2Histogram::range() const { return empty() ? 0.0 : std::ldexp(1.0, exp_); }

void Pow2Histogram::grow_to(float max_value) {
  if (!(max_value >= 0.f) || std::isinf(max_value)) return;
  int e;
  std::frexp(max_value, &e);  // max_value < 2^e
  if (max_value == 0.f) e = -126;
  if (exp_ == std::numeric_limits<int>::min()) {
    exp_ = e;
    return;
  }
  while (exp_ < e) {
    // Doubling the range: bin i of the new grid holds old bins 2i and 2i+1.
    const size_t half = counts_.size() / 2;
    for (size_t i = 0; i < half; ++i) counts_[i] = counts_[2 * i] + counts_[2 * i + 1];
    std::fill(counts_.begin() + static_cast<std::ptrdiff_t>(half), counts_.end(), 0);
    ++exp_;
  }
}

template <typename Bin>
void Pow2Histogram::add_binned(const float* x, size_t n, Bin value_of) {
  // The largest finite value: infinities are never binned, and must not set the range either (an
  // inf maximum left the range unset while finite values were counted: the histogram then
  // "grew" from 2^INT_MIN one doubling at a time, a hang).
  float hi = -1.f;
  for (size_t i = 0; i < n; ++i) {
    const float v = value_of(x[i]);
    hi = v > hi && !std::isinf(v) ? v : hi;
  }
  if (hi < 0.f) return;  // nothing finite to add
  grow_to(hi);
  PTQ_ASSERT(exp_ != std::numeric_limits<int>::min(), "histogram range not set");
  const int bits = std::countr_zero(static_cast<unsigned>(counts_.size()));
  // v * bins / 2^exp with a power-of-two factor: exact, so bins are order-independent. In double:
  // for tiny ranges (all zeros: 2^-126) the factor overflows float, and 0 * inf is NaN (UBSan).
  const double scale = std::ldexp(1.0, bits - exp_);
  const size_t last = counts_.size() - 1;
  for (size_t i = 0; i < n; ++i) {
    const float v = value_of(x[i]);
    if (!(v >= 0.f) || std::isinf(v)) continue;
    const size_t b = static_cast<size_t>(static_cast<double>(v) * scale);
    ++counts_[b < last ? b : last];
    ++total_;
  }
}

void Pow2Histogram::add_split(Pow2Histogram& pos, Pow2Histogram& neg, const float* x, size_t n, float min,
                              float max) {
  if (!(min <= max)) return;  // empty or all NaN
  if (!std::isfinite(min) || !std::isfinite(max)) {
    // Infinities are skipped, so the ranges must come from the finite values: the two-scan path.
    pos.add_nonnegative(x, n);
    neg.add_negated(x, n);
    return;
  }
  if (max >= 0.f) pos.grow_to(max);
  if (min < 0.f) neg.grow_to(-min);
  // Power-of-two factors (exact); in double because a tiny range (all zeros: 2^-126) overflows float.
  const int bits = std::countr_zero(static_cast<unsigned>(pos.counts_.size()));
  const double pos_scale = max >= 0.f ? std::ldexp(1.0, bits - pos.exp_) : 0.0;
  const double neg_scale = min < 0.f ? std::ldexp(1.0, bits - neg.exp_) : 0.0;
  const size_t last = pos.counts_.size() - 1;
  BinCounts c;
  if (normal_float(pos_scale) && normal_float(neg_scale)) {
    const auto ps = static_cast<float>(pos_scale), ns = static_cast<float>(neg_scale);
    // The vector paths bin whole groups of 16 or 8 and cost a pass over their scratch counts:
    // worth it from a few thousand values. The scalar loop takes the rest.
    size_t done = 0;
    if (n >= pos.counts_.size() && (split_bins_avx512_available() || split_bins_available())) {
      const bool wide = split_bins_avx512_available();
      SplitBins j;
      j.x = x, j.n = n & (wide ? ~size_t{15} : ~size_t{7}), j.ps = ps, j.ns = ns, j.last = last;
      j.pos = pos.counts_.data(), j.neg = neg.counts_.data();
      // The ranges were just grown to cover every value, so the kernel cannot refuse them.
      const bool added = wide ? split_bins_avx512(j) : split_bins_avx2(j);
      PTQ_ASSERT(added || j.n > kSplitBinsMaxValues, "vector binning refused values within the range");
      if (added) done = j.n, c = {j.np, j.nn, j.zeros};
    }
    bin_scalar(x + done, n - done, ps, ns, last, pos.counts_.data(), neg.counts_.data(), c);
  } else {
    bin_scalar(x, n, pos_scale, neg_scale, last, pos.counts_.data(), neg.counts_.data(), c);
  }
  pos.commit(c.np, c.zeros);
  neg.commit(c.nn, 0);
}

bool Pow2Histogram::add_split_within(Pow2Histogram& pos, Pow2Histogram& neg, const float* x, size_t n, float& min,
                                     float& max) {
  // Measured on AVX-512 only (calibrating mobilenetv2: the extremes in the binning loop cost less
  // than the separate pass over the tensor; with AVX2 the earlier attempt was slower).
  constexpr int kUnset = std::numeric_limits<int>::min();
  if (pos.exp_ == kUnset || n < pos.counts_.size() || !split_bins_avx512_available()) return false;
  const int bits = std::countr_zero(static_cast<unsigned>(pos.counts_.size()));
  const double pos_scale = std::ldexp(1.0, bits - pos.exp_);
  const double neg_scale = neg.exp_ == kUnset ? 0.0 : std::ldexp(1.0, bits - neg.exp_);
  if (!normal_float(pos_scale) || !normal_float(neg_scale)) return false;
  const auto ps = static_cast<float>(pos_scale), ns = static_cast<float>(neg_scale);
  const size_t last = pos.counts_.size() - 1;
  SplitBins j;
  j.x = x, j.n = n & ~size_t{15}, j.ps = ps, j.ns = ns, j.last = last;
  j.pos = pos.counts_.data(), j.neg = neg.counts_.data();
  // The tail is checked first: nothing may be added unless every value lies within the ranges.
  float tail_lo, tail_hi;
  min_max(x + j.n, n - j.n, tail_lo, tail_hi);
  if (!within_ranges(tail_lo, tail_hi, ps, ns, pos.counts_.size())) return false;
  if (!split_bins_avx512(j)) return false;
  BinCounts c{j.np, j.nn, j.zeros};
  bin_scalar(x + j.n, n - j.n, ps, ns, last, pos.counts_.data(), neg.counts_.data(), c);
  pos.commit(c.np, c.zeros);
  neg.commit(c.nn, 0);
  min = std::min(j.lo, tail_lo);
  max = std::max(j.hi, tail_hi);
  return true;
}

void Pow2Histogram::commit(uint64_t values, uint64_t zeros) {
  counts_[0] += zeros;
  total_ += values + zeros;
}

void Pow2Histogram::add_nonnegative(const float* x, size_t n) {
  add_binned(x, n, [](float a) { return a >= 0.f ? a : -1.f; });  // NaN -> -1: skipped
}

void Pow2Histogram::add_negated(const float* x, size_t n) {
  add_binned(x, n, [](float a) { return a < 0.f ? -a : -1.f; });
}

std::vector<uint64_t> Pow2Histogram::counts_at_range_of(const Pow2Histogram& other) const {
  std::vector<uint64_t> c = counts_;
  if (empty() || other.empty() || other.exp_ <= exp_) return c;
  // Past log2(bins) doublings everything sits in bin 0: stop there (ranges span up to 2^254).
  const int bits = std::countr_zero(static_cast<unsigned>(c.size()));
  const int doublings = std::min(other.exp_ - exp_, bits + 1);
  for (int e = 0; e < doublings; ++e) {
    const size_t half = c.size() / 2;
    for (size_t i = 0; i < half; ++i) c[i] = c[2 * i] + c[2 * i + 1];
    std::fill(c.begin() + static_cast<std::ptrdiff_t>(half), c.end(), 0);
  }
  return c;
}

void Pow2Histogram::merge(const Pow2Histogram& o) {
  PTQ_ASSERT(o.counts_.size() == counts_.size(), "merging histograms of different bin counts");
  constexpr int kUnset = std::numeric_limits<int>::min();
  if (o.exp_ == kUnset) return;
  // Bring both to the larger range by pairwise bin merging (what grow_to does), then add.
  const auto coarsen = [](std::vector<uint64_t>& c, int steps) {
    for (int s = 0; s < steps; ++s) {
      const size_t half = c.size() / 2;
      for (size_t i = 0; i < half; ++i) c[i] = c[2 * i] + c[2 * i + 1];
      std::fill(c.begin() + static_cast<std::ptrdiff_t>(half), c.end(), 0);
    }
  };
  if (exp_ == kUnset) {
    exp_ = o.exp_;
  } else if (exp_ < o.exp_) {
    coarsen(counts_, std::min(o.exp_ - exp_, 64));
    exp_ = o.exp_;
  }
  std::vector<uint64_t> c = o.counts_;
  coarsen(c, std::min(exp_ - o.exp_, 64));
  for (size_t i = 0; i < c.size(); ++i) counts_[i] += c[i];
  total_ += o.total_;
}

Histogram::Histogram(double lo, double hi, std::vector<uint64_t> counts)
    : lo_(lo), hi_(hi), counts_(std::move(counts)) {
  PTQ_ASSERT(!counts_.empty() && hi >= lo);
  width_ = (hi_ - lo_) / static_cast<double>(counts_.size());
}

uint64_t Histogram::total() const { return std::accumulate(counts_.begin(), counts_.end(), uint64_t{0}); }

}  // namespace ptq::calib
