// A small JSON Schema checker for the report tests: type, required, properties, items, enum,
// const, minimum (the subset docs/report-schema.json uses).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ptq::test {

// "" when `doc` matches `schema`, otherwise the first mismatch with its JSON path.
std::string check_schema(const nlohmann::json& doc, const nlohmann::json& schema, const std::string& path = "$");

}  // namespace ptq::test
