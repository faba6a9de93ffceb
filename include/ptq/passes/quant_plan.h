// Which tensors get Q/DQ, which weights and biases are quantized, and which nodes stay fp32.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ptq/ir/graph.h"
#include "ptq/quant/quant_config.h"

namespace ptq::passes {

struct WeightSpec {
  int32_t slot = 0;
  int64_t axis = -1;  // per-channel axis, -1 for per-tensor
  // Quantized like an activation (activation type, per-tensor): the constant operand of
  // Add/Mul, which ORT's QLinearAdd/QLinearMul need in the same type as the other input.
  bool as_activation = false;
  bool reduce_range = false;  // 7-bit (quant::QuantConfig::reduce_range decides per node)
};

// One quantized node: what its rule decided.
struct NodeQuant {
  ir::NodeId node = ir::kNone;
  const char* rule = "";
  std::vector<int32_t> activation_inputs;  // slots whose values get a Q->DQ pair
  std::vector<WeightSpec> weights;         // constant inputs stored as int8 + DequantizeLinear
  int32_t bias_slot = -1;                  // int32 bias, scale = s_x * s_w (input 0 and weight 0)
  ir::NodeId bias_node = ir::kNone;        // the node whose input bias_slot is (kNone: this node)
  bool quantize_output = false;            // output 0 gets a Q->DQ pair
  bool share_input_scale = false;          // outputs use input 0's scale and zero point
};

// Union of ranges.
inline quant::Range range_union(quant::Range a, quant::Range b) {
  return {a.min < b.min ? a.min : b.min, a.max > b.max ? a.max : b.max};
}

struct QuantPlan {
  std::vector<NodeQuant> nodes;            // in topological order
  // Activation tensors that get one Q->DQ pair each, in topological order of their producers.
  std::vector<ir::ValueId> activations;
  // Tensors that must share one scale and zero point (passthrough ops, Concat), as
  // tensor -> representative; the representative's range is the union of the group's ranges.
  std::map<ir::ValueId, ir::ValueId> tied;
  // Tensors whose quantization parameters are fixed whatever the data (Softmax outputs: [0, 1]).
  std::map<ir::ValueId, quant::Range> fixed_ranges;
  // Nodes left in fp32, with the reason ("node 'x' (LSTM): no integer kernel").
  std::vector<std::string> fp32;
  // The placement used and why ("transformer (attention at node 'x')"; "cnn").
  std::string placement;
};

// The Softmax node of an attention block (Softmax over a MatMul, Einsum or com.microsoft
// FusedMatMul of two computed tensors, through scaling and mask ops) or a fused com.microsoft
// Attention/MultiHeadAttention node, or nullptr: what --preset auto takes for a transformer.
const ir::Node* find_attention(const ir::Graph& graph);
// Whether plan_quantization uses transformer placement: --preset transformer, or --preset auto
// on a graph with attention. Pipelines ask it too (SmoothQuant's default follows it).
bool transformer_placement(const ir::Graph& graph, const quant::QuantConfig& config);

// Ranges by tensor name, from calibration (or a loaded calibration table).
using RangeMap = std::map<std::string, quant::Range>;

// Which nodes may be quantized, by node id, on top of the config's excludes (the accuracy
// report: one node at a time for sensitivity, or everything but the nodes returned to fp32).
struct NodeFilter {
  bool use_only = false;      // when set, only nodes in `only` are quantized
  std::set<ir::NodeId> only;
  std::set<ir::NodeId> fp32;      // never quantized
  std::set<ir::NodeId> searched;  // those of `fp32` the placement search chose (the reason given)
  bool admits(ir::NodeId id) const { return !fp32.count(id) && (!use_only || only.count(id)); }
};

// Plans quantization of the top-level graph with the rules registry; subgraphs stay fp32. Only
// tensors with a range in `ranges` count as float activations.
QuantPlan plan_quantization(const ir::Graph& graph, const quant::QuantConfig& config,
                            const RangeMap& ranges, const NodeFilter& filter = {});

// --exclude-ops types no node of the graph has, and an --exclude-nodes pattern no node name
// matches, as warnings: most likely typos that would silently quantize what was meant to stay fp32.
std::vector<std::string> unmatched_exclusions(const ir::Graph& graph, const quant::QuantConfig& config);

// ORT profile: removes Relu / Clip(0, x) nodes that follow a quantized op whose output feeds
// only them; the producer's output takes the activation's output name and range (Q with
// z = qmin clamps the same way). Returns how many were folded. Run before planning.
int fold_activations_into_quantized_producers(ir::Graph& graph, const quant::QuantConfig& config,
                                              RangeMap& ranges);
// The same, folding only after nodes the filter admits (a node returned to fp32 keeps its Relu).
int fold_activations_into_quantized_producers(ir::Graph& graph, const quant::QuantConfig& config,
                                              RangeMap& ranges, const NodeFilter& filter);

}  // namespace ptq::passes
