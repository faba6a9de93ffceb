// Label TSV reader and base-name matching of sample files.
#include "ptq/report/labels.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "ptq/core/error.h"

namespace ptq::report {
namespace {

std::string base_name(const std::string& p) { return std::filesystem::path(p).filename().string(); }
std::string stem(const std::string& p) { return std::filesystem::path(p).stem().string(); }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\n')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

}  // namespace

Labels Labels::load(const std::string& path) {
  Labels l;
  l.path_ = path;
  std::ifstream in(path);
  PTQ_CHECK(in, IoError, path, ": cannot read the labels file");
  std::string line;
  size_t line_no = 0;
  std::map<std::string, std::vector<long>> names, stems;
  while (std::getline(in, line)) {
    ++line_no;
    line = trim(line);
    if (line.empty()) continue;
    const size_t tab = line.rfind('\t');
    PTQ_CHECK(tab != std::string::npos, IoError, path, ":", line_no, ": expected 'file<TAB>class_index'");
    const std::string file = trim(line.substr(0, tab));
    const std::string index = trim(line.substr(tab + 1));
    char* end = nullptr;
    const long cls = std::strtol(index.c_str(), &end, 10);
    const bool numeric = !index.empty() && end && *end == '\0';
    if (!numeric && line_no == 1 && l.by_path_.empty()) continue;  // header
    PTQ_CHECK(numeric && cls >= 0, IoError, path, ":", line_no, ": class index '", index,
              "' is not a non-negative integer");
    PTQ_CHECK(!file.empty(), IoError, path, ":", line_no, ": empty file name");
    const std::string rel = std::filesystem::path(file).lexically_normal().generic_string();
    PTQ_CHECK(l.by_path_.emplace(rel, cls).second, IoError, path, ":", line_no, ": '", rel,
              "' is listed twice");
    names[base_name(rel)].push_back(cls);
    stems[stem(rel)].push_back(cls);
  }
  PTQ_CHECK(!l.by_path_.empty(), IoError, path, ": no labels");
  // Base names and stems serve as keys only where they are unambiguous.
  for (const auto& [k, v] : names)
    if (v.size() == 1) l.by_name_.emplace(k, v[0]);
  for (const auto& [k, v] : stems)
    if (v.size() == 1) l.by_stem_.emplace(k, v[0]);
  return l;
}

std::optional<long> Labels::find(const std::string& source) const {
  // Longest listed suffix of the source path wins.
  const std::filesystem::path p = std::filesystem::path(source).lexically_normal();
  std::vector<std::string> parts;
  for (const auto& part : p) parts.push_back(part.generic_string());
  for (size_t start = 0; start < parts.size(); ++start) {
    std::string suffix;
    for (size_t i = start; i < parts.size(); ++i) suffix += (suffix.empty() ? "" : "/") + parts[i];
    if (auto it = by_path_.find(suffix); it != by_path_.end()) return it->second;
  }
  if (auto it = by_name_.find(base_name(source)); it != by_name_.end()) return it->second;
  if (auto it = by_stem_.find(stem(source)); it != by_stem_.end()) return it->second;
  return std::nullopt;
}

}  // namespace ptq::report
