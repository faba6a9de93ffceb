// cpu_features: __builtin_cpu_supports, asked once.
#include "ptq/core/cpu_features.h"

namespace ptq {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2") != 0;
    c.fma = __builtin_cpu_supports("fma") != 0;
    c.sse41 = __builtin_cpu_supports("sse4.1") != 0;
    c.popcnt = __builtin_cpu_supports("popcnt") != 0;
#endif
    return c;
  }();
  return f;
}

}  // namespace ptq
