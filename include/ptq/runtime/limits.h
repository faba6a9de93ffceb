// Process-wide limit on the size of one tensor the runtime computes.
#pragma once

#include <cstdint>

namespace ptq::runtime {

// Kernels refuse (UnsupportedError naming the shape) to allocate a tensor over this many
// elements: 2^28 (1 GiB of float) by default. The fuzz targets lower it so that a legal but huge
// Resize or Pad in a mutated model fails fast instead of computing hundreds of MB under ASan.
int64_t max_tensor_elements();
void set_max_tensor_elements(int64_t n);

}  // namespace ptq::runtime
