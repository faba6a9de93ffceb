// The x86 instruction-set extensions of this CPU, for code compiled with target attributes.
#pragma once

namespace ptq {

struct CpuFeatures {
  bool avx2 = false, fma = false, sse41 = false, popcnt = false;
  // AVX-512F with the OS saving ZMM state (CPUID alone can claim it where the OS does not).
  bool avx512 = false;
  // VNNI as MLAS detects it (platform.cpp): AVX-VNNI (with AVX2), and AVX512-VNNI with
  // AVX512F/DQ/BW/VL and the ZMM state.
  bool avx_vnni = false, avx512_vnni = false;
};

// Checked once; all false on other architectures.
const CpuFeatures& cpu_features();

}  // namespace ptq
