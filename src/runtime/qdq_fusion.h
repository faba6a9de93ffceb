// Integer-kernel mode: finds the QDQ node groups ONNX Runtime fuses and maps each to the integer
// kernel ORT runs for it (QLinearConv, QLinearMatMul, QGemm, QLinearAdd, ...).
#pragma once

#include <string>
#include <vector>

#include "ptq/ir/graph.h"

namespace ptq::runtime {

// One fused group: `anchor` (the float op) with its input DQs and output Q executed as one
// kernel. The kernel reads the attributes of the anchor node.
struct FusedGroup {
  ir::NodeId anchor = ir::kNone;
  std::string domain;                // of the kernel: "", "com.microsoft" or kInt8Domain
  std::string op_type;               // QLinearConv, ..., or the anchor's own op (DropQDQ)
  std::vector<ir::ValueId> inputs;   // in the kernel's input order; kNone for omitted inputs
  std::vector<ir::ValueId> outputs;  // the output Q's value
  std::vector<ir::NodeId> absorbed;  // nodes the group replaces besides the anchor (Q, Relu)
};

// Groups in `graph` matching ORT's CPU QDQ fusion rules (quantization-reference §3.2): every
// input from a DequantizeLinear with constant scalar activation parameters, the output read by
// exactly one QuantizeLinear and not a graph output, matching 8-bit types; or a Gemm/MatMul with
// constant weights and no QuantizeLinear after it (float output: QGemm, MatMulIntegerToFloat).
// At most one group per anchor; a node belongs to at most one group.
std::vector<FusedGroup> find_fused_groups(const ir::Graph& graph);

}  // namespace ptq::runtime
