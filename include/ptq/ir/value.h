// A value (SSA wire): one producer, a list of uses, its type facts and an optional constant.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"

namespace ptq::ir {

using NodeId = int32_t;
using ValueId = int32_t;
constexpr int32_t kNone = -1;  // "no node" / "no value" (an omitted optional input or output)

// One dimension: a static size, a symbolic name, or unknown (value -1, empty param).
struct Dim {
  int64_t value = -1;
  std::string param;
  bool is_static() const { return value >= 0 && param.empty(); }
  bool operator==(const Dim& o) const { return value == o.value && param == o.param; }
};
using Shape = std::vector<Dim>;

// The type facts of a value. Non-tensor types (sequence, map, optional) are kept as serialized
// TypeProto bytes in `opaque` so they round-trip untouched.
struct TypeInfo {
  DType dtype = DType::kUndefined;
  std::optional<Shape> shape;  // nullopt: rank unknown
  std::string opaque;
  bool known = false;  // false: the model declared no type for this value
  bool empty = false;  // declared as an empty TypeProto ("type {}"), as some exporters write
  bool operator==(const TypeInfo& o) const {
    return dtype == o.dtype && shape == o.shape && opaque == o.opaque && known == o.known &&
           empty == o.empty;
  }
};

enum class ValueKind {
  kGraphInput,   // fed at run time (may also be an initializer in IR < 4 models: see Graph::inputs)
  kInitializer,  // a constant tensor stored in the graph
  kNodeOutput,   // produced by a node
  kOuterScope,   // a subgraph's reference to a value of an enclosing graph, by name
};

struct Use {
  NodeId node = kNone;
  int32_t slot = 0;  // input index on that node
  bool operator==(const Use& o) const { return node == o.node && slot == o.slot; }
};

struct Value {
  ValueId id = kNone;
  std::string name;
  ValueKind kind = ValueKind::kNodeOutput;
  TypeInfo type;
  NodeId producer = kNone;
  int32_t producer_slot = -1;
  std::vector<Use> uses;  // in insertion order
  // Initializer data, or the tensor of a Constant node's output: constants look alike either way.
  std::shared_ptr<const Tensor> constant;
  std::string doc_string;     // from value_info / graph input / output
  bool has_value_info = false;  // listed in graph.value_info (kept for round trips)
  bool alive = true;

  bool is_constant() const { return constant != nullptr; }
};

}  // namespace ptq::ir
