// AVX2/FMA float kernels (packed GEMM, depthwise and max windows), chosen at run time by CPU.
#include "fast_kernels.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

#include "ptq/runtime/fast_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PTQ_FAST_X86 1
#define PTQ_AVX2 __attribute__((target("avx2,fma")))
#else
#define PTQ_FAST_X86 0
#endif

namespace ptq::runtime {
namespace {
std::atomic<bool> g_fast_on{true};
}  // namespace

void set_fast_kernels(bool on) { g_fast_on.store(on, std::memory_order_relaxed); }
bool fast_kernels_active() { return fast::available(); }

namespace fast {

bool cpu_supported() {
#if PTQ_FAST_X86
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
#else
  return false;
#endif
}

bool available() { return cpu_supported() && g_fast_on.load(std::memory_order_relaxed); }

void pack_a(const float* a, int64_t rs, int64_t cs, int64_t m, int64_t k, float* dst) {
  for (int64_t i0 = 0; i0 < m; i0 += kMr) {
    const int64_t rows = std::min(kMr, m - i0);
    for (int64_t p = 0; p < k; ++p, dst += kMr) {
      int64_t r = 0;
      for (; r < rows; ++r) dst[r] = a[(i0 + r) * rs + p * cs];
      for (; r < kMr; ++r) dst[r] = 0.f;
    }
  }
}

void pack_b(const float* b, int64_t rs, int64_t cs, int64_t k, int64_t n, float* dst) {
  for (int64_t j0 = 0; j0 < n; j0 += kNr) {
    const int64_t cols = std::min(kNr, n - j0);
    for (int64_t p = 0; p < k; ++p, dst += kNr) {
      const float* src = b + p * rs + j0 * cs;
      if (cs == 1 && cols == kNr) {
        std::memcpy(dst, src, sizeof(float) * kNr);
        continue;
      }
      int64_t j = 0;
      for (; j < cols; ++j) dst[j] = src[j * cs];
      for (; j < kNr; ++j) dst[j] = 0.f;
    }
  }
}

#if PTQ_FAST_X86

namespace {

// Stores one accumulator row (16 floats, or the first `cols`).
PTQ_AVX2 inline void store_row(float* c, __m256 lo, __m256 hi, int64_t cols) {
  if (cols == kNr) {
    _mm256_storeu_ps(c, lo);
    _mm256_storeu_ps(c + 8, hi);
    return;
  }
  alignas(32) float tile[kNr];
  _mm256_store_ps(tile, lo);
  _mm256_store_ps(tile + 8, hi);
  std::memcpy(c, tile, sizeof(float) * static_cast<size_t>(cols));
}

// R rows (R <= kMr) × 16 columns. The accumulators are named variables, not an array, so the
// compiler keeps all twelve in registers (an array is spilled once its address escapes).
template <int R>
PTQ_AVX2 void micro(const float* pa, const float* pb, int64_t k, const float* bias, float* c,
                    int64_t ldc, int64_t cols) {
  auto init = [bias](int r) { return r < R && bias ? bias[r] : 0.f; };
  __m256 c00 = _mm256_set1_ps(init(0)), c10 = _mm256_set1_ps(init(1));
  __m256 c20 = _mm256_set1_ps(init(2)), c30 = _mm256_set1_ps(init(3));
  __m256 c40 = _mm256_set1_ps(init(4)), c50 = _mm256_set1_ps(init(5));
  __m256 c01 = c00, c11 = c10, c21 = c20, c31 = c30, c41 = c40, c51 = c50;
  for (int64_t p = 0; p < k; ++p, pa += kMr, pb += kNr) {
    const __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
    __m256 av = _mm256_broadcast_ss(pa);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    if constexpr (R > 1) {
      av = _mm256_broadcast_ss(pa + 1);
      c10 = _mm256_fmadd_ps(av, b0, c10);
      c11 = _mm256_fmadd_ps(av, b1, c11);
    }
    if constexpr (R > 2) {
      av = _mm256_broadcast_ss(pa + 2);
      c20 = _mm256_fmadd_ps(av, b0, c20);
      c21 = _mm256_fmadd_ps(av, b1, c21);
    }
    if constexpr (R > 3) {
      av = _mm256_broadcast_ss(pa + 3);
      c30 = _mm256_fmadd_ps(av, b0, c30);
      c31 = _mm256_fmadd_ps(av, b1, c31);
    }
    if constexpr (R > 4) {
      av = _mm256_broadcast_ss(pa + 4);
      c40 = _mm256_fmadd_ps(av, b0, c40);
      c41 = _mm256_fmadd_ps(av, b1, c41);
    }
    if constexpr (R > 5) {
      av = _mm256_broadcast_ss(pa + 5);
      c50 = _mm256_fmadd_ps(av, b0, c50);
      c51 = _mm256_fmadd_ps(av, b1, c51);
    }
  }
  store_row(c, c00, c01, cols);
  if constexpr (R > 1) store_row(c + ldc, c10, c11, cols);
  if constexpr (R > 2) store_row(c + 2 * ldc, c20, c21, cols);
  if constexpr (R > 3) store_row(c + 3 * ldc, c30, c31, cols);
  if constexpr (R > 4) store_row(c + 4 * ldc, c40, c41, cols);
  if constexpr (R > 5) store_row(c + 5 * ldc, c50, c51, cols);
}

using MicroFn = void (*)(const float*, const float*, int64_t, const float*, float*, int64_t,
                         int64_t);
constexpr MicroFn kMicro[kMr + 1] = {nullptr,  micro<1>, micro<2>, micro<3>,
                                     micro<4>, micro<5>, micro<6>};

}  // namespace

void gemm_packed(const float* pa, const float* pb, int64_t m, int64_t n, int64_t k,
                 const float* bias, float* c, int64_t ldc) {
  // Column panel outer: its k×16 floats stay in L1/L2 while every row panel passes over it.
  for (int64_t j0 = 0; j0 < n; j0 += kNr, pb += kNr * k) {
    const int64_t cols = std::min(kNr, n - j0);
    const float* a = pa;
    for (int64_t i0 = 0; i0 < m; i0 += kMr, a += kMr * k) {
      const int64_t rows = std::min(kMr, m - i0);
      kMicro[rows](a, pb, k, bias ? bias + i0 : nullptr, c + i0 * ldc + j0, ldc, cols);
    }
  }
}

PTQ_AVX2 void depthwise_planes(const float* buf, const PlaneGeo& g, const float* w, float bias,
                               float* y) {
  const int64_t wq = g.wq();
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    float* yr = y + oy * g.wo;
    for (int64_t ox0 = 0; ox0 < g.wo; ox0 += kWindowBlock) {
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      for (int64_t ky = 0; ky < g.kh; ++ky) {
        const int64_t r = oy * g.sh + ky * g.dh;
        const float* wr = w + ky * g.kw;
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const int64_t cc = kx * g.dw;
          const float* p = buf + (r * g.sw + cc % g.sw) * wq + cc / g.sw + ox0;
          const __m256 wv = _mm256_broadcast_ss(wr + kx);
          a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p), a0);
          a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p + 8), a1);
        }
      }
      const __m256 bv = _mm256_set1_ps(bias);
      a0 = _mm256_add_ps(a0, bv);
      a1 = _mm256_add_ps(a1, bv);
      const int64_t n = std::min(kWindowBlock, g.wo - ox0);
      if (n == kWindowBlock) {
        _mm256_storeu_ps(yr + ox0, a0);
        _mm256_storeu_ps(yr + ox0 + 8, a1);
      } else {
        alignas(32) float tile[kWindowBlock];
        _mm256_store_ps(tile, a0);
        _mm256_store_ps(tile + 8, a1);
        std::memcpy(yr + ox0, tile, sizeof(float) * static_cast<size_t>(n));
      }
    }
  }
}

PTQ_AVX2 void max_planes(const float* buf, const PlaneGeo& g, float* y) {
  const int64_t wq = g.wq();
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    float* yr = y + oy * g.wo;
    for (int64_t ox0 = 0; ox0 < g.wo; ox0 += kWindowBlock) {
      __m256 a0 = ninf, a1 = ninf;
      for (int64_t ky = 0; ky < g.kh; ++ky) {
        const int64_t r = oy * g.sh + ky * g.dh;
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const int64_t cc = kx * g.dw;
          const float* p = buf + (r * g.sw + cc % g.sw) * wq + cc / g.sw + ox0;
          // max_ps(v, acc) returns acc when v is NaN or v <= acc: the reference's
          // `acc < v ? v : acc` exactly.
          a0 = _mm256_max_ps(_mm256_loadu_ps(p), a0);
          a1 = _mm256_max_ps(_mm256_loadu_ps(p + 8), a1);
        }
      }
      const int64_t n = std::min(kWindowBlock, g.wo - ox0);
      if (n == kWindowBlock) {
        _mm256_storeu_ps(yr + ox0, a0);
        _mm256_storeu_ps(yr + ox0 + 8, a1);
      } else {
        alignas(32) float tile[kWindowBlock];
        _mm256_store_ps(tile, a0);
        _mm256_store_ps(tile + 8, a1);
        std::memcpy(yr + ox0, tile, sizeof(float) * static_cast<size_t>(n));
      }
    }
  }
}

#else  // not x86: available() is false, so these are never called.

void gemm_packed(const float*, const float*, int64_t, int64_t, int64_t, const float*, float*,
                 int64_t) {}
void depthwise_planes(const float*, const PlaneGeo&, const float*, float, float*) {}
void max_planes(const float*, const PlaneGeo&, float*) {}

#endif

}  // namespace fast
}  // namespace ptq::runtime
