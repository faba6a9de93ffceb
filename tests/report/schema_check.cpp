// The JSON Schema subset checker used to validate reports against docs/report-schema.json.
#include "schema_check.h"

namespace ptq::test {
namespace {

bool has_type(const nlohmann::json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  if (t == "integer") return v.is_number_integer() || v.is_number_unsigned();
  if (t == "number") return v.is_number();
  return false;
}

}  // namespace

std::string check_schema(const nlohmann::json& v, const nlohmann::json& s, const std::string& path) {
  if (s.contains("type")) {
    bool ok = false;
    if (s["type"].is_array()) {
      for (const auto& t : s["type"]) ok = ok || has_type(v, t.get<std::string>());
    } else {
      ok = has_type(v, s["type"].get<std::string>());
    }
    if (!ok) return path + ": expected type " + s["type"].dump() + ", got " + v.dump().substr(0, 80);
  }
  if (s.contains("const") && v != s["const"]) return path + ": expected " + s["const"].dump();
  if (s.contains("enum")) {
    bool found = false;
    for (const auto& e : s["enum"]) found = found || e == v;
    if (!found) return path + ": " + v.dump() + " not in " + s["enum"].dump();
  }
  if (s.contains("minimum") && v.is_number() && v.get<double>() < s["minimum"].get<double>())
    return path + ": below minimum " + s["minimum"].dump();
  if (v.is_object()) {
    if (s.contains("required"))
      for (const auto& k : s["required"])
        if (!v.contains(k.get<std::string>())) return path + ": missing key '" + k.get<std::string>() + "'";
    if (s.contains("properties"))
      for (const auto& [k, sub] : s["properties"].items())
        if (v.contains(k))
          if (std::string e = check_schema(v[k], sub, path + "." + k); !e.empty()) return e;
  }
  if (v.is_array() && s.contains("items"))
    for (size_t i = 0; i < v.size(); ++i)
      if (std::string e = check_schema(v[i], s["items"], path + "[" + std::to_string(i) + "]"); !e.empty()) return e;
  return "";
}

}  // namespace ptq::test
