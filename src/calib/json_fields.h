// Internal: JSON fields the calibration table and the statistics files share (parameters, integers).
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "ptq/calib/methods.h"
#include "ptq/core/error.h"

namespace ptq::calib::json_fields {

using nlohmann::json;

// An integer field (or `fallback` when absent). nlohmann's get<int>() casts a float such as 1e73
// straight to int, which is undefined behaviour (found by the calib_table fuzz target).
template <typename T>
T integer(const json& j, const std::string& key, T fallback) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(key);
  PTQ_CHECK(v.is_number_integer(), IoError, "key '", key, "' must be an integer");
  const bool ok = v.is_number_unsigned()
                      ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                      : v.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                            (v.get<int64_t>() < 0 || uint64_t(v.get<int64_t>()) <= uint64_t(std::numeric_limits<T>::max()));
  PTQ_CHECK(ok, IoError, "key '", key, "' is out of range");
  return v.is_number_unsigned() ? T(v.get<uint64_t>()) : T(v.get<int64_t>());
}

json params_json(const CalibParams& p);
// Missing keys keep their defaults; throws std::runtime_error/json::exception on bad values.
CalibParams parse_params(const json& p);

}  // namespace ptq::calib::json_fields
