// Kernel lookup by (domain, op_type, opset range): plain data filled by explicit register_* calls.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ptq/runtime/kernel.h"

namespace ptq::runtime {

class KernelRegistry {
 public:
  struct Entry {
    int64_t since_version = 1;
    int64_t until_version = INT64_MAX;  // inclusive
    KernelFactory factory = nullptr;
  };
  // Adds a kernel for `op_type` in `domain` ("" means ai.onnx) valid for opsets [since, until].
  void add(const std::string& domain, const std::string& op_type, int64_t since, int64_t until,
           KernelFactory factory);
  void add(const std::string& op_type, KernelFactory factory) { add("", op_type, 1, INT64_MAX, factory); }
  // nullptr when no kernel covers the opset.
  KernelFactory find(const std::string& domain, const std::string& op_type, int64_t opset) const;
  // Every (domain, op_type) with at least one kernel, sorted.
  std::vector<std::pair<std::string, std::string>> ops() const;

  // The registry with every built-in kernel (ops.inc), built once.
  static const KernelRegistry& builtin();

 private:
  std::map<std::pair<std::string, std::string>, std::vector<Entry>> entries_;
};

// "ai.onnx" for "" and "ai.onnx", otherwise the domain itself.
std::string canonical_domain(const std::string& domain);

}  // namespace ptq::runtime
