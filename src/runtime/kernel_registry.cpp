// KernelRegistry: lookup by opset range, and the built-in table assembled from ops.inc.
#include "ptq/runtime/kernel_registry.h"

#include "ptq/core/error.h"

// One declaration per op file (X-macro, see ops/ops.inc).
#define PTQ_OP_FILE(name) namespace ptq::runtime { void register_##name(KernelRegistry&); }
#include "ops/ops.inc"
#undef PTQ_OP_FILE

namespace ptq::runtime {

std::string canonical_domain(const std::string& domain) {
  return domain.empty() ? std::string("ai.onnx") : domain;
}

void KernelRegistry::add(const std::string& domain, const std::string& op_type, int64_t since,
                         int64_t until, KernelFactory factory) {
  PTQ_ASSERT(factory != nullptr && since <= until, op_type);
  entries_[{canonical_domain(domain), op_type}].push_back(Entry{since, until, factory});
}

KernelFactory KernelRegistry::find(const std::string& domain, const std::string& op_type,
                                   int64_t opset) const {
  auto it = entries_.find({canonical_domain(domain), op_type});
  if (it == entries_.end()) return nullptr;
  for (const Entry& e : it->second)
    if (opset >= e.since_version && opset <= e.until_version) return e.factory;
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> KernelRegistry::ops() const {
  std::vector<std::pair<std::string, std::string>> r;
  for (const auto& [key, list] : entries_) r.push_back(key);
  return r;
}

const KernelRegistry& KernelRegistry::builtin() {
  static const KernelRegistry registry = [] {
    KernelRegistry r;
#define PTQ_OP_FILE(name) register_##name(r);
#include "ops/ops.inc"
#undef PTQ_OP_FILE
    return r;
  }();
  return registry;
}

}  // namespace ptq::runtime
