// Ground-truth class labels for evaluation samples: a TSV of `file<TAB>class_index` lines.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace ptq::report {

class Labels {
 public:
  // Reads `path`: one `file<TAB>class_index` per line; a first line whose index is not a number is
  // a header; empty lines are skipped. IoError names the file and line on anything else.
  static Labels load(const std::string& path);
  // The class of a sample file: the listed path that is the longest suffix of `source`
  // ("eval/0000.npy" matches "data/eval/0000.npy", so splits may reuse file names), else its base
  // name, else its base name without extension (so "x.npy" made from "x.jpg" finds its label).
  // A base name listed under several directories matches only through its directories.
  std::optional<long> find(const std::string& source) const;
  size_t size() const { return by_path_.size(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, long> by_path_;  // as listed, '/'-separated
  std::map<std::string, long> by_name_;  // base names listed once
  std::map<std::string, long> by_stem_;  // stems listed once
};

}  // namespace ptq::report
