// Batched samples split into batch-1 rows.
#include "ptq/data/rows.h"

namespace ptq::data {

std::vector<std::map<std::string, Tensor>> split_batch(const ir::Graph& g,
                                                       const std::map<std::string, Tensor>& inputs) {
  int64_t n = -1;
  for (ir::ValueId v : g.runtime_inputs()) {
    const ir::Value& val = g.value(v);
    const auto it = inputs.find(val.name);
    if (it == inputs.end() || it->second.rank() == 0 || it->second.is_string()) return {inputs};
    if (val.type.shape && !val.type.shape->empty() && (*val.type.shape)[0].is_static()) return {inputs};
    const int64_t d0 = it->second.dims()[0];
    if (n >= 0 && d0 != n) return {inputs};
    n = d0;
  }
  if (n <= 1) return {inputs};
  std::vector<std::map<std::string, Tensor>> rows(static_cast<size_t>(n));
  for (const auto& [name, t] : inputs) {
    Dims dims = t.dims();
    dims[0] = 1;
    const size_t row_bytes = t.nbytes() / static_cast<size_t>(n);
    for (int64_t r = 0; r < n; ++r)
      rows[static_cast<size_t>(r)][name] = Tensor::from_bytes(
          t.dtype(), dims, static_cast<const uint8_t*>(t.raw()) + static_cast<size_t>(r) * row_bytes, row_bytes);
  }
  return rows;
}

}  // namespace ptq::data
