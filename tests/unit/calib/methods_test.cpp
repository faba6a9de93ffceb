// Calibrators on synthetic tensors with known answers (minmax exact, percentile vs numpy's rule,
// entropy vs a plain reference written here, mse vs brute force).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "ptq/calib/methods.h"
#include "split_bins.h"  // src/calib: the vector binning kernels, each tested on its own

namespace ptq::calib {
namespace {

std::vector<float> uniform(size_t n, float lo, float hi) {
  std::mt19937 rng(2345);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<float> gaussian_with_outliers(size_t n) {
  std::mt19937 rng(7767517);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  v[17] = 40.f;  // a few huge outliers, as in residual sums
  v[99] = -25.f;
  v[1234] = 33.f;
  return v;
}

std::vector<float> half_normal(size_t n) {
  std::vector<float> v = gaussian_with_outliers(n);
  for (float& x : v) x = std::max(x, 0.f);  // post-ReLU: half the values are exactly zero
  return v;
}

// Streams `samples` samples of the data through an Observation, as the driver does.
Range calibrate(const char* name, const std::vector<float>& data, const CalibParams& p,
                size_t samples = 4) {
  const Method* m = find_method(name);
  EXPECT_NE(m, nullptr) << name;
  Observation obs(histogram_bins(p));
  const size_t chunk = data.size() / samples;
  const bool histograms = m->histogram(p) != HistogramKind::kNone;
  for (size_t s = 0; s < samples; ++s) obs.observe(data.data() + s * chunk, chunk, histograms);
  return m->compute(obs, p);
}

// Bin width of the power-of-two histogram holding values up to `absmax`.
double bin_width(double absmax, const CalibParams& p) {
  int e;
  std::frexp(absmax, &e);
  return std::ldexp(1.0, e) / histogram_bins(p);
}

// numpy.percentile with linear interpolation.
double np_percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  const double frac = pos - static_cast<double>(i);
  return i + 1 < v.size() ? v[i] + frac * (v[i + 1] - v[i]) : v[i];
}

double quant_mse(const std::vector<float>& data, Range r, const CalibParams& p) {
  const auto qp = quant::compute_scale_zp(r.min, r.max, p.activation_type, p.activation_symmetry);
  const auto ir = quant::full_range(p.activation_type);
  double s = 0;
  for (float x : data) {
    const double e = quant::fake_quantize(x, qp, ir) - x;
    s += e * e;
  }
  return s / static_cast<double>(data.size());
}

// Plain TensorRT/pytorch-quantization entropy calibration straight from the raw values, on the
// binning ptq documents: bins of width 2^e / 4096 (2^e > max|x|) up to the last non-empty one.
double reference_entropy_amax(const std::vector<float>& data, int nq) {
  double amax = 0;
  for (float x : data) amax = std::max(amax, static_cast<double>(std::fabs(x)));
  int e;
  std::frexp(amax, &e);
  const double width = std::ldexp(1.0, e) / 4096;
  const int bins = static_cast<int>(amax / width) + 1;
  std::vector<double> hist(static_cast<size_t>(bins), 0.0);
  for (float x : data) hist[static_cast<size_t>(std::fabs(x) / width)] += 1;
  hist[0] = hist[1];
  double best_kl = std::numeric_limits<double>::infinity();
  int best = bins;
  for (int i = nq; i <= bins; ++i) {
    std::vector<double> p(hist.begin(), hist.begin() + i);
    for (int j = i; j < bins; ++j) p[static_cast<size_t>(i - 1)] += hist[static_cast<size_t>(j)];
    // Digitize bins [0, i) into nq groups with floating-point edges (np.linspace + digitize).
    std::vector<double> group_sum(static_cast<size_t>(nq), 0), group_nonzero(static_cast<size_t>(nq), 0);
    std::vector<int> group(static_cast<size_t>(i));
    for (int j = 0; j < i; ++j) {
      int g = static_cast<int>(std::floor(static_cast<double>(j) * nq / i));
      group[static_cast<size_t>(j)] = std::min(g, nq - 1);
      if (hist[static_cast<size_t>(j)] > 0) {
        group_sum[static_cast<size_t>(group[static_cast<size_t>(j)])] += hist[static_cast<size_t>(j)];
        group_nonzero[static_cast<size_t>(group[static_cast<size_t>(j)])] += 1;
      }
    }
    std::vector<double> q(static_cast<size_t>(i), 0);
    for (int j = 0; j < i; ++j)
      if (hist[static_cast<size_t>(j)] > 0)
        q[static_cast<size_t>(j)] = group_sum[static_cast<size_t>(group[static_cast<size_t>(j)])] /
                                    group_nonzero[static_cast<size_t>(group[static_cast<size_t>(j)])];
    double ps = 0, qs = 0;
    for (int j = 0; j < i; ++j) {
      ps += p[static_cast<size_t>(j)];
      qs += q[static_cast<size_t>(j)];
    }
    double kl = 0;
    for (int j = 0; j < i && std::isfinite(kl); ++j) {
      if (p[static_cast<size_t>(j)] == 0) continue;
      if (q[static_cast<size_t>(j)] == 0) kl = std::numeric_limits<double>::infinity();
      else kl += p[static_cast<size_t>(j)] / ps * std::log((p[static_cast<size_t>(j)] / ps) / (q[static_cast<size_t>(j)] / qs));
    }
    if (kl <= best_kl) {
      best_kl = kl;
      best = i;
    }
  }
  return width * best;
}

}  // namespace

TEST(Methods, RegistryListsEveryMethodWithADescription) {
  EXPECT_EQ(method_names(), "minmax, percentile, entropy, mse");
  for (const Method& m : methods()) EXPECT_GT(std::string(m.description).size(), 10u) << m.name;
  EXPECT_EQ(find_method("nope"), nullptr);
}

TEST(Methods, MinMaxIsExact) {
  const auto data = uniform(10000, -1.5f, 3.25f);
  const Range r = calibrate("minmax", data, {});
  EXPECT_EQ(r.min, *std::min_element(data.begin(), data.end()));
  EXPECT_EQ(r.max, *std::max_element(data.begin(), data.end()));
  const auto g = gaussian_with_outliers(20000);
  EXPECT_EQ(calibrate("minmax", g, {}).max, 40.f);
  EXPECT_EQ(calibrate("minmax", g, {}).min, -25.f);
}

TEST(Methods, MinMaxAverageIsTheMeanOfPerSampleExtremes) {
  std::vector<float> data = {0, 1, 2, 3, -4, 10, 0, 0};
  CalibParams p;
  p.moving_average = true;
  const Range r = calibrate("minmax", data, p, 2);  // samples {0,1,2,3} and {-4,10,0,0}
  EXPECT_FLOAT_EQ(r.min, -2.f);
  EXPECT_FLOAT_EQ(r.max, 6.5f);
}

TEST(Methods, PercentileWithinOneBinOfNumpy) {
  for (const auto& data : {uniform(100000, -1.f, 3.f), gaussian_with_outliers(100000), half_normal(100000)}) {
    for (double pct : {99.0, 99.9, 99.99}) {
      CalibParams p;
      p.percentile = pct;
      std::vector<double> abs;
      double absmax = 0;
      for (float x : data) {
        abs.push_back(std::fabs(x));
        absmax = std::max(absmax, abs.back());
      }
      const Range r = calibrate("percentile", data, p);
      const double bin = bin_width(absmax, p);
      EXPECT_NEAR(r.max, std::min<double>(np_percentile(abs, pct), *std::max_element(data.begin(), data.end())), bin)
          << "percentile " << pct;
      // Asymmetric variant: each tail separately on the signed values.
      p.symmetric = false;
      std::vector<double> signed_values(data.begin(), data.end());
      const Range a = calibrate("percentile", data, p);
      const double sbin = bin_width(absmax, p);
      EXPECT_NEAR(a.max, np_percentile(signed_values, 100 - (100 - pct) / 2), sbin);
      EXPECT_NEAR(a.min, np_percentile(signed_values, (100 - pct) / 2), sbin);
    }
  }
}

TEST(Methods, EntropyWithinTwoPercentOfPlainReference) {
  for (const auto& data : {gaussian_with_outliers(200000), half_normal(200000), uniform(200000, -2.f, 2.f)}) {
    CalibParams p;
    const Range r = calibrate("entropy", data, p);
    ASSERT_EQ(histogram_bins(p), 4096);
    const double ref = reference_entropy_amax(data, p.num_quantized_bins);
    EXPECT_NEAR(r.max, std::min<double>(ref, *std::max_element(data.begin(), data.end())), 0.02 * ref);
  }
  // Outliers are clipped: the threshold sits far below the max of 40.
  EXPECT_LT(calibrate("entropy", gaussian_with_outliers(200000), {}).max, 10.f);
  // Post-ReLU: the range starts at 0.
  EXPECT_EQ(calibrate("entropy", half_normal(200000), {}).min, 0.f);
}

// The exhaustive rule entropy_threshold_bins replaced: every candidate's KL straight from its
// definition, the largest i of minimal KL. The screened search must pick the same bin.
size_t exhaustive_entropy_bins(const std::vector<uint64_t>& counts, size_t nq, size_t start) {
  const size_t n = counts.size();
  size_t best = n;
  double best_kl = std::numeric_limits<double>::infinity();
  for (size_t i = std::max(nq, start); i <= n; ++i) {
    uint64_t tail = 0;
    for (size_t j = i; j < n; ++j) tail += counts[j];
    std::vector<double> q(i, 0.0);
    for (size_t g = 0; g < nq; ++g) {
      const size_t begin = (g * i + nq - 1) / nq, end = ((g + 1) * i + nq - 1) / nq;
      double sum = 0;
      size_t nonzero = 0;
      for (size_t j = begin; j < end; ++j) {
        sum += static_cast<double>(counts[j]);
        nonzero += counts[j] != 0;
      }
      for (size_t j = begin; j < end; ++j)
        if (counts[j] != 0) q[j] = sum / static_cast<double>(nonzero);
    }
    double p_total = static_cast<double>(tail), q_total = 0;
    for (size_t j = 0; j < i; ++j) {
      p_total += static_cast<double>(counts[j]);
      q_total += q[j];
    }
    double kl = p_total <= 0 || q_total <= 0 ? std::numeric_limits<double>::infinity() : 0.0;
    for (size_t j = 0; j < i && std::isfinite(kl); ++j) {
      double p = static_cast<double>(counts[j]) + (j + 1 == i ? static_cast<double>(tail) : 0.0);
      if (p == 0) continue;
      if (q[j] == 0) {
        kl = std::numeric_limits<double>::infinity();
        break;
      }
      p /= p_total;
      kl += p * std::log(p / (q[j] / q_total));
    }
    if (kl <= best_kl) {
      best_kl = kl;
      best = i;
    }
  }
  return best;
}

TEST(Methods, EntropySearchPicksWhatTheExhaustiveRulePicks) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 60; ++trial) {
    const size_t n = trial % 3 == 0 ? 2048 : 512 + static_cast<size_t>(rng() % 1024);
    std::vector<uint64_t> counts(n, 0);
    const double decay = 2.0 + static_cast<double>(rng() % 200);
    for (size_t j = 0; j < n; ++j) {
      // Decaying bulks with gaps (sparse tails, empty bins between), spikes, flat stretches.
      const double mean = 1e5 * std::exp(-static_cast<double>(j) / decay);
      counts[j] = rng() % 5 == 0 ? 0 : static_cast<uint64_t>(mean * (0.5 + (rng() % 1000) / 1000.0));
      if (trial % 4 == 1 && j > n / 2) counts[j] = rng() % 3;            // a long sparse tail
      if (trial % 4 == 2 && j % 7 == 0) counts[j] = 42;                 // a periodic spike
    }
    if (trial % 5 == 3) std::fill(counts.begin(), counts.end(), 10);   // flat: ties everywhere
    const size_t start = trial % 2 ? 0 : n / 2;
    EXPECT_EQ(entropy_threshold_bins(counts, 128, start), exhaustive_entropy_bins(counts, 128, start))
        << "trial " << trial;
  }
}

TEST(Methods, EntropyNeverClipsMoreThanATenthOfAPercent) {
  // A strictly positive tensor (a LayerNorm variance, as in PP-OCRv4) whose minimum lies above
  // the smallest candidate: every candidate below the data folds it all into one bin, KL 0, and
  // the plain search returns a threshold at the minimum. (The sparse post-ReLU failure is covered
  // on real data by tests/cli/quantize_test.cpp.)
  std::mt19937 rng(99);
  std::exponential_distribution<float> expo(4.f);
  std::vector<float> positive(200000);
  for (float& v : positive) v = 0.237f + expo(rng);
  for (const auto* data : {&positive}) {
    std::vector<double> sorted(data->begin(), data->end());
    const double p999 = np_percentile(sorted, 99.9);
    const Range r = calibrate("entropy", *data, {});
    EXPECT_GE(r.max, p999 - bin_width(sorted.back(), {}));
    EXPECT_LT(r.min, r.max);
  }
}

TEST(Methods, EntropyAsymmetricVariantClipsEachSide) {
  CalibParams p;
  p.symmetric = false;
  const Range r = calibrate("entropy", gaussian_with_outliers(200000), p);
  EXPECT_LT(r.max, 10.f);
  EXPECT_GT(r.min, -10.f);
  EXPECT_LT(r.min, -2.f);
}

TEST(Methods, MseWithinOnePercentOfBruteForce) {
  for (const bool symmetric : {false, true}) {
    CalibParams p;
    if (symmetric) {
      p.activation_type = DType::kInt8;
      p.activation_symmetry = quant::Symmetry::kSymmetric;
    }
    for (const auto& data : {gaussian_with_outliers(40000), half_normal(40000), uniform(40000, -1.f, 3.f)}) {
      const Range r = calibrate("mse", data, p);
      const double got = quant_mse(data, r, p);
      const float lo = *std::min_element(data.begin(), data.end());
      const float hi = *std::max_element(data.begin(), data.end());
      double best = std::numeric_limits<double>::infinity();
      constexpr int kSteps = 200;
      if (symmetric) {
        const float amax = std::max(-lo, hi);
        for (int k = 1; k <= kSteps; ++k) {
          const float t = amax * static_cast<float>(k) / kSteps;
          best = std::min(best, quant_mse(data, {-t, t}, p));
        }
      } else {
        for (int i = 0; i <= 60; ++i)
          for (int j = 1; j <= 60; ++j)
            best = std::min(best, quant_mse(data, {lo * static_cast<float>(i) / 60, hi * static_cast<float>(j) / 60}, p));
      }
      EXPECT_LE(got, best * 1.01) << (symmetric ? "symmetric" : "asymmetric");
    }
  }
}

TEST(Methods, ConstantAndZeroTensors) {
  const std::vector<float> zeros(1000, 0.f), constant(1000, 2.5f);
  for (const Method& m : methods()) {
    SCOPED_TRACE(m.name);
    const Range z = calibrate(m.name, zeros, {});
    EXPECT_EQ(z.min, 0.f);
    EXPECT_EQ(z.max, 0.f);
    const Range c = calibrate(m.name, constant, {});
    EXPECT_LE(c.max, 2.5f);
    EXPECT_TRUE(std::isfinite(c.min) && std::isfinite(c.max));
  }
  EXPECT_EQ(calibrate("minmax", constant, {}).max, 2.5f);
}

TEST(Histogram, OnePassSplitEqualsTheTwoScans) {
  std::vector<float> data = gaussian_with_outliers(50000);
  data[5] = std::nanf("");
  data[6] = 0.f;
  Pow2Histogram pos(4096), neg(4096), pos2(4096), neg2(4096);
  for (size_t s = 0; s < 5; ++s) {
    const float* x = data.data() + s * 10000;
    RangeStats r;
    r.observe(x, 10000);
    Pow2Histogram::add_split(pos, neg, x, 10000, r.last_min, r.last_max);
    pos2.add_nonnegative(x, 10000);
    neg2.add_negated(x, 10000);
  }
  EXPECT_EQ(pos.counts(), pos2.counts());
  EXPECT_EQ(neg.counts(), neg2.counts());
  EXPECT_EQ(pos.total() + neg.total(), 49999u);
}

// Long tensors take the vector binning (split_bins.cpp): lengths that leave a tail, signed zeros,
// subnormals, NaN, values on bin edges and the range maximum itself must bin as the scalar scans.
TEST(Histogram, VectorBinningEqualsTheTwoScansForAnyLengthAndSpecialValues) {
  for (size_t n : {4096u, 4103u, 20001u}) {
    std::vector<float> x = gaussian_with_outliers(n);
    for (size_t i = 0; i < n; i += 97) x[i] = std::ldexp(static_cast<float>(i % 64), -6);  // bin edges
    x[1] = -0.f;
    x[2] = 0.f;
    x[3] = std::numeric_limits<float>::denorm_min();
    x[4] = -std::numeric_limits<float>::denorm_min();
    x[8] = std::nanf("");
    x[n - 1] = 40.f;  // the maximum lands in the last bin
    x[n - 2] = -std::nanf("");
    Pow2Histogram pos(4096), neg(4096), pos2(4096), neg2(4096);
    RangeStats r;
    r.observe(x.data(), n);
    Pow2Histogram::add_split(pos, neg, x.data(), n, r.last_min, r.last_max);
    pos2.add_nonnegative(x.data(), n);
    neg2.add_negated(x.data(), n);
    EXPECT_EQ(pos.counts(), pos2.counts()) << n;
    EXPECT_EQ(neg.counts(), neg2.counts()) << n;
    EXPECT_EQ(pos.total(), pos2.total()) << n;
    EXPECT_EQ(neg.total(), neg2.total()) << n;
    EXPECT_EQ(pos.total() + neg.total(), n - 2) << n;
  }
}

// Each vector binning kernel this CPU runs (add_split uses only the widest) against the plain
// loop it replaces, called in a row on different data and bin counts (its scratch counts must be
// clear for the next call), and refusing, with nothing added, values outside the ranges.
TEST(Histogram, EachVectorKernelBinsAsThePlainLoop) {
  std::vector<std::pair<const char*, bool (*)(SplitBins&)>> kernels;
  if (split_bins_available()) kernels.emplace_back("avx2", &split_bins_avx2);
  if (split_bins_avx512_available()) kernels.emplace_back("avx512", &split_bins_avx512);
  if (kernels.empty()) GTEST_SKIP() << "this CPU has no AVX2";
  for (const auto& [name, kernel] : kernels)
    for (size_t bins : {2048u, 256u, 2048u})
      for (size_t n : {size_t{4096}, size_t{20000}}) {
        std::vector<float> x = gaussian_with_outliers(n + bins);  // a different tensor on each call
        x.erase(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(bins));
        for (size_t i = 0; i < n; i += 7) x[i] = 0.f;
        x[1] = -0.f;
        x[3] = std::numeric_limits<float>::denorm_min();
        x[5] = std::nanf("");
        float lo = 0.f, hi = 0.f;
        for (float v : x)
          if (!std::isnan(v)) lo = std::min(lo, v), hi = std::max(hi, v);
        // Ranges that just cover the values: 2^e > max|x|.
        int e_pos, e_neg;
        std::frexp(hi, &e_pos);
        std::frexp(-lo, &e_neg);
        const int bits = std::countr_zero(static_cast<unsigned>(bins));
        const float ps = std::ldexp(1.f, bits - e_pos), ns = std::ldexp(1.f, bits - e_neg);
        const size_t last = bins - 1;
        std::vector<uint64_t> pos(bins, 1), neg(bins, 2), want_pos(bins, 1), want_neg(bins, 2);
        uint64_t want_np = 0, want_nn = 0, want_zeros = 0;
        for (float v : x) {
          if (v == 0.f) ++want_zeros;
          else if (v > 0.f) ++want_pos[static_cast<size_t>(static_cast<double>(v) * ps)], ++want_np;
          else if (v < 0.f) ++want_neg[static_cast<size_t>(-static_cast<double>(v) * ns)], ++want_nn;
        }
        SplitBins j;
        j.x = x.data(), j.n = n, j.ps = ps, j.ns = ns, j.last = last, j.pos = pos.data(), j.neg = neg.data();
        ASSERT_TRUE(kernel(j)) << name;
        EXPECT_EQ(pos, want_pos) << name << " " << bins << " " << n;
        EXPECT_EQ(neg, want_neg) << name << " " << bins << " " << n;
        EXPECT_EQ(j.np, want_np) << name;
        EXPECT_EQ(j.nn, want_nn) << name;
        EXPECT_EQ(j.zeros, want_zeros) << name;
        EXPECT_EQ(j.lo, lo) << name;
        EXPECT_EQ(j.hi, hi) << name;
        // Outside the ranges: a value at the positive range's end, an infinity, negatives with
        // no negative range. Refused with nothing added, and the next call starts clean.
        for (int bad = 0; bad < 3; ++bad) {
          std::vector<float> y = x;
          SplitBins k = j;
          k.np = k.nn = k.zeros = 0;
          k.x = y.data();
          if (bad == 0) y[n / 2] = std::ldexp(1.f, e_pos);
          if (bad == 1) y[n - 1] = -std::numeric_limits<float>::infinity();
          if (bad == 2) k.ns = 0.f;
          EXPECT_FALSE(kernel(k)) << name << " " << bad;
          EXPECT_EQ(pos, want_pos) << name << " " << bad;
          EXPECT_EQ(neg, want_neg) << name << " " << bad;
        }
      }
}

// The one-pass observation (binning with the ranges the histograms already have, extremes found
// on the way) against ranges and histograms built by the two passes, over samples whose ranges
// grow now and then (those take the two passes) and samples with NaN, zeros only or negatives only.
TEST(Histogram, OnePassObservationEqualsTwoPasses) {
  const std::vector<float> base = gaussian_with_outliers(40000);
  Observation one(4096), two(4096);
  for (int s = 0; s < 12; ++s) {
    std::vector<float> x(base.begin() + s * 3000, base.begin() + s * 3000 + 5003);
    const float grow = s % 4 == 3 ? 8.f : 1.f;
    for (float& v : x) v *= grow;
    if (s == 5) x[77] = std::nanf("");
    if (s == 6) std::fill(x.begin(), x.end(), 0.f);
    if (s == 7) for (float& v : x) v = -std::fabs(v);
    one.observe(x.data(), x.size(), true);
    two.range.observe(x.data(), x.size());
    Pow2Histogram::add_split(two.positive, two.negative, x.data(), x.size(), two.range.last_min, two.range.last_max);
    EXPECT_EQ(one.range.last_min, two.range.last_min) << s;
    EXPECT_EQ(one.range.last_max, two.range.last_max) << s;
    EXPECT_EQ(one.positive.counts(), two.positive.counts()) << s;
    EXPECT_EQ(one.negative.counts(), two.negative.counts()) << s;
    EXPECT_EQ(one.positive.exponent(), two.positive.exponent()) << s;
    EXPECT_EQ(one.positive.total(), two.positive.total()) << s;
    EXPECT_EQ(one.negative.total(), two.negative.total()) << s;
  }
  EXPECT_EQ(one.range.samples, two.range.samples);
  EXPECT_EQ(one.range.sum_sample_max.to_hex(), two.range.sum_sample_max.to_hex());
}

// The vector min/max against a plain scan for every tail length: NaN ignored, infinities kept,
// and an extreme of exactly zero is +0 whichever zero came first.
TEST(Histogram, RangeExtremesIgnoreNaNAndGiveZeroWithoutSign) {
  for (size_t n : {1u, 7u, 16u, 33u, 1000u}) {
    std::vector<float> x = gaussian_with_outliers(2000);  // it writes outliers up to index 1234
    x.resize(n);
    x[n / 2] = std::nanf("");
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (float v : x)
      if (!std::isnan(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    RangeStats r;
    r.observe(x.data(), n);
    if (lo > hi) {
      EXPECT_TRUE(r.empty()) << n;
      continue;
    }
    EXPECT_EQ(r.last_min, lo) << n;
    EXPECT_EQ(r.last_max, hi) << n;
    x[n - 1] = -std::numeric_limits<float>::infinity();
    RangeStats inf;
    inf.observe(x.data(), n);
    EXPECT_EQ(inf.last_min, -std::numeric_limits<float>::infinity()) << n;
  }
  for (size_t n : {5u, 40u}) {  // post-ReLU tensors: zeros of both signs, the -0 first
    std::vector<float> x(n, 0.f);
    x[0] = -0.f;
    x[n - 1] = 3.f;
    RangeStats r;
    r.observe(x.data(), n);
    EXPECT_EQ(r.last_min, 0.f);
    EXPECT_FALSE(std::signbit(r.last_min)) << n;
    std::vector<float> z(n, -0.f);
    RangeStats all;
    all.observe(z.data(), n);
    EXPECT_FALSE(std::signbit(all.last_min) || std::signbit(all.last_max)) << n;
  }
}

TEST(Methods, ResultDoesNotDependOnHowSamplesAreGrouped) {
  const auto data = gaussian_with_outliers(80000);
  for (const Method& m : methods()) {
    const Range a = calibrate(m.name, data, {}, 1);
    const Range b = calibrate(m.name, data, {}, 8);
    EXPECT_EQ(a.min, b.min) << m.name;
    EXPECT_EQ(a.max, b.max) << m.name;
  }
}

// Parallel calibration folds one Observation per sample into the total, in sample order: that
// must give exactly what observing the samples one after another gives (counts, ranges, sums).
TEST(Methods, MergingPerSampleObservationsEqualsObservingInOrder) {
  const auto data = gaussian_with_outliers(40000);
  const size_t per = 5000;
  Observation serial(4096), merged(4096);
  for (size_t s = 0; s * per < data.size(); ++s) {
    // Later samples are scaled up and down so ranges grow and shrink between merges.
    std::vector<float> x(data.begin() + static_cast<std::ptrdiff_t>(s * per),
                         data.begin() + static_cast<std::ptrdiff_t>((s + 1) * per));
    for (float& v : x) v *= (s % 3 == 0) ? 8.f : (s % 3 == 1 ? 0.125f : 1.f);
    serial.observe(x.data(), x.size(), true);
    Observation one(4096);
    one.observe(x.data(), x.size(), true);
    merged.merge(one);
  }
  EXPECT_EQ(serial.positive.counts(), merged.positive.counts());
  EXPECT_EQ(serial.negative.counts(), merged.negative.counts());
  EXPECT_EQ(serial.positive.range(), merged.positive.range());
  EXPECT_EQ(serial.negative.total(), merged.negative.total());
  EXPECT_EQ(serial.range.min, merged.range.min);
  EXPECT_EQ(serial.range.max, merged.range.max);
  EXPECT_EQ(serial.range.sum_sample_min, merged.range.sum_sample_min);
  EXPECT_EQ(serial.range.sum_sample_max, merged.range.sum_sample_max);
  EXPECT_EQ(serial.range.samples, merged.range.samples);
  for (const Method& m : methods()) {
    const Range a = m.compute(serial, {}), b = m.compute(merged, {});
    EXPECT_EQ(a.min, b.min) << m.name;
    EXPECT_EQ(a.max, b.max) << m.name;
  }
}

}  // namespace ptq::calib
