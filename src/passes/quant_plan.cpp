// Quantization planning: apply the rules registry, propagate through passthrough ops, tie scales.
#include "ptq/passes/quant_plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <regex>
#include <set>
#include <utility>

#include "ptq/core/error.h"
#include "ptq/passes/activation_inputs.h"
#include "ptq/passes/mask_paths.h"
#include "ptq/passes/output_values.h"
#include "quant_rules/rule.h"

namespace ptq::passes {
namespace {

// Ops that are expensive enough that leaving them fp32 deserves a warning.
bool is_heavy(const std::string& op) {
  static const std::set<std::string> kHeavy = {"LSTM", "GRU", "RNN", "Einsum", "Conv", "ConvTranspose",
                                               "Gemm", "MatMul", "Attention", "LayerNormalization"};
  return kHeavy.count(op) > 0;
}

// Union-find over value ids with the earliest-positioned member as representative.
struct Ties {
  std::map<ir::ValueId, ir::ValueId> parent;
  const std::map<ir::ValueId, size_t>& position;
  // Iterative with path compression: a recursive find overflows the stack on a 100k-long tie chain.
  ir::ValueId find(ir::ValueId v) {
    ir::ValueId root = v;
    for (auto it = parent.find(root); it != parent.end() && it->second != root; it = parent.find(root))
      root = it->second;
    while (v != root) {
      auto it = parent.find(v);
      v = std::exchange(it->second, root);
    }
    return root;
  }
  void join(ir::ValueId a, ir::ValueId b) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    if (position.at(b) < position.at(a)) std::swap(a, b);
    parent[b] = a;
    parent.emplace(a, a);
  }
};

// std::regex matches by recursion, about half a KiB of stack per subject character: a
// 100k-character node name overflowed the stack (SIGSEGV). Names longer than this are refused
// with an error instead of matched (no real exporter writes such names).
constexpr size_t kMaxRegexSubject = 1024;

// Calibrated ranges beyond this magnitude (or not finite) give inf, NaN or meaningless scales
// (an inf activation such as Log(0), or a hand-edited table entry of 3e38): such tensors stay fp32.
constexpr float kMaxRangeMagnitude = 1e30f;

bool usable_range(const quant::Range& r) {
  return std::isfinite(r.min) && std::isfinite(r.max) && r.min <= r.max && std::fabs(r.min) <= kMaxRangeMagnitude &&
         std::fabs(r.max) <= kMaxRangeMagnitude;
}

// Whether v holds the model's input data, rearranged at most (Slice/Concat/Reshape/...: YOLOX's
// Focus stem): an image there fills the whole uint8 grid.
bool reads_input_data(const ir::Graph& g, ir::ValueId v) {
  static const std::set<std::string> kRearrange = {"Slice", "Concat", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
                                                   "Flatten", "Pad", "Split", "Resize", "Identity"};
  for (int depth = 0; depth < 8 && v != ir::kNone; ++depth) {
    if (g.is_input(v)) return true;
    const ir::Node* p = g.producer(v);
    if (!p || !p->is_default_domain() || !kRearrange.count(p->op_type) || p->inputs.empty()) return false;
    v = p->inputs[0];
  }
  return false;
}

}  // namespace

const ir::Node* find_attention(const ir::Graph& g) {
  static const std::set<std::string> kBetween = {"Add", "Sub", "Mul", "Div", "Where", "Cast", "Reshape"};
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    // ORT's transformer optimizer fuses the whole block into one com.microsoft node.
    if (n.domain == "com.microsoft" && (n.op_type == "Attention" || n.op_type == "MultiHeadAttention")) return &n;
    if (n.op_type != "Softmax" || !n.is_default_domain() || n.inputs.empty()) continue;
    // Walk back from the Softmax through scaling and masking (a few steps at most).
    std::vector<ir::ValueId> frontier = {n.inputs[0]};
    for (int depth = 0; depth < 6 && !frontier.empty(); ++depth) {
      std::vector<ir::ValueId> next;
      for (ir::ValueId v : frontier) {
        const ir::Node* p = v == ir::kNone ? nullptr : g.producer(v);
        if (!p) continue;
        // ORT's level-2 optimization turns Q @ K^T * scale into com.microsoft FusedMatMul; torch
        // exporters may write it as a 2-operand Einsum.
        const bool product = p->is_default_domain() ? p->op_type == "MatMul" || p->op_type == "Einsum"
                                                    : p->domain == "com.microsoft" && p->op_type == "FusedMatMul";
        if (product && p->inputs.size() == 2 && !g.value(p->inputs[0]).is_constant() &&
            !g.value(p->inputs[1]).is_constant())
          return &n;
        if (p->is_default_domain() && kBetween.count(p->op_type))
          for (ir::ValueId in : p->inputs)
            if (in != ir::kNone && !g.value(in).is_constant()) next.push_back(in);
      }
      frontier = std::move(next);
    }
  }
  return nullptr;
}

bool transformer_placement(const ir::Graph& g, const quant::QuantConfig& config) {
  return config.preset == quant::Preset::kTransformer ||
         (config.preset == quant::Preset::kAuto && find_attention(g) != nullptr);
}

namespace {

// Concat and pools only move or pool what they read: quantized, they pay for themselves only when
// a quantized op reads their output (through passthrough ops or further such nodes). Where only
// fp32 nodes do — YOLOX's Focus stem Concat before a Conv the placement search keeps fp32 — their
// Q/DQ pairs only round the data (there: the input image, twice) and cost two passes in ORT, so
// they stay fp32 too. Consumers come before producers in reverse topological order: one pass.
void drop_unread_data_movement(const ir::Graph& g, const std::vector<ir::NodeId>& order, const NodeFilter& filter,
                               QuantPlan& plan) {
  const auto movement = [](const NodeQuant& q) {
    return std::strcmp(q.rule, "rule_concat") == 0 || std::strcmp(q.rule, "rule_pool") == 0;
  };
  std::vector<const NodeQuant*> of(g.id_bound_nodes(), nullptr);
  std::vector<bool> read(g.id_bound_values(), false);  // read quantized by a node kept quantized
  for (const NodeQuant& q : plan.nodes) {
    of[static_cast<size_t>(q.node)] = &q;
    if (movement(q)) continue;
    for (int32_t slot : q.activation_inputs) read[static_cast<size_t>(g.node(q.node).inputs[static_cast<size_t>(slot)])] = true;
  }
  for (ir::ValueId v : g.outputs) read[static_cast<size_t>(v)] = true;  // as before: no change at outputs
  std::set<ir::NodeId> dropped;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const ir::Node& n = g.node(*it);
    bool out_read = false;
    for (ir::ValueId o : n.outputs) out_read = out_read || (o != ir::kNone && read[static_cast<size_t>(o)]);
    const NodeQuant* q = of[static_cast<size_t>(*it)];
    if (q && movement(*q)) {
      if (!out_read) {
        dropped.insert(*it);
        continue;
      }
      for (int32_t slot : q->activation_inputs) read[static_cast<size_t>(n.inputs[static_cast<size_t>(slot)])] = true;
    } else if (!q && out_read && n.is_default_domain() && is_passthrough(n.op_type) && filter.admits(*it) &&
               !n.inputs.empty() && n.inputs[0] != ir::kNone) {
      read[static_cast<size_t>(n.inputs[0])] = true;
    }
  }
  if (dropped.empty()) return;
  std::vector<NodeQuant> kept;
  for (NodeQuant& q : plan.nodes) {
    if (!dropped.count(q.node)) {
      kept.push_back(std::move(q));
      continue;
    }
    plan.fp32.push_back(str_cat(g.node(q.node).label(), ": read only by fp32 nodes, so it stays fp32 too"));
  }
  plan.nodes = std::move(kept);
}

// The bias Add of a MatMul output (Add(y, b) or Add(b, y), b a constant 1-D float with one value
// per column of the 2-D constant B): the slot of b, or -1.
int32_t bias_add_slot(const ir::Graph& g, const ir::Node& matmul, const ir::Node& add) {
  if (!add.is_default_domain() || add.op_type != "Add" || add.inputs.size() != 2 || matmul.inputs.size() < 2) return -1;
  const Tensor* w = g.constant(matmul.inputs[1]);
  for (int32_t slot = 0; slot < 2; ++slot) {
    const Tensor* b = g.constant(add.inputs[static_cast<size_t>(slot)]);
    if (add.inputs[static_cast<size_t>(1 - slot)] == matmul.outputs[0] && b && w && w->rank() == 2 &&
        b->dtype() == DType::kFloat && b->rank() == 1 && b->dims()[0] == w->dims()[1])
      return slot;
  }
  return -1;
}

// A Gemm or MatMul with constant weights whose output reaches a graph output unchanged and no
// quantized node reads (a classifier's logits) keeps a float output: ORT runs DQ -> Gemm (no Q)
// as QGemm writing float, so the integer kernel stays and the logits are not rounded to 256
// levels, which ties close scores (mobilenetv2: agreement with fp32 96.8 -> 97.1 %). A MatMul
// counts only with a bias Add as its one reader, whose bias becomes int32 codes (bias_node): ORT
// fuses MatMul and Add into a Gemm (2-D input) and, with a float bias, ran that Gemm in fp32 on
// weights dequantized at every run (4 ms more on mobilenetv2); with the int32 bias, a QGemm.
// Logits read by a Softmax are not included: on ppocr-cls that flipped --method auto's choice on
// its 4 rows of 2-class probabilities and measured worse (docs/quantization.md).
void float_logits(const ir::Graph& g, QuantPlan& plan) {
  const std::set<ir::ValueId> outputs = output_values(g);
  std::vector<const NodeQuant*> of(g.id_bound_nodes(), nullptr);
  for (const NodeQuant& q : plan.nodes) of[static_cast<size_t>(q.node)] = &q;
  const auto read_quantized = [&](ir::ValueId v) {
    for (const ir::Use& u : g.value(v).uses) {
      const ir::Node& r = g.node(u.node);
      if (is_passthrough(r.op_type) || r.op_type == "Concat") return true;  // they would carry a Q on
      const NodeQuant* rq = of[static_cast<size_t>(u.node)];
      if (rq && std::find(rq->activation_inputs.begin(), rq->activation_inputs.end(), u.slot) != rq->activation_inputs.end())
        return true;
    }
    return false;
  };
  for (NodeQuant& q : plan.nodes) {
    const ir::Node& n = g.node(q.node);
    if (!q.quantize_output || q.weights.empty() || q.weights.front().slot != 1 || n.outputs.empty()) continue;
    const ir::ValueId y = n.outputs[0];
    if (!outputs.count(y)) continue;
    if (n.op_type == "Gemm") {
      const bool biased = n.inputs.size() > 2 && n.inputs[2] != ir::kNone;
      if ((biased && q.bias_slot != 2) || read_quantized(y)) continue;
      q.quantize_output = false;
    } else if (n.op_type == "MatMul") {
      if (g.value(y).uses.size() != 1 || g.is_output(y)) continue;
      const ir::Use u = g.value(y).uses.front();
      const int32_t slot = bias_add_slot(g, n, g.node(u.node));
      if (slot < 0 || of[static_cast<size_t>(u.node)]) continue;  // its one reader, the Add, is float
      q.quantize_output = false;
      q.bias_node = u.node;
      q.bias_slot = slot;
    }
  }
}

}  // namespace

QuantPlan plan_quantization(const ir::Graph& g, const quant::QuantConfig& config, const RangeMap& ranges,
                            const NodeFilter& filter) {
  QuantPlan plan;
  // Mask paths first: their notes say more than "beyond 1e30" would.
  std::set<std::string> masked;
  std::map<ir::ValueId, size_t> carried;  // seed -> tensors computed from it
  const std::vector<MaskTensor> masks = find_mask_paths(g, ranges);
  for (const MaskTensor& m : masks) {
    masked.insert(g.value(m.value).name);
    if (m.origin != m.value) ++carried[m.origin];
  }
  for (const MaskTensor& m : masks)
    if (m.origin == m.value)
      plan.fp32.push_back(str_cat("tensor '", g.value(m.value).name, "': mask-like, ", m.why, "; it",
                                  carried[m.value] ? str_cat(" and ", carried[m.value], " tensors computed from it") : "",
                                  " stay fp32 (a mask path ends at a Softmax)"));
  // Tensors with an unusable range are not float activations for the rules: every node reading
  // or writing one stays fp32, and a warning names the tensor.
  RangeMap usable;
  for (const auto& [name, r] : ranges) {
    if (masked.count(name)) continue;
    if (usable_range(r)) {
      usable.emplace_hint(usable.end(), name, r);
    } else {
      plan.fp32.push_back(str_cat("tensor '", name, "': calibrated range [", r.min, ", ", r.max,
                                  "] is not finite or beyond 1e30; nodes reading or writing it stay fp32"));
    }
  }
  const ir::Node* attention = config.preset == quant::Preset::kAuto ? find_attention(g) : nullptr;
  const bool transformer = config.preset == quant::Preset::kTransformer || attention;
  if (config.preset == quant::Preset::kTransformer)
    plan.placement = "transformer (--preset transformer)";
  else if (attention)
    plan.placement = str_cat("transformer (attention found at ", attention->label(), "; --preset cnn overrides)");
  else
    plan.placement = "cnn";
  const RuleContext ctx{g, config, usable, transformer};
  std::optional<std::regex> exclude;
  if (!config.exclude_nodes.empty()) {
    try {
      exclude.emplace(config.exclude_nodes, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw UsageError(str_cat("--exclude-nodes: invalid regular expression '", config.exclude_nodes,
                               "': ", e.what()));
    }
  }
  const auto excluded = [&](const ir::Node& n) {
    if (std::find(config.exclude_ops.begin(), config.exclude_ops.end(), n.op_type) != config.exclude_ops.end())
      return true;
    if (!exclude) return false;
    PTQ_CHECK(n.name.size() <= kMaxRegexSubject, UsageError, "--exclude-nodes: node '", n.name.substr(0, 40),
              "...' has a name of ", n.name.size(), " characters; regular expressions match names of at most ",
              kMaxRegexSubject, " (use --exclude-ops instead)");
    return std::regex_search(n.name, *exclude);
  };

  // Positions give every decision a deterministic order: graph inputs, then node outputs.
  std::map<ir::ValueId, size_t> position;
  for (ir::ValueId v : g.inputs) position.emplace(v, position.size());
  const std::vector<ir::NodeId> order = g.topological_order();
  for (ir::NodeId id : order)
    for (ir::ValueId v : g.node(id).outputs)
      if (v != ir::kNone) position.emplace(v, position.size());

  std::set<ir::ValueId> acts;
  Ties ties{{}, position};
  for (ir::NodeId id : order) {
    const ir::Node& n = g.node(id);
    if (!ir::Graph::subgraphs(n).empty()) {
      plan.fp32.push_back(str_cat(n.label(), ": control flow; its subgraphs stay fp32"));
      continue;
    }
    if (!n.is_default_domain()) {
      plan.fp32.push_back(str_cat(n.label(), ": custom domain '", n.domain, "'"));
      continue;
    }
    const QuantRule* rule = find_rule(n.op_type);
    // Transformer placement, and CNN placement unless --elementwise int8, keeps Add and Mul fp32
    // by design (quant::QuantConfig::quantize_elementwise), except a SiLU's Mul: QLinearSigmoid ->
    // QLinearMul is what keeps YOLOX's int8 model faster than fp32 in ORT, and a written-out
    // HardSwish's Add and Mul (--hardswish int8). No note per node.
    const auto int8_activation = [&] {
      return silu_operand(g, n) != ir::kNone || (config.quantize_hardswish && decomposed_hardswish(g, n).has_value());
    };
    if (rule && (n.op_type == "Add" || n.op_type == "Mul") &&
        (transformer || (!config.quantize_elementwise && !int8_activation())))
      continue;
    // Shape arithmetic (an int64 Concat of dimensions) is nothing to quantize or to warn about.
    // Calibration observed every float tensor, so an output without a range is not float.
    if (rule && !n.outputs.empty() && n.outputs[0] != ir::kNone && !ranges.count(g.value(n.outputs[0]).name))
      continue;
    // A passthrough op with a rule (Gather: its rule quantizes constant tables) over an
    // activation is left to the passthrough propagation below.
    if (rule && is_passthrough(n.op_type) && !n.inputs.empty() && !ctx.is_float_constant(n.inputs[0])) continue;
    if (!rule) {
      // Transformer placement keeps LayerNormalization fp32 by design (plan.placement).
      if (is_heavy(n.op_type) && !(transformer && n.op_type == "LayerNormalization"))
        plan.fp32.push_back(str_cat(n.label(), ": no integer kernel"));
      continue;
    }
    if (excluded(n)) {
      plan.fp32.push_back(str_cat(n.label(), ": excluded by --exclude-nodes/--exclude-ops"));
      continue;
    }
    if (!filter.admits(id)) {
      if (filter.fp32.count(id))
        plan.fp32.push_back(str_cat(n.label(), filter.searched.count(id) ? ": kept fp32 by the placement search (--effort)"
                                                                          : ": returned to fp32 by --auto-fallback"));
      continue;
    }
    NodeQuant q;
    q.node = id;
    q.rule = rule->name;
    const std::string reason = rule->apply(ctx, n, q);
    if (!reason.empty()) {
      plan.fp32.push_back(str_cat(n.label(), ": ", reason));
      continue;
    }
    const bool reduce = config.reduce_range == quant::ReduceRange::kOn ||
                        (config.reduce_range == quant::ReduceRange::kAuto && config.activation_type == DType::kUint8 &&
                         config.weight_type == DType::kInt8 && !n.inputs.empty() && reads_input_data(g, n.inputs[0]));
    for (WeightSpec& w : q.weights) w.reduce_range = reduce && !w.as_activation;
    q.quantize_output = q.quantize_output && ctx.is_float_activation(n.outputs[0]);
    // Gather over a quantized table: its output takes the table's exact range (same scale and
    // zero point on both sides, so ORT drops the pair and gathers integers).
    if (n.op_type == "Gather" && q.quantize_output) {
      const Tensor* t = g.constant(n.inputs[0]);
      const float* p = t->data<float>();
      const auto [lo, hi] = std::minmax_element(p, p + t->numel());
      plan.fixed_ranges.emplace(n.outputs[0], quant::Range{*lo, *hi});
    }
    plan.nodes.push_back(std::move(q));
  }
  drop_unread_data_movement(g, order, filter, plan);
  if (!transformer) float_logits(g, plan);
  for (const NodeQuant& q : plan.nodes) {
    const ir::Node& n = g.node(q.node);
    for (int32_t slot : q.activation_inputs) acts.insert(n.inputs[static_cast<size_t>(slot)]);
    if (!q.quantize_output) continue;
    acts.insert(n.outputs[0]);
    if (q.share_input_scale) ties.join(n.inputs[0], n.outputs[0]);
    if (n.op_type == "Concat")
      for (ir::ValueId in : n.inputs) ties.join(n.outputs[0], in);
  }
  // Passthrough ops carry their input's quantization to their outputs, so ORT can run them on
  // integers; repeat until nothing changes (chains like Reshape -> Transpose).
  for (bool changed = true; changed;) {
    changed = false;
    for (ir::NodeId id : order) {
      const ir::Node& n = g.node(id);
      if (!n.is_default_domain() || !is_passthrough(n.op_type) || excluded(n) || !filter.admits(id)) continue;
      if (n.inputs.empty() || !acts.count(n.inputs[0])) continue;
      for (ir::ValueId out : n.outputs) {
        if (out == ir::kNone || !ctx.is_float_activation(out)) continue;
        // Already quantized (a quantized node reads it): values-preserving ops still tie, or ORT
        // runs DQ -> op -> Q in float to requantize what is the same set of values.
        if (acts.count(out) && (!preserves_values(n.op_type) || ties.find(out) == ties.find(n.inputs[0]))) continue;
        acts.insert(out);
        ties.join(n.inputs[0], out);
        changed = true;
      }
    }
  }
  plan.activations.assign(acts.begin(), acts.end());
  std::sort(plan.activations.begin(), plan.activations.end(),
            [&](ir::ValueId a, ir::ValueId b) { return position.at(a) < position.at(b); });
  for (ir::ValueId v : plan.activations) {
    const ir::ValueId rep = ties.find(v);
    if (rep != v) plan.tied.emplace(v, rep);
    const ir::Node* p = g.producer(v);
    // Softmax outputs are probabilities: fixed [0, 1] as ORT does, whatever calibration saw.
    if (p && p->op_type == "Softmax") plan.fixed_ranges.emplace(v, quant::Range{0.f, 1.f});
  }
  return plan;
}

std::vector<std::string> unmatched_exclusions(const ir::Graph& g, const quant::QuantConfig& c) {
  std::vector<std::string> notes;
  std::set<std::string> ops;
  bool name_matched = c.exclude_nodes.empty();
  const std::regex re(c.exclude_nodes.empty() ? std::string("^$") : c.exclude_nodes, std::regex::ECMAScript);
  for (ir::NodeId id : g.node_ids()) {
    const ir::Node& n = g.node(id);
    ops.insert(n.op_type);
    // plan_quantization has refused names too long for std::regex already.
    if (!name_matched && std::regex_search(n.name, re)) name_matched = true;
  }
  for (const std::string& op : c.exclude_ops)
    if (!ops.count(op)) notes.push_back(str_cat("--exclude-ops: no node has op type '", op, "' (ONNX spelling, e.g. Conv)"));
  if (!name_matched)
    notes.push_back(str_cat("--exclude-nodes: '", c.exclude_nodes, "' matches no node name (see quantize inspect)"));
  return notes;
}

}  // namespace ptq::passes
