// Keyword options from the Python layer (ptq/__init__.py): typed reads, every key must be used.
#pragma once

#include <pybind11/pybind11.h>

#include <optional>
#include <set>
#include <string>

#include "ptq/core/error.h"

namespace ptq::python {

class Options {
 public:
  explicit Options(pybind11::dict d) : d_(std::move(d)) {}
  // The value of `key`, or nullopt when it is absent or None.
  template <typename T>
  std::optional<T> opt(const char* key) {
    used_.insert(key);
    if (!d_.contains(key) || d_[key].is_none()) return std::nullopt;
    return d_[key].cast<T>();
  }
  template <typename T>
  T get(const char* key, T fallback) {
    return opt<T>(key).value_or(std::move(fallback));
  }
  // A key the C++ side does not read is a bug in the Python layer.
  void check_all_used() const {
    for (auto kv : d_) {
      const std::string k = pybind11::str(kv.first);
      PTQ_CHECK(used_.count(k), InternalError, "unknown option '", k, "'");
    }
  }

 private:
  pybind11::dict d_;
  std::set<std::string> used_;
};

}  // namespace ptq::python
