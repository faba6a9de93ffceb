// Partial calibration statistics: shard parsing, exact merging, ranges, and the JSON file format.
#include "ptq/calib/calib_stats.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "json_fields.h"

namespace ptq::calib {
namespace {

using nlohmann::json;
using json_fields::integer;
constexpr const char* kStatsFormat = "ptq-calibration-stats";
constexpr int kStatsVersion = 1;

// JSON has no infinities: non-finite extremes (inf activations) are written as strings.
json number(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

double parse_number(const json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.get<std::string>();
  if (s == "inf") return std::numeric_limits<double>::infinity();
  if (s == "-inf") return -std::numeric_limits<double>::infinity();
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  throw std::runtime_error("expected a number, \"inf\", \"-inf\" or \"nan\"");
}

// Sparse: the counts from the first to the last non-zero bin.
json histogram_json(const Pow2Histogram& h) {
  const std::vector<uint64_t>& c = h.counts();
  size_t first = 0, last = c.size();
  while (first < last && c[first] == 0) ++first;
  while (last > first && c[last - 1] == 0) --last;
  return {{"bins", c.size()},
          {"exponent", h.empty() ? 0 : h.exponent()},
          {"first", first},
          {"counts", std::vector<uint64_t>(c.begin() + static_cast<std::ptrdiff_t>(first),
                                           c.begin() + static_cast<std::ptrdiff_t>(last))}};
}

Pow2Histogram parse_histogram(const json& j, size_t expected_bins) {
  const size_t bins = integer<size_t>(j, "bins", 0);
  PTQ_CHECK(bins == expected_bins, IoError, "histogram has ", bins, " bins, the parameters give ", expected_bins);
  const size_t first = integer<size_t>(j, "first", 0);
  const std::vector<uint64_t> part = j.at("counts").get<std::vector<uint64_t>>();
  PTQ_CHECK(first <= bins && part.size() <= bins - first, IoError, "histogram counts exceed its ", bins, " bins");
  std::vector<uint64_t> counts(bins, 0);
  std::copy(part.begin(), part.end(), counts.begin() + static_cast<std::ptrdiff_t>(first));
  try {
    return Pow2Histogram::restore(std::move(counts), integer<int>(j, "exponent", 0));
  } catch (const std::invalid_argument& e) {
    throw IoError(e.what());
  }
}

CalibStats parse_stats(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw IoError(str_cat("not valid JSON: ", e.what()));
  }
  CalibStats s;
  std::string key;
  try {
    key = "format";
    PTQ_CHECK(j.is_object() && j.at(key).get<std::string>() == kStatsFormat, IoError,
              "not a ptq calibration statistics file (quantize calibrate --save-stats writes them)");
    key = "version";
    PTQ_CHECK(j.contains(key), IoError, "key 'version' is missing");
    const int version = integer<int>(j, key, 0);
    PTQ_CHECK(version == kStatsVersion, IoError, "unsupported calibration statistics version ", version);
    key = "model_sha256";
    s.model_sha256 = j.at(key).get<std::string>();
    key = "method";
    s.method = j.at(key).get<std::string>();
    PTQ_CHECK(find_method(s.method), IoError, "unknown method '", s.method, "'");
    key = "params";
    s.params = json_fields::parse_params(j.at(key));
    PTQ_CHECK(s.params.num_bins >= 1 && s.params.num_bins <= (1 << 20), IoError, "key 'params.num_bins' is out of range");
    key = "shard";
    s.shard.index = integer<size_t>(j.at(key), "index", 0);
    s.shard.count = integer<size_t>(j.at(key), "count", 0);
    PTQ_CHECK(s.shard.count >= 1 && s.shard.index >= 1 && s.shard.index <= s.shard.count, IoError,
              "key 'shard': index must be in 1..count");
    key = "samples";
    s.samples = integer<size_t>(j, key, size_t{0});
    const size_t bins = static_cast<size_t>(histogram_bins(s.params));
    for (const auto& [name, t] : j.at("tensors").items()) {
      key = "tensors." + name;
      TensorStats ts{t.at("exact").get<bool>(), Observation(1), Through::kIdentity};
      RangeStats& r = ts.observation.range;
      r.min = parse_number(t.at("min"));
      r.max = parse_number(t.at("max"));
      r.samples = integer<size_t>(t, "samples", size_t{0});
      try {
        r.sum_sample_min = ExactSum::from_hex(t.at("sum_sample_min").get<std::string>());
        r.sum_sample_max = ExactSum::from_hex(t.at("sum_sample_max").get<std::string>());
      } catch (const std::invalid_argument& e) {
        throw IoError(e.what());
      }
      PTQ_CHECK(r.samples == 0 || r.min <= r.max, IoError, "min must not exceed max");
      if (t.contains("through")) {
        const std::optional<Through> f = parse_through(t.at("through").get<std::string>());
        PTQ_CHECK(f, IoError, "'through' is not identity, silu or hardswish");
        ts.through = *f;
      }
      // The method's ranges come from histograms: a tensor that needs them must have them.
      const bool needs = !ts.exact && find_method(s.method)->histogram(s.params) != HistogramKind::kNone;
      PTQ_CHECK(!needs || (t.contains("positive") && t.contains("negative")), IoError,
                "histograms missing (method ", s.method, ")");
      if (t.contains("positive") || t.contains("negative")) {
        ts.observation.positive = parse_histogram(t.at("positive"), bins);
        ts.observation.negative = parse_histogram(t.at("negative"), bins);
      }
      s.tensors.emplace(name, std::move(ts));
    }
  } catch (const json::exception& e) {
    throw IoError(str_cat("key '", key, "': ", e.what()));
  } catch (Error& e) {
    e.add_context(str_cat("key '", key, "'"));
    throw;
  } catch (const std::runtime_error& e) {
    throw IoError(str_cat("key '", key, "': ", e.what()));
  }
  return s;
}

}  // namespace

Shard parse_shard(const std::string& text, const std::string& flag) {
  const size_t slash = text.find('/');
  const auto number = [&](const std::string& part) -> size_t {
    PTQ_CHECK(!part.empty() && part.size() <= 9 && part.find_first_not_of("0123456789") == std::string::npos,
              UsageError, flag, ": '", text, "' is not I/N (shard I of N, 1 <= I <= N)");
    return std::stoul(part);
  };
  PTQ_CHECK(slash != std::string::npos, UsageError, flag, ": '", text, "' is not I/N (shard I of N, 1 <= I <= N)");
  Shard s{number(text.substr(0, slash)), number(text.substr(slash + 1))};
  PTQ_CHECK(s.count >= 1 && s.index >= 1 && s.index <= s.count, UsageError, flag, ": '", text,
            "' needs 1 <= I <= N (shards are numbered from 1)");
  return s;
}

CalibTable ranges_from(const CalibStats& stats) {
  const Method* method = find_method(stats.method);
  PTQ_CHECK(method, UsageError, "--method: unknown method '", stats.method, "' (use ", method_names(), ")");
  CalibTable table;
  table.model_sha256 = stats.model_sha256;
  table.method = stats.method;
  table.params = stats.params;
  table.samples = stats.samples;
  for (const auto& [name, t] : stats.tensors) {
    const RangeStats& r = t.observation.range;
    table.ranges[name] = t.exact ? Range{static_cast<float>(r.min), static_cast<float>(r.max)}
                                 : fit_through(t.observation, method->compute(t.observation, stats.params), t.through,
                                               stats.params);
  }
  return table;
}

CalibStats merge_stats(const std::vector<CalibStats>& parts, const std::vector<std::string>& labels) {
  PTQ_CHECK(!parts.empty(), UsageError, "no statistics to merge");
  PTQ_ASSERT(labels.size() == parts.size(), "one label per part");
  const CalibStats& first = parts.front();
  const std::string params = json_fields::params_json(first.params).dump();
  const size_t n = first.shard.count;
  std::vector<int> owner(n, -1);  // shard index - 1 -> part
  for (size_t i = 0; i < parts.size(); ++i) {
    const CalibStats& p = parts[i];
    with_context(labels[i], [&] {
      PTQ_CHECK(p.model_sha256 == first.model_sha256, IoError, "made for another model (sha256 ",
                p.model_sha256.substr(0, 12), "... vs ", first.model_sha256.substr(0, 12), "... in ", labels[0], ")");
      PTQ_CHECK(p.method == first.method && json_fields::params_json(p.params).dump() == params, IoError,
                "calibrated with another method or parameters than ", labels[0], " (", p.method, " vs ", first.method, ")");
      PTQ_CHECK(p.shard.count == n, IoError, "shard ", p.shard.index, "/", p.shard.count, " belongs to a split into ",
                p.shard.count, ", ", labels[0], " to one into ", n);
      PTQ_CHECK(owner[p.shard.index - 1] < 0, IoError, "shard ", p.shard.index, "/", n, " is also in ",
                owner[p.shard.index - 1] < 0 ? "" : labels[static_cast<size_t>(owner[p.shard.index - 1])]);
      owner[p.shard.index - 1] = static_cast<int>(i);
      PTQ_CHECK(p.tensors.size() == first.tensors.size(), IoError, "has statistics of ", p.tensors.size(),
                " tensors, ", labels[0], " of ", first.tensors.size(), " (another model or other flags)");
      auto a = p.tensors.begin();
      // Histograms on one side only would merge grids of different bin counts.
      for (auto b = first.tensors.begin(); b != first.tensors.end(); ++a, ++b)
        PTQ_CHECK(a->first == b->first && a->second.exact == b->second.exact && a->second.through == b->second.through &&
                      a->second.observation.positive.bins() == b->second.observation.positive.bins(),
                  IoError, "tensor '", a->first,
                  "' does not match ", labels[0], " (another model, other flags or another ptq version)");
    });
  }
  for (size_t k = 0; k < n; ++k)
    PTQ_CHECK(owner[k] >= 0, IoError, "shard ", k + 1, "/", n, " is missing (", parts.size(), " of ", n,
              " given)");
  CalibStats merged;
  merged.model_sha256 = first.model_sha256;
  merged.method = first.method;
  merged.params = first.params;
  for (size_t k = 0; k < n; ++k) {  // shard order (the merge is exact, so any order gives the same)
    const CalibStats& p = parts[static_cast<size_t>(owner[k])];
    merged.samples += p.samples;
    for (const auto& [name, t] : p.tensors) {
      auto [it, fresh] = merged.tensors.try_emplace(name, t);
      if (!fresh) it->second.observation.merge(t.observation);
    }
  }
  return merged;
}

std::string calib_stats_json(const CalibStats& s) {
  json tensors = json::object();
  for (const auto& [name, t] : s.tensors) {
    const RangeStats& r = t.observation.range;
    json e = {{"exact", t.exact},
              {"min", number(r.min)},
              {"max", number(r.max)},
              {"samples", r.samples},
              {"sum_sample_min", r.sum_sample_min.to_hex()},
              {"sum_sample_max", r.sum_sample_max.to_hex()}};
    if (t.through != Through::kIdentity) e["through"] = through_name(t.through);
    if (t.observation.positive.bins() > 1) {
      e["positive"] = histogram_json(t.observation.positive);
      e["negative"] = histogram_json(t.observation.negative);
    }
    tensors[name] = std::move(e);
  }
  const json j = {{"format", kStatsFormat},
                  {"version", kStatsVersion},
                  {"model_sha256", s.model_sha256},
                  {"method", s.method},
                  {"params", json_fields::params_json(s.params)},
                  {"shard", {{"index", s.shard.index}, {"count", s.shard.count}}},
                  {"samples", s.samples},
                  {"tensors", tensors}};
  return j.dump(1) + "\n";
}

void save_calib_stats(const CalibStats& stats, const std::string& path) {
  with_context(path, [&] {
    const std::string text = calib_stats_json(stats);
    AtomicFile out(path);
    out.write(text.data(), text.size());
    out.commit();
  });
}

CalibStats load_calib_stats(const std::string& path) {
  return with_context(path, [&] {
    std::ifstream f(path, std::ios::binary);
    PTQ_CHECK(f, IoError, "cannot open calibration statistics");
    std::ostringstream text;
    text << f.rdbuf();
    PTQ_CHECK(!f.bad(), IoError, "cannot read calibration statistics");
    return parse_stats(text.str());
  });
}

CalibStats parse_calib_stats(const std::string& text, const std::string& label) {
  return with_context(label, [&] { return parse_stats(text); });
}

}  // namespace ptq::calib
