// Report library units: error statistics, top-k, classifier shapes, labels, budget gate, renderers.
#include <gtest/gtest.h>

#include <cmath>
#include <iterator>
#include <random>
#include <vector>

#include "ptq/core/error.h"
#include "ptq/report/metrics.h"
#include "ptq/report/labels.h"
#include "ptq/report/report.h"
#include "report_fixtures.h"
#include "schema_check.h"

namespace ptq::report {
namespace {

TEST(ReportMetrics, SqnrCosineAndAbsErrors) {
  ErrorStats s;
  s.add(Tensor::from_vector<float>({4}, {1, 2, 3, 4}), Tensor::from_vector<float>({4}, {1.1f, 2, 3, 4}));
  ASSERT_TRUE(s.sqnr_db().has_value());
  EXPECT_NEAR(*s.sqnr_db(), 10 * std::log10(30.0 / 0.01), 1e-4);
  EXPECT_NEAR(s.max_abs, 0.1, 1e-6);
  EXPECT_NEAR(s.mean_abs(), 0.025, 1e-6);
  EXPECT_GT(s.cosine(), 0.999);
  ErrorStats same;
  same.add(Tensor::from_vector<float>({2}, {1, 2}), Tensor::from_vector<float>({2}, {1, 2}));
  EXPECT_FALSE(same.sqnr_db().has_value());  // identical: infinite
  EXPECT_EQ(format_db(same.sqnr_db()), "inf");
  EXPECT_THROW(same.add(Tensor::from_vector<float>({2}, {1, 2}), Tensor::from_vector<float>({1}, {1})), IoError);
}

// Long tensors with a tail past the vector lanes: the blocked float sums agree with plain double
// sums to well below what the report prints, and codes give the very sums of their dequantized
// floats (the report's probes read codes).
TEST(ReportMetrics, BlockedSumsMatchDoublesAndCodesMatchTheirFloats) {
  const size_t n = 10007;  // several blocks and a tail for any lane count
  std::vector<float> a(n), b(n);
  std::vector<uint8_t> q(n);
  std::vector<int8_t> qs(n);
  const int32_t zp = 117;
  const float scale = 0.0371f;
  for (size_t i = 0; i < n; ++i) {
    a[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)) * 4.0 + 0.5);
    q[i] = static_cast<uint8_t>((i * 7919) % 256);
    qs[i] = static_cast<int8_t>(static_cast<int>(q[i]) - 128);
    b[i] = static_cast<float>(int32_t{q[i]} - zp) * scale;
  }
  const Tensor ta = Tensor::from_vector<float>({static_cast<int64_t>(n)}, a);
  ErrorStats f;
  f.add(ta, Tensor::from_vector<float>({static_cast<int64_t>(n)}, b));
  double signal = 0, noise = 0, dot = 0, norm_b = 0, sum_abs = 0, max_abs = 0;
  for (size_t i = 0; i < n; ++i) {
    const double p = a[i], t = b[i], d = p - t;
    signal += p * p, noise += d * d, dot += p * t, norm_b += t * t, sum_abs += std::fabs(d);
    max_abs = std::max(max_abs, std::fabs(d));
  }
  EXPECT_EQ(f.count, n);
  EXPECT_NEAR(f.signal, signal, 1e-6 * signal);
  EXPECT_NEAR(f.noise, noise, 1e-6 * noise);
  EXPECT_NEAR(f.dot, dot, 1e-6 * std::fabs(dot));
  EXPECT_NEAR(f.norm_b, norm_b, 1e-6 * norm_b);
  EXPECT_NEAR(f.sum_abs, sum_abs, 1e-6 * sum_abs);
  EXPECT_NEAR(f.max_abs, max_abs, 1e-6 * max_abs);  // the difference rounded to float
  EXPECT_NEAR(*f.sqnr_db(), 10 * std::log10(signal / noise), 1e-5);

  ErrorStats c;
  c.add_codes(ta, Tensor::from_vector<uint8_t>({static_cast<int64_t>(n)}, q), zp, scale);
  EXPECT_EQ(c.signal, f.signal);
  EXPECT_EQ(c.noise, f.noise);
  EXPECT_EQ(c.dot, f.dot);
  EXPECT_EQ(c.norm_b, f.norm_b);
  EXPECT_EQ(c.sum_abs, f.sum_abs);
  EXPECT_EQ(c.max_abs, f.max_abs);
  ErrorStats s;  // int8 codes shifted by 128 with the zero point: the same values
  s.add_codes(ta, Tensor::from_vector<int8_t>({static_cast<int64_t>(n)}, qs), zp - 128, scale);
  EXPECT_EQ(s.noise, f.noise);
  EXPECT_EQ(s.dot, f.dot);
  EXPECT_THROW(c.add_codes(ta, Tensor::from_vector<uint8_t>({1}, {0}), 0, 1.f), IoError);
  EXPECT_THROW(c.add_codes(ta, ta, 0, 1.f), IoError);
}

TEST(ReportMetrics, TopKAndClassifierShapes) {
  const std::vector<float> row = {0.1f, 0.9f, 0.5f, 0.9f, 0.2f};
  EXPECT_EQ(top_k(row.data(), row.size(), 3), (std::vector<size_t>{1, 3, 2}));  // ties: lower index first
  EXPECT_EQ(classifier_classes({1, 1000}), 1000u);
  EXPECT_EQ(classifier_classes({1, 1000, 1, 1}), 1000u);  // squeezenet
  EXPECT_EQ(classifier_classes({1, 3549, 85}), 0u);       // detector
  EXPECT_EQ(classifier_classes({1}), 0u);
}

// A long tensor is binned 8 values at a time where the CPU has AVX-512, a single value by the
// scalar loop: both give the same bars and counts, bounds, bin edges, infinities and NaN included.
TEST(ReportMetrics, ValueHistogramVectorAndScalarBinsAgree) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-3.f, 5.f);
  std::vector<float> v(1003);
  for (float& f : v) f = u(rng);
  const float special[] = {-2, 4, -1, 3, 0.5f, -0.f, 0, 1e30f, -1e30f, INFINITY, -INFINITY, NAN, 2.9999999f, -1.0000001f};
  for (size_t i = 0; i < std::size(special); ++i) v[37 * i + 3] = special[i];
  ValueHistogram whole = ValueHistogram::for_range(-1, 3, 16), each = whole;
  whole.add(Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v));
  for (float f : v) {
    ValueHistogram one = ValueHistogram::for_range(-1, 3, 16);
    one.add(Tensor::from_vector<float>({1}, {f}));
    each.merge(one);
  }
  EXPECT_EQ(whole.bins, each.bins);
  EXPECT_EQ(whole.below, each.below);
  EXPECT_EQ(whole.above, each.above);
  EXPECT_EQ(whole.clipped, each.clipped);
  EXPECT_EQ(whole.nonfinite, 3u);  // +-inf and NaN
  EXPECT_EQ(whole.nonfinite, each.nonfinite);
}

TEST(ReportMetrics, ValueHistogramBinsClipsAndMergesInAnyOrder) {
  ValueHistogram h = ValueHistogram::for_range(-1, 3, 8);  // 8 bins of 0.5 inside, 2 each side
  EXPECT_DOUBLE_EQ(h.lo, -2);
  EXPECT_DOUBLE_EQ(h.hi, 4);
  ASSERT_EQ(h.bins.size(), 12u);
  EXPECT_EQ(h.first_inside, 2u);
  EXPECT_EQ(h.end_inside, 10u);
  const Tensor a = Tensor::from_vector<float>({7}, {-1.5f, -1, 0, 3, 3.5f, 9, NAN});
  h.add(a);
  EXPECT_EQ(h.total(), 6u);  // NaN is counted apart
  EXPECT_EQ(h.nonfinite, 1u);
  EXPECT_EQ(h.above, 1u);    // 9 is beyond the plot
  EXPECT_EQ(h.clipped, 3u);  // -1.5, 3.5 and 9 are outside [-1, 3]
  EXPECT_DOUBLE_EQ(h.clipped_fraction(), 3.0 / 6.0);
  EXPECT_EQ(h.bins[1], 1u);   // -1.5: clipped, left margin
  EXPECT_EQ(h.bins[2], 1u);   // -1: the range's first value, inside
  EXPECT_EQ(h.bins[4], 1u);   // 0
  EXPECT_EQ(h.bins[9], 1u);   // 3: the range's last value, inside
  EXPECT_EQ(h.bins[11], 1u);  // 3.5: clipped, right margin
  ValueHistogram x = ValueHistogram::for_range(-1, 3, 8), y = x;
  const Tensor b = Tensor::from_vector<float>({3}, {-3, 1, 1});
  x.add(a);
  x.merge([&] { ValueHistogram t = ValueHistogram::for_range(-1, 3, 8); t.add(b); return t; }());
  y.add(b);
  y.merge(h);
  EXPECT_EQ(x.bins, y.bins);
  EXPECT_EQ(x.below, 1u);
  EXPECT_EQ(x.clipped, y.clipped);
  EXPECT_THROW(x.merge(ValueHistogram::for_range(0, 1, 8)), IoError);
}

TEST(ReportLabels, HeaderBaseNameAndStem) {
  test::TempDir t;
  test::write_file(t.file("l.tsv"), "file\tclass_index\nsub/a.jpg\t3\nb.jpg\t7\r\n\n");
  const Labels l = Labels::load(t.file("l.tsv"));
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l.find("/x/y/a.jpg"), 3);
  EXPECT_EQ(l.find("b.npy"), 7);  // same stem
  EXPECT_FALSE(l.find("c.jpg").has_value());
  test::write_file(t.file("bad.tsv"), "a.jpg\t1\nb.jpg\tcat\n");
  try {
    Labels::load(t.file("bad.tsv"));
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.tsv:2"), std::string::npos) << e.what();
  }
}

TEST(ReportLabels, SplitsMayReuseFileNamesThroughTheirDirectories) {
  test::TempDir t;
  test::write_file(t.file("l.tsv"), "calib/0000.npy\t3\neval/0000.npy\t9\neval/0001.npy\t4\n");
  const Labels l = Labels::load(t.file("l.tsv"));
  EXPECT_EQ(l.find("models/demo/eval/0000.npy"), 9);
  EXPECT_EQ(l.find("/abs/calib/0000.npy"), 3);
  EXPECT_EQ(l.find("elsewhere/0001.npy"), 4);           // unique base name still matches
  EXPECT_FALSE(l.find("elsewhere/0000.npy").has_value());  // ambiguous base name does not
  test::write_file(t.file("dup.tsv"), "eval/0000.npy\t1\n./eval/0000.npy\t2\n");
  EXPECT_THROW(Labels::load(t.file("dup.tsv")), IoError);
}

Measure classifier_measure(size_t rows, size_t agree, size_t a_ok, size_t b_ok) {
  Measure m;
  m.samples = rows;
  OutputReport o;
  o.name = "y";
  o.compared = true;
  o.stats.add(Tensor::from_vector<float>({2}, {1, 1}), Tensor::from_vector<float>({2}, {1, 1.01f}));
  m.outputs.push_back(o);
  Classification c;
  c.rows = c.labeled = rows;
  c.agree_top1 = agree;
  c.has_labels = true;
  c.a_top1 = a_ok;
  c.b_top1 = b_ok;
  m.classification = c;
  return m;
}

TEST(ReportGate, NamesEachFailedBudget) {
  const Measure m = classifier_measure(100, 90, 80, 75);
  Budget b;
  b.max_drop = 10;
  EXPECT_EQ(check_budget(b, m).line(), "PASSED");
  b.max_drop = 1;
  b.min_agreement = 95;
  const Gate g = check_budget(b, m);
  EXPECT_FALSE(g.passed);
  EXPECT_EQ(g.failures.size(), 2u);
  EXPECT_EQ(g.line().rfind("FAILED: top-1 drop 5.00 pt > 1.00 pt allowed", 0), 0u) << g.line();
  EXPECT_NE(g.line().find("top-1 agreement 90.00% < 95.00% required"), std::string::npos) << g.line();
  Measure generic = m;
  generic.classification.reset();
  EXPECT_THROW(check_budget(b, generic), UsageError);
  Budget s;
  s.min_sqnr = 100;
  EXPECT_NE(check_budget(s, generic).line().find("output SQNR"), std::string::npos);
}

TEST(ReportRender, JsonMatchesSchemaAndHtmlIsSelfContained) {
  Report r;
  r.command = "quantize";
  r.task = "classify";
  r.b_execution = "integer-kernels";
  r.model_a = "a<b>.onnx";
  r.measure = classifier_measure(10, 9, 8, 7);
  LayerReport l;
  l.node = "conv&1";
  l.op = "Conv";
  l.measured = l.sensitivity_measured = true;
  l.sqnr_db = 30;
  l.sensitivity_db = 40;
  l.sensitivity_rank = 1;
  r.layers.push_back(l);
  const nlohmann::json j = nlohmann::json::parse(to_json(r));
  const nlohmann::json schema = test::read_json(PTQ_REPORT_SCHEMA);
  EXPECT_EQ(test::check_schema(j, schema), "");
  EXPECT_EQ(j["classification"]["fp32_top1"], 80.0);
  EXPECT_EQ(j["classification"]["int8_top1"], 70.0);
  nlohmann::json broken = j;
  broken["classification"].erase("int8_top1");
  EXPECT_NE(test::check_schema(broken, schema), "");  // the checker does check
  const std::string html = render_html(r);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("conv&amp;1"), std::string::npos);
  EXPECT_EQ(html.find("a<b>"), std::string::npos);
  EXPECT_EQ(html.find("class=\"hist\""), std::string::npos);  // no histogram measured: no section
  // With a histogram: the worst layers' section, the clip lines and the clipped share.
  r.layers[0].histogram = ValueHistogram::for_range(0, 6);
  r.layers[0].histogram->add(Tensor::from_vector<float>({4}, {0.5f, 1, 2, 7}));
  const std::string with = render_html(r);
  EXPECT_NE(with.find("Worst layers"), std::string::npos);
  EXPECT_NE(with.find("class=\"hist\""), std::string::npos);
  EXPECT_NE(with.find("class=\"clip\""), std::string::npos);
  EXPECT_NE(with.find("25.000% of 4 values clipped"), std::string::npos) << with;
}

}  // namespace
}  // namespace ptq::report
