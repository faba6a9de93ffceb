// IR invariant checks, run by tests and debug builds after every change.
#include "ptq/ir/verify.h"

#include <algorithm>
#include <unordered_set>

#include "ptq/core/error.h"

namespace ptq::ir {
namespace {

#define PTQ_VERIFY(cond, ...) \
  PTQ_CHECK(cond, InternalError, "IR verify failed in graph '", g.name, "': ", __VA_ARGS__)

void verify_scoped(const Graph& g, const std::vector<const Graph*>& enclosing) {
  std::unordered_set<std::string> names;
  for (ValueId id : g.value_ids()) {
    const Value& v = g.value(id);
    PTQ_VERIFY(v.id == id, "value '", v.name, "' has id ", v.id, " stored at ", id);
    PTQ_VERIFY(names.insert(v.name).second, "duplicate value name '", v.name, "'");
    PTQ_VERIFY(g.find(v.name) == id, "name index out of sync for '", v.name, "'");
    for (const Use& u : v.uses) {
      PTQ_VERIFY(u.node >= 0 && static_cast<size_t>(u.node) < g.id_bound_nodes(), "value '",
                 v.name, "' lists a use by a nonexistent node");
      const Node& n = g.node(u.node);
      PTQ_VERIFY(n.alive, "value '", v.name, "' is used by removed ", n.label());
      PTQ_VERIFY(u.slot >= 0 && static_cast<size_t>(u.slot) < n.inputs.size() &&
                     n.inputs[static_cast<size_t>(u.slot)] == id,
                 "value '", v.name, "' lists a use by ", n.label(), " slot ", u.slot,
                 " that does not read it");
    }
    switch (v.kind) {
      case ValueKind::kNodeOutput: {
        PTQ_VERIFY(v.producer != kNone, "node output '", v.name, "' has no producer");
        const Node& p = g.node(v.producer);
        PTQ_VERIFY(p.alive && v.producer_slot >= 0 &&
                       static_cast<size_t>(v.producer_slot) < p.outputs.size() &&
                       p.outputs[static_cast<size_t>(v.producer_slot)] == id,
                   "value '", v.name, "' names a producer that does not output it");
        if (p.op_type == "Constant" && p.is_default_domain()) {
          const bool sparse = p.attr("sparse_value") != nullptr;
          PTQ_VERIFY(sparse || v.constant, "Constant output '", v.name, "' has no tensor");
        }
        break;
      }
      case ValueKind::kInitializer:
        PTQ_VERIFY(v.constant, "initializer '", v.name, "' has no tensor");
        PTQ_VERIFY(v.producer == kNone, "initializer '", v.name, "' has a producer");
        break;
      case ValueKind::kGraphInput:
        PTQ_VERIFY(v.producer == kNone, "graph input '", v.name, "' has a producer");
        PTQ_VERIFY(std::count(g.inputs.begin(), g.inputs.end(), id) == 1, "input '", v.name,
                   "' is not listed once in the graph inputs");
        break;
      case ValueKind::kOuterScope: {
        PTQ_VERIFY(!enclosing.empty(), "top-level graph reads outer-scope value '", v.name, "'");
        const bool found = std::any_of(enclosing.begin(), enclosing.end(),
                                       [&](const Graph* o) { return o->find(v.name) != kNone; });
        PTQ_VERIFY(found, "outer-scope value '", v.name, "' is defined by no enclosing graph");
        break;
      }
    }
  }
  for (NodeId id : g.node_ids()) {
    const Node& n = g.node(id);
    PTQ_VERIFY(n.id == id, n.label(), " stored at id ", id);
    for (size_t slot = 0; slot < n.inputs.size(); ++slot) {
      ValueId in = n.inputs[slot];
      if (in == kNone) continue;
      PTQ_VERIFY(in >= 0 && static_cast<size_t>(in) < g.id_bound_values() && g.value(in).alive,
                 n.label(), " input ", slot, " is a removed or nonexistent value");
      const auto& uses = g.value(in).uses;
      PTQ_VERIFY(std::count(uses.begin(), uses.end(), Use{id, static_cast<int32_t>(slot)}) == 1,
                 n.label(), " input '", g.value(in).name, "' is missing from its use list");
    }
    for (ValueId out : n.outputs) {
      if (out == kNone) continue;
      PTQ_VERIFY(g.value(out).alive && g.value(out).producer == id, n.label(), " output '",
                 g.value(out).name, "' does not name it as producer");
    }
  }
  auto check_list = [&](const std::vector<ValueId>& list, const char* what) {
    for (ValueId v : list)
      PTQ_VERIFY(v >= 0 && static_cast<size_t>(v) < g.id_bound_values() && g.value(v).alive,
                 what, " lists a removed or nonexistent value");
  };
  check_list(g.inputs, "graph inputs");
  check_list(g.outputs, "graph outputs");
  check_list(g.initializers, "graph initializers");
  check_list(g.value_info, "graph value_info");
  for (ValueId v : g.initializers)
    PTQ_VERIFY(g.value(v).kind == ValueKind::kInitializer, "initializer list holds '",
               g.value(v).name, "', which is not an initializer");
  try {
    (void)g.topological_order();
  } catch (const Error& e) {
    throw InternalError(str_cat("IR verify failed in graph '", g.name, "': ", e.message()));
  }
  std::vector<const Graph*> inner = enclosing;
  inner.push_back(&g);
  for (NodeId id : g.node_ids())
    for (const Graph* sub : Graph::subgraphs(g.node(id))) verify_scoped(*sub, inner);
}

#undef PTQ_VERIFY

}  // namespace

void verify(const Graph& graph) { verify_scoped(graph, {}); }

void verify(const Model& model) { verify(model.graph); }

void debug_verify([[maybe_unused]] const Graph& graph) {
#ifndef NDEBUG
  verify(graph);
#endif
}

}  // namespace ptq::ir
