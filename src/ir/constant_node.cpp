// Constant node attribute -> tensor (value, value_float(s), value_int(s), value_string(s)).
#include "constant_node.h"

namespace ptq::ir {

std::shared_ptr<const Tensor> constant_node_tensor(const Node& node) {
  for (const Attribute& a : node.attributes) {
    if (a.name == "value" && a.t) return a.t;
    if (a.name == "value_float") return std::make_shared<Tensor>(Tensor::scalar<float>(a.f));
    if (a.name == "value_int") return std::make_shared<Tensor>(Tensor::scalar<int64_t>(a.i));
    if (a.name == "value_floats")
      return std::make_shared<Tensor>(
          Tensor::from_vector<float>({static_cast<int64_t>(a.floats.size())}, a.floats));
    if (a.name == "value_ints")
      return std::make_shared<Tensor>(
          Tensor::from_vector<int64_t>({static_cast<int64_t>(a.ints.size())}, a.ints));
    if (a.name == "value_string") return std::make_shared<Tensor>(Tensor::from_strings({}, {a.s}));
    if (a.name == "value_strings")
      return std::make_shared<Tensor>(
          Tensor::from_strings({static_cast<int64_t>(a.strings.size())}, a.strings));
  }
  return nullptr;
}

}  // namespace ptq::ir
