// cpu_features: __builtin_cpu_supports, CPUID leaf 7 and XGETBV, asked once.
#include "ptq/core/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

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
    unsigned a = 0, b = 0, cx = 0, d = 0;
    if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) c.avx_vnni = c.avx2 && (a & 0x10u) != 0;  // EAX[4]
    bool zmm_state = false;
    if (__get_cpuid(1, &a, &b, &cx, &d) && (cx & (1u << 27)) != 0) {  // OSXSAVE
      unsigned lo = 0, hi = 0;
      __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      zmm_state = (lo & 0xE6u) == 0xE6u;
    }
    c.avx512 = zmm_state && __builtin_cpu_supports("avx512f") != 0;
    if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
      const bool avx512_core = (b & 0xC0030000u) == 0xC0030000u;  // F, DQ, BW, VL
      c.avx512_vnni = zmm_state && avx512_core && (cx & (1u << 11)) != 0;
    }
#endif
    return c;
  }();
  return f;
}

}  // namespace ptq
