// Calibration table JSON (format "ptq-calibration-table", version 1), hand-editable.
#include "ptq/calib/calib_table.h"

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
constexpr const char* kTableFormat = "ptq-calibration-table";
constexpr int kTableVersion = 1;

DType parse_type(const std::string& s) {
  if (s == "uint8") return DType::kUint8;
  if (s == "int8") return DType::kInt8;
  throw std::runtime_error("activation_type must be uint8 or int8");
}

}  // namespace

namespace json_fields {

json params_json(const CalibParams& p) {
  return {{"percentile", p.percentile},
          {"num_bins", p.num_bins},
          {"num_quantized_bins", p.num_quantized_bins},
          {"symmetric", p.symmetric},
          {"moving_average", p.moving_average},
          {"activation_type", dtype_name(p.activation_type)},
          {"activation_symmetric", p.activation_symmetry == quant::Symmetry::kSymmetric}};
}

CalibParams parse_params(const json& p) {
  CalibParams c;
  c.percentile = p.value("percentile", c.percentile);
  c.num_bins = integer<int>(p, "num_bins", c.num_bins);
  c.num_quantized_bins = integer<int>(p, "num_quantized_bins", c.num_quantized_bins);
  c.symmetric = p.value("symmetric", c.symmetric);
  c.moving_average = p.value("moving_average", c.moving_average);
  if (p.contains("activation_type")) c.activation_type = parse_type(p["activation_type"]);
  c.activation_symmetry = p.value("activation_symmetric", false) ? quant::Symmetry::kSymmetric
                                                                  : quant::Symmetry::kAsymmetric;
  return c;
}

}  // namespace json_fields

std::string calib_table_json(const CalibTable& t) {
  json tensors = json::object();
  for (const auto& [name, r] : t.ranges) {
    tensors[name] = {{"min", r.min}, {"max", r.max}};
    if (!r.channel_max.empty()) tensors[name]["channel_max"] = r.channel_max;
  }
  json j = {
      {"format", kTableFormat},
      {"version", kTableVersion},
      {"model_sha256", t.model_sha256},
      {"method", t.method},
      {"samples", t.samples},
      {"params", json_fields::params_json(t.params)},
      {"tensors", tensors},
  };
  if (t.smoothquant_alpha >= 0.f)
    j["smoothquant"] = {{"alpha", t.smoothquant_alpha}, {"channel_abs_max", t.channel_abs_max}};
  if (!t.channel_mean.empty()) j["bias_correction"] = {{"channel_mean", t.channel_mean}};
  if (!t.bias_shift.empty()) j["empirical_bias_correction"] = {{"bias_shift", t.bias_shift}};
  if (!t.output_gain.empty()) j["empirical_bias_correction"]["gain"] = t.output_gain;
  if (!t.depthwise_channel_max.empty()) j["depthwise_scales"] = {{"channel_max", t.depthwise_channel_max}};
  if (t.search_fp32) j["placement_search"] = {{"fp32_nodes", *t.search_fp32}};
  if (t.uint8_weights) j["uint8_weights"] = {{"kept", true}};
  return j.dump(2) + "\n";
}

void save_calib_table(const CalibTable& table, const std::string& path) {
  with_context(path, [&] {
    const std::string text = calib_table_json(table);
    AtomicFile out(path);
    out.write(text.data(), text.size());
    out.commit();
  });
}

namespace {

// One per-channel statistic by tensor name (`section`.`field` of the table): each vector finite,
// and >= 0 where `non_negative`. `key` tracks what is being read, for the caller's error messages.
template <typename T>
std::map<std::string, std::vector<T>> channel_vectors(const json& j, const std::string& section,
                                                      const std::string& field, bool non_negative, std::string& key) {
  std::map<std::string, std::vector<T>> out;
  for (const auto& [name, v] : j.at(section).at(field).items()) {
    key = section + "." + field + "." + name;
    std::vector<T> m = v.template get<std::vector<T>>();
    for (T x : m)
      PTQ_CHECK(std::isfinite(x) && (!non_negative || x >= T(0)), IoError, "key '", key, "': values must be finite",
                non_negative ? " and >= 0" : "");
    out[name] = std::move(m);
  }
  return out;
}

// The table from JSON text; errors name the offending key (callers add the source as context).
CalibTable parse_table(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw IoError(str_cat("not valid JSON: ", e.what()));
  }
  CalibTable t;
  std::string key;
  try {
    key = "format";
    PTQ_CHECK(j.at(key).get<std::string>() == kTableFormat, IoError, "not a ptq calibration table");
    key = "version";
    PTQ_CHECK(j.contains(key), IoError, "key 'version' is missing");
    const int version = integer<int>(j, key, 0);
    PTQ_CHECK(version == kTableVersion, IoError, "unsupported calibration table version ", version);
    key = "model_sha256";
    t.model_sha256 = j.at(key).get<std::string>();
    key = "method";
    t.method = j.at(key).get<std::string>();
    key = "samples";
    t.samples = integer<size_t>(j, key, size_t{0});
    if (j.contains("params")) {
      key = "params";
      t.params = json_fields::parse_params(j["params"]);
    }
    for (const auto& [name, r] : j.at("tensors").items()) {
      key = "tensors." + name;
      const float lo = r.at("min").get<float>(), hi = r.at("max").get<float>();
      PTQ_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, IoError, "tensor '", name,
                "': min/max must be finite with min <= max");
      t.ranges[name] = {lo, hi, {}};
      if (r.contains("channel_max")) {
        key = "tensors." + name + ".channel_max";
        std::vector<float> m = r["channel_max"].get<std::vector<float>>();
        for (float x : m) PTQ_CHECK(std::isfinite(x) && x >= 0.f, IoError, "key '", key, "': values must be finite and >= 0");
        t.ranges[name].channel_max = std::move(m);
      }
    }
    if (j.contains("smoothquant")) {
      key = "smoothquant.alpha";
      const json& sq = j["smoothquant"];
      t.smoothquant_alpha = sq.at("alpha").get<float>();
      PTQ_CHECK(t.smoothquant_alpha >= 0.f && t.smoothquant_alpha <= 1.f, IoError, "key '", key, "' must be in [0, 1]");
      t.channel_abs_max = channel_vectors<float>(j, "smoothquant", "channel_abs_max", true, key);
    }
    if (j.contains("bias_correction"))
      t.channel_mean = channel_vectors<double>(j, "bias_correction", "channel_mean", false, key);
    if (j.contains("empirical_bias_correction"))
      t.bias_shift = channel_vectors<double>(j, "empirical_bias_correction", "bias_shift", false, key);
    if (j.contains("empirical_bias_correction") && j["empirical_bias_correction"].contains("gain"))
      t.output_gain = channel_vectors<double>(j, "empirical_bias_correction", "gain", true, key);
    if (j.contains("depthwise_scales"))
      t.depthwise_channel_max = channel_vectors<float>(j, "depthwise_scales", "channel_max", true, key);
    if (j.contains("placement_search")) {
      key = "placement_search.fp32_nodes";
      t.search_fp32 = j["placement_search"].at("fp32_nodes").get<std::vector<std::string>>();
    }
    if (j.contains("uint8_weights")) {
      key = "uint8_weights.kept";
      t.uint8_weights = j["uint8_weights"].at("kept").get<bool>();
    }
  } catch (const json::exception& e) {
    throw IoError(str_cat("key '", key, "': ", e.what()));
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const Error*>(&e)) throw;
    throw IoError(str_cat("key '", key, "': ", e.what()));
  }
  return t;
}

}  // namespace

CalibTable load_calib_table(const std::string& path) {
  return with_context(path, [&] {
    std::ifstream f(path, std::ios::binary);
    PTQ_CHECK(f, IoError, "cannot open calibration table");
    std::ostringstream text;
    text << f.rdbuf();
    PTQ_CHECK(!f.bad(), IoError, "cannot read calibration table");
    return parse_table(text.str());
  });
}

CalibTable parse_calib_table(const std::string& text, const std::string& label) {
  return with_context(label, [&] { return parse_table(text); });
}

}  // namespace ptq::calib
