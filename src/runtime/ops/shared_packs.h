// Packed copies of constant weights shared by every kernel that packs the same tensor the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "ptq/core/tensor.h"

namespace ptq::runtime {

// The accuracy report and the placement search build one interpreter per quantized node, each
// over the same fp32 weights (the models share their constant tensors): packing them again for
// each cost ~3 ms per interpreter on mobilenetv2. Returns the pack of `w` made by `make` for this
// `variant` (distinct packings of one tensor), made once while any kernel holds it. Safe because
// a holder also pins w: pinned storage is never written in place (Tensor copies on write) nor
// freed, so its address and shape name the same contents. Packing is deterministic, so sharing
// changes no result.
using SharedPack = std::shared_ptr<const std::vector<float>>;
SharedPack shared_pack(const Tensor& w, int64_t variant, const std::function<std::vector<float>()>& make);

}  // namespace ptq::runtime
