// Partial calibration statistics: exact sums, the JSON format, and shard merges equal to one pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "ptq/calib/calib_stats.h"
#include "ptq/core/error.h"

namespace ptq::calib {
namespace {

std::vector<float> wide_floats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mant(-1.f, 1.f);
  std::uniform_int_distribution<int> exp(-140, 120);
  std::vector<float> v(n);
  for (float& x : v) x = std::ldexp(mant(rng), exp(rng));
  return v;
}

ExactSum sum_of(const std::vector<float>& v) {
  ExactSum s;
  for (float x : v) s.add(x);
  return s;
}

TEST(ExactSum, OrderAndGroupingDoNotChangeTheSum) {
  std::vector<float> v = wide_floats(5000, 11);
  const ExactSum forward = sum_of(v);
  std::mt19937 rng(3);
  for (int round = 0; round < 3; ++round) {
    std::shuffle(v.begin(), v.end(), rng);
    ExactSum a, b;  // two interleaved halves, merged
    for (size_t i = 0; i < v.size(); ++i) (i % 2 ? a : b).add(v[i]);
    b.merge(a);
    EXPECT_EQ(forward.to_hex(), sum_of(v).to_hex());
    EXPECT_EQ(forward.to_hex(), b.to_hex());
  }
}

TEST(ExactSum, IsExactWhereDoublesAreNot) {
  ExactSum s;
  for (float x : {1e30f, 1.f, -1e30f}) s.add(x);
  EXPECT_EQ(s.value(), 1.0);  // a double running sum gives 0
  ExactSum cancel;
  for (float x : wide_floats(1000, 5)) {
    cancel.add(x);
    cancel.add(-x);
  }
  EXPECT_EQ(cancel.value(), 0.0);
  ExactSum tiny;  // subnormals
  for (int i = 0; i < 1000; ++i) tiny.add(std::numeric_limits<float>::denorm_min());
  EXPECT_EQ(tiny.value(), 1000.0 * std::numeric_limits<float>::denorm_min());
  ExactSum big;  // 2^20 times the float maximum does not overflow
  for (int i = 0; i < (1 << 20); ++i) big.add(std::numeric_limits<float>::max());
  EXPECT_EQ(big.value(), std::ldexp(static_cast<double>(std::numeric_limits<float>::max()), 20));
  ExactSum neg;
  for (float x : {-2.5f, -0.25f}) neg.add(x);
  EXPECT_EQ(neg.value(), -2.75);
}

TEST(ExactSum, RoundsToNearestDoubleWithStickyBits) {
  // 1 + 2^-53 + 2^-100: just above the midpoint between 1 and 1 + 2^-52, so it rounds up; without
  // the bits far below the head it would tie and round to even (1.0).
  ExactSum s;
  for (float x : {1.f, std::ldexp(1.f, -53), std::ldexp(1.f, -100)}) s.add(x);
  EXPECT_EQ(s.value(), 1.0 + std::ldexp(1.0, -52));
  ExactSum tie;
  for (float x : {1.f, std::ldexp(1.f, -53)}) tie.add(x);
  EXPECT_EQ(tie.value(), 1.0);
}

TEST(ExactSum, NonFiniteTermsAndTextRoundTrip) {
  ExactSum inf, both, nan;
  inf.add(1.f);
  inf.add(std::numeric_limits<float>::infinity());
  both.add(std::numeric_limits<float>::infinity());
  both.add(-std::numeric_limits<float>::infinity());
  nan.add(std::nanf(""));
  EXPECT_EQ(inf.value(), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(both.value()));
  EXPECT_TRUE(std::isnan(nan.value()));
  const ExactSum finite = sum_of(wide_floats(300, 9));
  for (const ExactSum& s : {finite, inf, nan}) EXPECT_EQ(ExactSum::from_hex(s.to_hex()).to_hex(), s.to_hex());
  EXPECT_EQ(ExactSum::from_hex(finite.to_hex()).value(), finite.value());
  EXPECT_THROW(ExactSum::from_hex("12"), std::invalid_argument);
  EXPECT_THROW(ExactSum::from_hex(std::string(96, 'g')), std::invalid_argument);
}

// Statistics of "samples" (random tensors of varying scale) for tensors a (histograms) and b (exact).
std::vector<std::vector<float>> samples(size_t n) {
  std::mt19937 rng(77);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<std::vector<float>> out(n, std::vector<float>(700));
  for (size_t s = 0; s < n; ++s)
    for (float& x : out[s]) x = d(rng) * (s % 3 == 0 ? 6.f : 1.f) + (s % 4 == 1 ? 2.f : 0.f);
  return out;
}

CalibStats observe(const std::string& method, const std::vector<std::vector<float>>& data, Shard shard) {
  CalibStats st;
  st.model_sha256 = "ab12";
  st.method = method;
  st.shard = shard;
  const bool hist = find_method(method)->histogram(st.params) != HistogramKind::kNone;
  const int bins = histogram_bins(st.params);
  st.tensors.emplace("a", TensorStats{false, Observation(hist ? bins : 1)});
  st.tensors.emplace("b", TensorStats{hist, Observation(1)});
  for (size_t s = shard.index - 1; s < data.size(); s += shard.count) {
    st.tensors.at("a").observation.observe(data[s].data(), data[s].size(), hist);
    st.tensors.at("b").observation.observe(data[s].data(), data[s].size(), false);
    ++st.samples;
  }
  return st;
}

TEST(CalibStats, ShardsMergeToTheSingleRunForEveryMethod) {
  const auto data = samples(23);
  for (const Method& m : methods())
    for (bool average : {false, true}) {
      SCOPED_TRACE(std::string(m.name) + (average ? " averaged" : ""));
      CalibStats one = observe(m.name, data, {1, 1});
      one.params.moving_average = average;
      std::vector<CalibStats> parts;
      std::vector<std::string> labels;
      for (size_t i : {3, 1, 4, 2}) {  // any order
        parts.push_back(observe(m.name, data, {i, 4}));
        parts.back().params.moving_average = average;
        // Through the file format, as shards on other machines would.
        parts.back() = parse_calib_stats(calib_stats_json(parts.back()), "p");
        labels.push_back("part" + std::to_string(i));
      }
      const CalibStats merged = merge_stats(parts, labels);
      EXPECT_EQ(merged.samples, 23u);
      EXPECT_EQ(calib_table_json(ranges_from(merged)), calib_table_json(ranges_from(one)));
    }
}

TEST(CalibTable, DepthwiseMaximaRoundTripAndNegativesAreRefused) {
  CalibTable t = ranges_from(observe("minmax", samples(3), {2, 3}));
  t.depthwise_channel_max["a"] = {0.f, 1.5f, 3.25f};
  const std::string text = calib_table_json(t);
  EXPECT_EQ(parse_calib_table(text, "t").depthwise_channel_max, t.depthwise_channel_max);
  EXPECT_EQ(calib_table_json(parse_calib_table(text, "t")), text);
  const size_t at = text.find("1.5");
  ASSERT_NE(at, std::string::npos);
  const std::string bad = text.substr(0, at) + "-" + text.substr(at);
  EXPECT_THROW(parse_calib_table(bad, "t"), IoError);
}

// Empirical bias correction's shifts and gains (pipeline/empirical_bias.h) come back as written;
// a negative gain is refused (the emitter would flip a channel's weights).
TEST(CalibTable, EmpiricalShiftsAndGainsRoundTripAndNegativeGainsAreRefused) {
  CalibTable t = ranges_from(observe("minmax", samples(3), {2, 3}));
  t.bias_shift["conv_out"] = {-0.25, 0.0, 1.5};
  EXPECT_EQ(calib_table_json(t).find("\"gain\""), std::string::npos);
  t.output_gain["conv_out"] = {0.875, 1.0, 1.1875};
  const std::string text = calib_table_json(t);
  const CalibTable back = parse_calib_table(text, "t");
  EXPECT_EQ(back.bias_shift, t.bias_shift);
  EXPECT_EQ(back.output_gain, t.output_gain);
  EXPECT_EQ(calib_table_json(back), text);
  const size_t at = text.find("1.1875");
  ASSERT_NE(at, std::string::npos);
  EXPECT_THROW(parse_calib_table(text.substr(0, at) + "-" + text.substr(at), "t"), IoError);
}

TEST(CalibTable, Uint8WeightsRoundTripOnlyWhenKept) {
  CalibTable t = ranges_from(observe("minmax", samples(3), {2, 3}));
  EXPECT_EQ(calib_table_json(t).find("uint8_weights"), std::string::npos);
  t.uint8_weights = true;
  const std::string text = calib_table_json(t);
  EXPECT_TRUE(parse_calib_table(text, "t").uint8_weights);
  EXPECT_EQ(calib_table_json(parse_calib_table(text, "t")), text);
  std::string bad = text;
  bad.replace(bad.find("true"), 4, "\"yes\"");
  EXPECT_THROW(parse_calib_table(bad, "t"), IoError);
}

TEST(CalibStats, JsonRoundTripIsExact) {
  CalibStats st = observe("entropy", samples(5), {2, 3});
  const std::string text = calib_stats_json(st);
  EXPECT_EQ(calib_stats_json(parse_calib_stats(text, "x")), text);
  // Non-finite extremes survive (JSON has no infinities).
  CalibStats inf = observe("minmax", samples(2), {1, 1});
  inf.tensors.at("a").observation.range.max = std::numeric_limits<double>::infinity();
  EXPECT_EQ(parse_calib_stats(calib_stats_json(inf), "x").tensors.at("a").observation.range.max,
            std::numeric_limits<double>::infinity());
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(CalibStats, MismatchedShardsAreClearErrors) {
  const auto data = samples(8);
  const auto part = [&](size_t i, size_t n) { return observe("percentile", data, {i, n}); };
  const auto merge = [&](std::vector<CalibStats> p) {
    std::vector<std::string> labels;
    for (const CalibStats& s : p) labels.push_back("s" + std::to_string(s.shard.index) + ".json");
    return error_of([&] { merge_stats(p, labels); });
  };
  EXPECT_NE(merge({part(1, 3), part(3, 3)}).find("shard 2/3 is missing"), std::string::npos);
  EXPECT_NE(merge({part(1, 2), part(1, 2)}).find("shard 1/2 is also in s1.json"), std::string::npos);
  EXPECT_NE(merge({part(1, 2), part(2, 3)}).find("split into 3"), std::string::npos);
  CalibStats other = part(2, 2);
  other.model_sha256 = "ffff";
  EXPECT_NE(merge({part(1, 2), other}).find("s2.json: made for another model"), std::string::npos);
  CalibStats method = observe("entropy", data, {2, 2});
  EXPECT_NE(merge({part(1, 2), method}).find("another method"), std::string::npos);
  CalibStats params = part(2, 2);
  params.params.percentile = 99.9;
  EXPECT_NE(merge({part(1, 2), params}).find("parameters"), std::string::npos);
  CalibStats tensors = part(2, 2);
  tensors.tensors.erase("b");
  EXPECT_NE(merge({part(1, 2), tensors}).find("tensors"), std::string::npos);
  // Histograms of an exact tensor on one side only (a part from another version, or edited):
  // merging a 4096-bin grid into a 1-bin one was an internal error (exit 70) naming no file.
  CalibStats with = part(2, 2);
  with.tensors.at("b").observation = with.tensors.at("a").observation;
  EXPECT_NE(merge({part(1, 2), with}).find("s2.json: tensor 'b' does not match s1.json"), std::string::npos);
  EXPECT_NE(merge({with, part(1, 2)}).find("tensor 'b' does not match"), std::string::npos);
}

TEST(CalibStats, MalformedFilesNameTheKey) {
  const std::string good = calib_stats_json(observe("percentile", samples(3), {1, 2}));
  const auto error = [](const std::string& text) { return error_of([&] { parse_calib_stats(text, "f.json"); }); };
  const auto replace = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  EXPECT_NE(error("{").find("f.json: not valid JSON"), std::string::npos);
  EXPECT_NE(error("{\"format\": \"ptq-calibration-table\"}").find("not a ptq calibration statistics file"),
            std::string::npos);
  EXPECT_NE(error(replace("\"version\": 1", "\"version\": 2")).find("version 2"), std::string::npos);
  EXPECT_NE(error(replace("\"bins\": 4096", "\"bins\": 4000")).find("tensors.a"), std::string::npos);
  EXPECT_NE(error(replace("\"index\": 1", "\"index\": 3")).find("shard"), std::string::npos);
  EXPECT_NE(error(replace("\"method\": \"percentile\"", "\"method\": \"magic\"")).find("unknown method"),
            std::string::npos);
  EXPECT_NE(error(replace("\"sum_sample_min\": \"", "\"sum_sample_min\": \"z")).find("hex"), std::string::npos);
  EXPECT_NE(error(replace("\"first\": ", "\"first\": 99999")).find("exceed"), std::string::npos);
  const size_t pos = good.find("\"positive\"");
  ASSERT_NE(pos, std::string::npos);
  EXPECT_NE(error(replace("\"positive\"", "\"elsewhere\"")).find("histograms missing"), std::string::npos);
}

TEST(CalibStats, ShardFlag) {
  EXPECT_EQ(parse_shard("3/4", "--shard").index, 3u);
  EXPECT_EQ(parse_shard("1/1", "--shard").count, 1u);
  for (const char* bad : {"0/4", "5/4", "4", "a/b", "1/0", "-1/4", "1/4/2", "", "99999999999/99999999999"})
    EXPECT_NE(error_of([&] { parse_shard(bad, "--shard"); }).find("--shard"), std::string::npos) << bad;
}

}  // namespace
}  // namespace ptq::calib
