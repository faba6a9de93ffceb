// The x86 instruction-set extensions of this CPU, for code compiled with target attributes.
#pragma once

namespace ptq {

struct CpuFeatures {
  bool avx2 = false, fma = false, sse41 = false, popcnt = false;
};

// Checked once; all false on other architectures.
const CpuFeatures& cpu_features();

}  // namespace ptq
