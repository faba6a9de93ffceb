// Model-level helpers.
#include "ptq/ir/model.h"

namespace ptq::ir {

int64_t Model::opset(const std::string& d) const {
  const bool want_default = d.empty() || d == "ai.onnx";
  for (const OpsetImport& o : opset_import) {
    const bool is_default = o.domain.empty() || o.domain == "ai.onnx";
    if (want_default ? is_default : o.domain == d) return o.version;
  }
  return 0;
}

}  // namespace ptq::ir
