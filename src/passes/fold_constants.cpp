// Constant folding: nodes whose inputs are all constants run once in the reference runtime and
// become initializers, so weights computed by small subgraphs look like plain weights.
#include <algorithm>
#include <set>

#include "ptq/core/error.h"
#include "ptq/passes/prepare.h"
#include "ptq/runtime/interpreter.h"
#include "rewrite.h"

namespace ptq::passes {
namespace {

// Folding these would change what the model means or could allocate without bound.
bool foldable_op(const ir::Node& n) {
  static const std::set<std::string> kKeep = {
      "Constant",        // already a constant
      "QuantizeLinear",  // Q/DQ pairs in the input model are its own quantization: leave them
      "DequantizeLinear", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
      "Multinomial", "Bernoulli"};
  return n.is_default_domain() && !kKeep.count(n.op_type) && ir::Graph::subgraphs(n).empty();
}

// A folded tensor may not be much larger than this (ConstantOfShape/Expand/Tile could blow up).
constexpr size_t kMaxFoldedBytes = size_t{64} << 20;

// Runs one node on its constant inputs; empty when the runtime cannot.
std::vector<Tensor> evaluate(const ir::Model& model, const ir::Node& n) {
  ir::Model tiny;
  tiny.ir_version = model.ir_version;
  tiny.opset_import = model.opset_import;
  ir::Graph& g = tiny.graph;
  const ir::Graph& src = model.graph;
  ir::Node copy;
  copy.op_type = n.op_type;
  copy.domain = n.domain;
  copy.attributes = n.attributes;
  for (ir::ValueId in : n.inputs) {
    if (in == ir::kNone) {
      copy.inputs.push_back(ir::kNone);
      continue;
    }
    const std::string& name = src.value(in).name;
    ir::ValueId v = g.find(name);
    if (v == ir::kNone) v = g.add_initializer(name, *src.constant(in));
    copy.inputs.push_back(v);
  }
  for (ir::ValueId out : n.outputs)
    copy.outputs.push_back(out == ir::kNone ? ir::kNone : g.add_value(src.value(out).name, ir::ValueKind::kNodeOutput));
  g.add_node(std::move(copy));
  for (ir::ValueId out : g.node(0).outputs)
    if (out != ir::kNone) g.outputs.push_back(out);
  try {
    runtime::InterpreterOptions options;
    options.threads = 1;
    runtime::Interpreter interpreter(tiny, options);
    return interpreter.run({});
  } catch (const Error&) {
    return {};  // no kernel, or an op that rejects these inputs: leave it to run later
  }
}

}  // namespace

void fold_constants(ir::Model& model, Changes& changes) {
  ir::Graph& g = model.graph;
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    if (!foldable_op(n) || n.inputs.empty()) continue;
    const bool all_constant = std::all_of(n.inputs.begin(), n.inputs.end(),
                                          [&](ir::ValueId v) { return v == ir::kNone || g.constant(v); });
    const bool outputs_movable = std::all_of(n.outputs.begin(), n.outputs.end(), [&](ir::ValueId v) {
      return v == ir::kNone || (!g.is_output(v) && !is_captured(g, v));
    });
    if (!all_constant || !outputs_movable) continue;
    std::vector<Tensor> results = evaluate(model, n);
    if (results.empty()) continue;
    size_t bytes = 0;
    for (const Tensor& t : results) bytes += t.nbytes();
    if (bytes > kMaxFoldedBytes) continue;
    const std::string label = n.label();
    // Each output becomes an initializer under the same name.
    std::vector<std::pair<std::string, ir::ValueId>> renamed;
    size_t r = 0;
    for (ir::ValueId out : std::vector<ir::ValueId>(g.node(id).outputs)) {
      if (out == ir::kNone) continue;
      Tensor t = std::move(results[r++]);
      t.name.clear();
      const std::string name = g.value(out).name;
      const ir::ValueId c = g.add_initializer(g.unique_name(name + "_folded"), std::move(t));
      g.replace_all_uses(out, c);
      renamed.emplace_back(name, c);
    }
    g.remove_node(id);
    for (const auto& [name, c] : renamed) g.rename_value(c, name);
    changes.push_back(str_cat("folded constant ", label));
  }
}

}  // namespace ptq::passes
