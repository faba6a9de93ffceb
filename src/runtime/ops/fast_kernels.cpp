// AVX2/FMA float kernels (packed GEMM, depthwise and max windows, sigmoid), chosen at run time by CPU.
#include "fast_kernels.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <limits>
#include <vector>

#include "ptq/core/cpu_features.h"
#include "ptq/runtime/fast_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PTQ_FAST_X86 1
#define PTQ_AVX2 __attribute__((target("avx2,fma")))
#define PTQ_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define PTQ_FAST_X86 0
#endif

namespace ptq::runtime {
namespace {
// PTQ_REFERENCE_KERNELS=1 in the environment starts with the switch off (benchmarks, bisecting).
std::atomic<bool> g_fast_on{[] {
  const char* e = std::getenv("PTQ_REFERENCE_KERNELS");
  return !(e && *e && std::string_view(e) != "0");
}()};
std::atomic<bool> g_avx512_on{true};
}  // namespace

void set_fast_kernels(bool on) { g_fast_on.store(on, std::memory_order_relaxed); }
void set_avx512_kernels(bool on) { g_avx512_on.store(on, std::memory_order_relaxed); }
bool fast_kernels_active() { return fast::available(); }

namespace fast {

bool cpu_supported() { return cpu_features().avx2 && cpu_features().fma; }

bool available() { return cpu_supported() && g_fast_on.load(std::memory_order_relaxed); }

namespace {
// AVX-512F (with the OS saving ZMM state) and the set_avx512_kernels switch on.
bool avx512_usable() {
  return cpu_features().avx512 && cpu_supported() && g_avx512_on.load(std::memory_order_relaxed);
}
}  // namespace

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

void pack_b_rows(const float* b, const int64_t* boff, int64_t k, int64_t n, float* dst) {
  for (int64_t j0 = 0; j0 < n; j0 += kNr) {
    const int64_t cols = std::min(kNr, n - j0);
    for (int64_t p = 0; p < k; ++p, dst += kNr) {
      std::memcpy(dst, b + boff[p] + j0, sizeof(float) * static_cast<size_t>(cols));
      std::fill(dst + cols, dst + kNr, 0.f);
    }
  }
}

#if PTQ_FAST_X86

namespace {

// The AVX-512 lane mask of the first n of 16 lanes (all for n >= 16).
inline __mmask16 first16(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

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

// std::min(std::max(v, lo), hi) on 8 lanes exactly: max_ps(lo, v) is `lo > v ? lo : v` and
// min_ps(hi, x) is `hi < x ? hi : x`, so NaN passes through as in the scalar form.
PTQ_AVX2 inline __m256 activated(__m256 v, const Activation& act) {
  return _mm256_min_ps(_mm256_set1_ps(act.hi), _mm256_max_ps(_mm256_set1_ps(act.lo), v));
}

// Loads one row of a C tile (16 floats, or the first `cols` with zeros after).
PTQ_AVX2 inline void load_row(const float* c, __m256& lo, __m256& hi, int64_t cols) {
  if (cols == kNr) {
    lo = _mm256_loadu_ps(c);
    hi = _mm256_loadu_ps(c + 8);
    return;
  }
  alignas(32) float tile[kNr] = {};
  std::memcpy(tile, c, sizeof(float) * static_cast<size_t>(cols));
  lo = _mm256_load_ps(tile);
  hi = _mm256_load_ps(tile + 8);
}

// R rows (R <= kMr) × 16 columns (8 when kHalf: a last panel of at most 8 columns, whose
// zero upper half would be wasted FMAs). The accumulators are named variables, not an array, so
// the compiler keeps all twelve in registers (an array is spilled once its address escapes).
// They start from C when `resume` (a later K block), else from the bias (or 0).
// With `act` (the last K block only), the stored rows are clamped first.
template <int R, bool kHalf>
PTQ_AVX2 void micro(const float* pa, const float* pb, int64_t k, const float* bias, bool resume,
                    float* c, int64_t ldc, int64_t cols, const Activation* act) {
  auto init = [bias](int r) { return r < R && bias ? bias[r] : 0.f; };
  __m256 c00 = _mm256_set1_ps(init(0)), c10 = _mm256_set1_ps(init(1));
  __m256 c20 = _mm256_set1_ps(init(2)), c30 = _mm256_set1_ps(init(3));
  __m256 c40 = _mm256_set1_ps(init(4)), c50 = _mm256_set1_ps(init(5));
  __m256 c01 = c00, c11 = c10, c21 = c20, c31 = c30, c41 = c40, c51 = c50;
  if (resume) {
    load_row(c, c00, c01, cols);
    if constexpr (R > 1) load_row(c + ldc, c10, c11, cols);
    if constexpr (R > 2) load_row(c + 2 * ldc, c20, c21, cols);
    if constexpr (R > 3) load_row(c + 3 * ldc, c30, c31, cols);
    if constexpr (R > 4) load_row(c + 4 * ldc, c40, c41, cols);
    if constexpr (R > 5) load_row(c + 5 * ldc, c50, c51, cols);
  }
  for (int64_t p = 0; p < k; ++p, pa += kMr, pb += kNr) {
    const __m256 b0 = _mm256_loadu_ps(pb);
    const __m256 b1 = kHalf ? b0 : _mm256_loadu_ps(pb + 8);
    __m256 av = _mm256_broadcast_ss(pa);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    if constexpr (!kHalf) c01 = _mm256_fmadd_ps(av, b1, c01);
    if constexpr (R > 1) {
      av = _mm256_broadcast_ss(pa + 1);
      c10 = _mm256_fmadd_ps(av, b0, c10);
      if constexpr (!kHalf) c11 = _mm256_fmadd_ps(av, b1, c11);
    }
    if constexpr (R > 2) {
      av = _mm256_broadcast_ss(pa + 2);
      c20 = _mm256_fmadd_ps(av, b0, c20);
      if constexpr (!kHalf) c21 = _mm256_fmadd_ps(av, b1, c21);
    }
    if constexpr (R > 3) {
      av = _mm256_broadcast_ss(pa + 3);
      c30 = _mm256_fmadd_ps(av, b0, c30);
      if constexpr (!kHalf) c31 = _mm256_fmadd_ps(av, b1, c31);
    }
    if constexpr (R > 4) {
      av = _mm256_broadcast_ss(pa + 4);
      c40 = _mm256_fmadd_ps(av, b0, c40);
      if constexpr (!kHalf) c41 = _mm256_fmadd_ps(av, b1, c41);
    }
    if constexpr (R > 5) {
      av = _mm256_broadcast_ss(pa + 5);
      c50 = _mm256_fmadd_ps(av, b0, c50);
      if constexpr (!kHalf) c51 = _mm256_fmadd_ps(av, b1, c51);
    }
  }
  if (act) {
    c00 = activated(c00, *act), c01 = activated(c01, *act), c10 = activated(c10, *act);
    c11 = activated(c11, *act), c20 = activated(c20, *act), c21 = activated(c21, *act);
    c30 = activated(c30, *act), c31 = activated(c31, *act), c40 = activated(c40, *act);
    c41 = activated(c41, *act), c50 = activated(c50, *act), c51 = activated(c51, *act);
  }
  store_row(c, c00, c01, cols);
  if constexpr (R > 1) store_row(c + ldc, c10, c11, cols);
  if constexpr (R > 2) store_row(c + 2 * ldc, c20, c21, cols);
  if constexpr (R > 3) store_row(c + 3 * ldc, c30, c31, cols);
  if constexpr (R > 4) store_row(c + 4 * ldc, c40, c41, cols);
  if constexpr (R > 5) store_row(c + 5 * ldc, c50, c51, cols);
}

using MicroFn = void (*)(const float*, const float*, int64_t, const float*, bool, float*,
                         int64_t, int64_t, const Activation*);
// [half][rows]
constexpr MicroFn kMicro[2][kMr + 1] = {
    {nullptr, micro<1, false>, micro<2, false>, micro<3, false>, micro<4, false>,
     micro<5, false>, micro<6, false>},
    {nullptr, micro<1, true>, micro<2, true>, micro<3, true>, micro<4, true>, micro<5, true>,
     micro<6, true>}};


// The AVX-512 tile: kPanels row panels (6 or 12 rows) × kCols columns (16 or 32: one or two B
// column panels, a 16-float zmm each), up to 24 accumulators in registers (the arrays are
// indexed by constants only after unrolling, so GCC keeps them in zmm registers). `rows` and
// `cols` are the valid ones (the packed panels are zero past them). Every element is the same
// FMA chain as in micro<> (same start, same order, one rounding each), so results are identical.
// GCC 12's _mm512_min_ps/_mm512_max_ps pass an "undefined" vector it then warns about.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// kDirect: B is read where it lies (row p at pb + boff[p], the second 16 columns 16 further),
// with masked loads past `cols` (kFull: cols is kCols, plain loads); else from packed panels (kNr
// floats per p, b_next = the next panel; boff unused).
template <int kPanels, int kCols, bool kDirect, bool kFull = false>
PTQ_AVX512 void micro512(const float* pa, int64_t a_next, const float* pb, int64_t b_next, const int64_t* boff,
                         int64_t k, const float* bias, bool resume, float* c, int64_t ldc, int64_t rows,
                         int64_t cols, const Activation* act) {
  constexpr int kR = 6 * kPanels, kV = kCols / 16;
  __mmask16 mask[2];
  mask[0] = first16(cols);
  mask[1] = cols > 16 ? first16(cols - 16) : __mmask16(0);
  __m512 acc[kR][kV];
#pragma GCC unroll 12
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < kV; ++v) {
      if (resume)
        acc[r][v] = r < rows ? _mm512_maskz_loadu_ps(mask[v], c + r * ldc + 16 * v) : _mm512_setzero_ps();
      else
        acc[r][v] = _mm512_set1_ps(bias && r < rows ? bias[r] : 0.f);
    }
  const float* pa2 = pa + a_next;
  const float* pb2 = pb + b_next;
  for (int64_t p = 0; p < k; ++p, pa += kMr, pa2 += kMr) {
    __m512 b[kV];
    if constexpr (kDirect) {
      const float* row = pb + boff[p];
      if constexpr (kFull) {
        b[0] = _mm512_loadu_ps(row);
        if constexpr (kV > 1) b[1] = _mm512_loadu_ps(row + 16);
      } else {
        b[0] = _mm512_maskz_loadu_ps(mask[0], row);
        if constexpr (kV > 1) b[1] = _mm512_maskz_loadu_ps(mask[1], row + 16);
      }
    } else {
      b[0] = _mm512_loadu_ps(pb);
      if constexpr (kV > 1) b[1] = _mm512_loadu_ps(pb2);
      pb += kNr;
      pb2 += kNr;
    }
#pragma GCC unroll 12
    for (int r = 0; r < kR; ++r) {
      const __m512 a = _mm512_set1_ps(r < 6 ? pa[r] : pa2[r - 6]);
#pragma GCC unroll 2
      for (int v = 0; v < kV; ++v) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < kV; ++v) {
      if (r >= rows) continue;
      __m512 x = acc[r][v];
      if (act)  // as activated(): NaN passes through
        x = _mm512_min_ps(_mm512_set1_ps(act->hi), _mm512_max_ps(_mm512_set1_ps(act->lo), x));
      _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mask[v], x);
    }
}
#pragma GCC diagnostic pop

using Micro512Fn = void (*)(const float*, int64_t, const float*, int64_t, const int64_t*, int64_t, const float*,
                            bool, float*, int64_t, int64_t, int64_t, const Activation*);
// [B: packed, in place, in place full][two row panels][two column panels]
constexpr Micro512Fn kMicro512[3][2][2] = {
    {{micro512<1, 16, false>, micro512<1, 32, false>}, {micro512<2, 16, false>, micro512<2, 32, false>}},
    {{micro512<1, 16, true>, micro512<1, 32, true>}, {micro512<2, 16, true>, micro512<2, 32, true>}},
    {{micro512<1, 16, true, true>, micro512<1, 32, true, true>}, {micro512<2, 16, true, true>, micro512<2, 32, true, true>}}};

// gemm_packed, and with boff the same sums with B read in place (element (p, j) at
// pb[boff[p] + j]; AVX-512 only).
void gemm_tiles(const float* pa, const float* pb, const int64_t* boff, int64_t m, int64_t n, int64_t k,
                const float* bias, float* c, int64_t ldc, const Activation* act, int64_t ka) {
  // K blocks of at most kKc (balanced): a block's slice of one B column panel (16 KiB) stays in
  // L1 while every row panel passes over it, and the A block stays in L2 across column panels.
  // The accumulators go through C between blocks, which rounds nothing (a float store and load
  // are exact), so each element is still one FMA chain over p = 0..k-1.
  constexpr int64_t kKc = 256;
  const int64_t kblocks = std::max<int64_t>(1, (k + kKc - 1) / kKc);
  const int64_t kc = (k + kblocks - 1) / kblocks;
  // With AVX-512: 12 x 32 tiles (two row panels, two column panels) where they fit.
  const bool wide = avx512_usable(), direct = boff != nullptr;
  const int64_t tile_rows = wide ? 2 * kMr : kMr, tile_cols = wide ? 2 * kNr : kNr;
  // Column chunks of kNc: all row panels pass over one chunk's B slice (at most 512 KiB, in L2)
  // before the next, so each C row is written in runs of kNc columns. Walking every row for
  // each 32-column panel instead wrote C in as many interleaved streams as it has rows.
  constexpr int64_t kNc = 512;
  for (int64_t k0 = 0; k0 < k || k0 == 0; k0 += kc) {
    const int64_t kn = std::min(kc, k - k0);
    const Activation* last_act = k0 + kn >= k ? act : nullptr;
    for (int64_t n0 = 0; n0 < n; n0 += kNc) {
      const int64_t n1 = std::min(n, n0 + kNc);
      const float* a = pa + k0 * kMr;
      for (int64_t i0 = 0; i0 < m;) {
        const int64_t rows = std::min(tile_rows, m - i0);
        const float* bias_i = bias ? bias + i0 : nullptr;
        // Column panel n0 / kNr (kNc is a multiple of kNr), or column n0 in place.
        const float* b = direct ? pb + n0 : pb + k0 * kNr + n0 * k;
        for (int64_t j0 = n0; j0 < n1;) {
          const int64_t cols = std::min(tile_cols, n1 - j0);
          float* ci = c + i0 * ldc + j0;
          const int b_kind = !direct ? 0 : cols == kNr || cols == 2 * kNr ? 2 : 1;
          if (wide)
            kMicro512[b_kind][rows > kMr][cols > kNr](a, kMr * ka, b, kNr * k, direct ? boff + k0 : nullptr, kn, bias_i,
                                                      k0 > 0, ci, ldc, rows, cols, last_act);
          else
            kMicro[cols <= 8][rows](a, b, kn, bias_i, k0 > 0, ci, ldc, cols, last_act);
          const int64_t panels = (cols + kNr - 1) / kNr;
          j0 += panels * kNr;
          b += direct ? panels * kNr : panels * kNr * k;
        }
        const int64_t panels = (rows + kMr - 1) / kMr;
        i0 += panels * kMr;
        a += panels * kMr * ka;
      }
    }
    if (k == 0) break;
  }
}

}  // namespace

void gemm_packed(const float* pa, const float* pb, int64_t m, int64_t n, int64_t k,
                 const float* bias, float* c, int64_t ldc, const Activation* act, int64_t ka) {
  gemm_tiles(pa, pb, nullptr, m, n, k, bias, c, ldc, act, ka > 0 ? ka : k);
}

bool gemm_direct_b_supported() { return avx512_usable(); }

void gemm_direct_b(const float* pa, const float* b, const int64_t* boff, int64_t m, int64_t n, int64_t k,
                   const float* bias, float* c, int64_t ldc, const Activation* act, int64_t ka) {
  if (ka <= 0) ka = k;
  if (gemm_direct_b_supported()) return gemm_tiles(pa, b, boff, m, n, k, bias, c, ldc, act, ka);
  thread_local std::vector<float> packed;  // the 8-lane tiles read panels
  packed.resize(static_cast<size_t>(packed_b_size(k, n)));
  pack_b_rows(b, boff, k, n, packed.data());
  gemm_packed(pa, packed.data(), m, n, k, bias, c, ldc, act, ka);
}

namespace {

// Offset of every tap (ky, kx) from the start of output row 0's window in the phase planes;
// output row oy adds oy·row_step(). Hoists PlaneGeo::offset's divisions out of the pixel loops.
// Each kernel keeps one per thread; it is recomputed only when the geometry differs from the
// previous call (every channel of a layer shares it).
struct TapOffsets {
  PlaneGeo geo{};
  bool valid = false;
  std::vector<int64_t> off;

  const int64_t* get(const PlaneGeo& g) {
    if (valid && std::memcmp(&geo, &g, sizeof g) == 0) return off.data();
    off.resize(static_cast<size_t>(g.kh * g.kw));
    for (int64_t ky = 0; ky < g.kh; ++ky)
      for (int64_t kx = 0; kx < g.kw; ++kx)
        off[static_cast<size_t>(ky * g.kw + kx)] = g.offset(ky * g.dh, kx);
    geo = g;
    valid = true;
    return off.data();
  }
};
int64_t row_step(const PlaneGeo& g) { return g.sh * g.sw * g.wq(); }

}  // namespace

namespace {

// GCC 12's AVX-512 intrinsics pass "undefined" vectors it then warns about.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// The three kx taps (kw 3, no dilation) of 16 stride-2 outputs from one input row: input
// columns c0 + 2j + kx for j < 16, `fill` outside [0, w) or for a missing (padding) row. Read
// straight from the row (masked loads; even and odd columns split in registers), where a
// phase-plane copy of every input plane cost more than the window sums of its quarter as many
// outputs.
PTQ_AVX512 inline void taps_s2(const float* row, int64_t w, int64_t c0, __m512 fill, __m512 t[3]) {
  if (!row) {
    t[0] = t[1] = t[2] = fill;
    return;
  }
  const auto inside = [w](int64_t c) {  // lanes j with 0 <= c + j < w
    return static_cast<__mmask16>(first16(std::max<int64_t>(0, w - c)) & ~first16(std::max<int64_t>(0, -c)));
  };
  const __m512 x0 = _mm512_mask_loadu_ps(fill, inside(c0), row + c0);
  const __m512 x1 = _mm512_mask_loadu_ps(fill, inside(c0 + 16), row + c0 + 16);
  const __m512 x2 = _mm512_mask_loadu_ps(fill, inside(c0 + 32) & 1, row + c0 + 32);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  t[0] = _mm512_permutex2var_ps(x0, even, x1);
  t[1] = _mm512_permutex2var_ps(x0, odd, x1);
  t[2] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(x2), _mm512_castps_si512(t[0]), 1));
}

// Input rows of output row oy for taps ky < 3 (nullptr: a padding row).
inline void rows_s2(const float* x, const PlaneGeo& g, int64_t oy, const float* r[3]) {
  for (int64_t ky = 0; ky < 3; ++ky) {
    const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
    r[ky] = iy >= 0 && iy < g.h ? x + iy * g.w : nullptr;
  }
}

// 3x3 windows with column stride 2 and no column dilation: taps_s2 reads their taps.
bool s2_direct(const PlaneGeo& g) { return g.kh == 3 && g.kw == 3 && g.sw == 2 && g.dw == 1; }

// Every block of 16 outputs of such a plane: a = init, then a = tap(a, ky·3 + kx, v) over the
// taps in (ky, kx) order (`fill` in the padding), then finish(a) stored. Tap and Finish must be
// always-inline with this function's target (lambdas do not inherit it).
template <typename Tap, typename Finish>
PTQ_AVX512 inline void s2_windows(const float* x, const PlaneGeo& g, float* y, __m512 fill, __m512 init, Tap tap,
                                  Finish finish) {
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    const float* r[3];
    rows_s2(x, g, oy, r);
    float* yr = y + oy * g.wo;
    for (int64_t ox = 0; ox < g.wo; ox += 16) {
      __m512 a = init;
#pragma GCC unroll 3
      for (int ky = 0; ky < 3; ++ky) {
        __m512 t[3];
        taps_s2(r[ky], g.w, 2 * ox - g.pl, fill, t);
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; ++kx) a = tap(a, 3 * ky + kx, t[kx]);
      }
      _mm512_mask_storeu_ps(yr + ox, first16(g.wo - ox), finish(a));
    }
  }
}
#pragma GCC diagnostic pop

}  // namespace

bool max_s2_direct_supported(const PlaneGeo& g) { return avx512_usable() && s2_direct(g); }

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // as in taps_s2
// max_planes' taps in the same order (max_ps(v, acc): a NaN tap is skipped), read by taps_s2
// with -inf for the padding instead of from phase planes.
PTQ_AVX512 void max_s2_direct(const float* x, const PlaneGeo& g, float* y) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  s2_windows(
      x, g, y, ninf, ninf,
      [](__m512 a, int, __m512 v) __attribute__((always_inline, target("avx512f,avx2,fma"))) { return _mm512_max_ps(v, a); },
      [](__m512 a) __attribute__((always_inline, target("avx512f,avx2,fma"))) { return a; });
}
#pragma GCC diagnostic pop

PTQ_AVX2 void max_planes(const float* buf, const PlaneGeo& g, float* y) {
  thread_local TapOffsets taps_cache;
  const int64_t* o = taps_cache.get(g);
  const int64_t taps = g.kh * g.kw, step = row_step(g);
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    float* yr = y + oy * g.wo;
    const float* row = buf + oy * step;
    for (int64_t ox0 = 0; ox0 < g.wo; ox0 += kWindowBlock) {
      __m256 a0 = ninf, a1 = ninf;
      for (int64_t t = 0; t < taps; ++t) {
        const float* p = row + o[t] + ox0;
        // max_ps(v, acc) returns acc when v is NaN or v <= acc: the reference's
        // `acc < v ? v : acc` exactly.
        a0 = _mm256_max_ps(_mm256_loadu_ps(p), a0);
        a1 = _mm256_max_ps(_mm256_loadu_ps(p + 8), a1);
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

namespace {

// Lanes 0..n-1 set (n <= 8): the mask of a short group's loads and stores.
PTQ_AVX2 inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// In-register 8x8 transpose: r[i] lane j <-> r[j] lane i.
PTQ_AVX2 inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// The window sums over the channel-interleaved buffer of depthwise_channels8. 8 outputs of one
// row at a time: one weight load feeds eight FMAs, then an 8x8 transpose turns pixel vectors into
// channel rows for NCHW. Per lane: taps in (ky, kx) order from 0 (zero padding included), + bias,
// then the activation. kStep: floats between neighbouring outputs when known at compile time
// (stride 1: 8, so the eight loads use constant offsets), else 0 and g.sw·8.
template <int64_t kStep>
PTQ_AVX2 void depthwise_rows8(const float* buf, const PlaneGeo& g, int64_t cols, const float* wl, const int64_t* off,
                              __m256 bv, float* y, const Activation* act, int64_t channels) {
  const int64_t step = kStep ? kStep : g.sw * 8, taps = g.kh * g.kw, P = g.ho * g.wo;
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    const float* row = buf + oy * g.sh * cols * 8;
    for (int64_t ox = 0; ox < g.wo; ox += 8) {
      const float* p = row + ox * step;
      __m256 a[8];
      for (int k = 0; k < 8; ++k) a[k] = _mm256_setzero_ps();
      for (int64_t t = 0; t < taps; ++t) {
        const __m256 wv = _mm256_loadu_ps(wl + t * 8);
        const float* q = p + off[t];
        for (int k = 0; k < 8; ++k) a[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(q + k * step), a[k]);
      }
      for (int k = 0; k < 8; ++k) {
        a[k] = _mm256_add_ps(a[k], bv);
        if (act) a[k] = activated(a[k], *act);
      }
      transpose8(a);  // a[l]: channel l, outputs ox..ox+7
      const int64_t n = std::min<int64_t>(8, g.wo - ox);
      float* out = y + oy * g.wo + ox;
      if (n == 8) {
        for (int64_t l = 0; l < channels; ++l) _mm256_storeu_ps(out + l * P, a[l]);
      } else {
        const __m256i mask = first_lanes(n);
        for (int64_t l = 0; l < channels; ++l) _mm256_maskstore_ps(out + l * P, mask, a[l]);
      }
    }
  }
}

// The channel-interleaved padded image of depthwise_channels8/16 (L channels per pixel), with
// the per-tap lane weights, lane biases and tap offsets; per thread, reused across calls.
struct LaneBuffer {
  std::vector<float> buf, wl;
  std::vector<int64_t> off;  // element offset of tap t from the window's corner
  alignas(64) float bl[16] = {};
  int64_t cols = 0;
};

// Fills the thread's LaneBuffer for L lanes: padding zeroed, slack after the last row for the
// L-pixel groups that run past a row's end (their results are dropped), and the inside of each
// row by fill(d, n, ix): n <= L pixels from input pixel ix of every channel into d (n·L floats).
template <int64_t L, typename Fill>
const LaneBuffer& lane_buffer(const PlaneGeo& g, const float* w, const float* bias, int64_t channels, Fill fill) {
  thread_local LaneBuffer b;
  const int64_t rows = g.rows(), cols = (g.wo - 1) * g.sw + (g.kw - 1) * g.dw + 1, taps = g.kh * g.kw;
  b.cols = cols;
  const int64_t slack = (L * g.sw + (g.kw - 1) * g.dw + L) * L;
  b.buf.resize(static_cast<size_t>(rows * cols * L + slack));
  std::fill(b.buf.end() - slack, b.buf.end(), 0.f);
  const int64_t c0 = std::min(cols, std::max<int64_t>(0, g.pl));  // inside columns [c0, c1)
  const int64_t c1 = std::max(c0, std::min(cols, g.w + g.pl));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t iy = r - g.pt;
    float* d = b.buf.data() + r * cols * L;
    if (iy < 0 || iy >= g.h) {  // padding rows
      std::fill(d, d + cols * L, 0.f);
      continue;
    }
    std::fill(d, d + c0 * L, 0.f);
    std::fill(d + c1 * L, d + cols * L, 0.f);
    for (int64_t c = c0; c < c1; c += L) fill(d + c * L, std::min<int64_t>(L, c1 - c), iy * g.w + c - g.pl);
  }
  // Per-tap weights and the bias, lane l = channel l (zero for missing channels).
  b.wl.assign(static_cast<size_t>(taps * L), 0.f);
  std::fill(std::begin(b.bl), std::end(b.bl), 0.f);
  for (int64_t l = 0; l < channels; ++l) {
    for (int64_t t = 0; t < taps; ++t) b.wl[static_cast<size_t>(t * L + l)] = w[l * taps + t];
    b.bl[l] = bias ? bias[l] : 0.f;
  }
  b.off.resize(static_cast<size_t>(taps));
  for (int64_t ky = 0; ky < g.kh; ++ky)
    for (int64_t kx = 0; kx < g.kw; ++kx) b.off[static_cast<size_t>(ky * g.kw + kx)] = (ky * g.dh * cols + kx * g.dw) * L;
  return b;
}

// n <= 8 pixels of 8 channels from input pixel ix, transposed to pixel-major (masked loads for a
// short last group: nothing past the row is read).
PTQ_AVX2 void fill_pixels8(const float* const src[8], int64_t channels, int64_t n, int64_t ix, float* d) {
  const __m256i mask = first_lanes(n);
  __m256 v[8];
  for (int64_t l = 0; l < 8; ++l) v[l] = _mm256_maskload_ps(src[l] + (l < channels ? ix : 0), mask);
  transpose8(v);
  for (int64_t k = 0; k < n; ++k) _mm256_storeu_ps(d + k * 8, v[k]);
}

}  // namespace

PTQ_AVX2 void depthwise_channels8(const float* x, int64_t channels, int64_t plane, const PlaneGeo& g,
                                  const float* w, const float* bias, float* y, const Activation* act) {
  static const float zeros[8] = {};
  const float* src[8];
  for (int64_t l = 0; l < 8; ++l) src[l] = l < channels ? x + l * plane : zeros;
  const LaneBuffer& b = lane_buffer<8>(g, w, bias, channels, [&src, channels](float* d, int64_t n, int64_t ix) {
    fill_pixels8(src, channels, n, ix, d);
  });
  if (g.sw == 1) depthwise_rows8<8>(b.buf.data(), g, b.cols, b.wl.data(), b.off.data(), _mm256_load_ps(b.bl), y, act, channels);
  else depthwise_rows8<0>(b.buf.data(), g, b.cols, b.wl.data(), b.off.data(), _mm256_load_ps(b.bl), y, act, channels);
}

namespace {

// GCC 12's AVX-512 intrinsics pass "undefined" vectors it then warns about.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// In-register 16x16 transpose: r[i] lane j <-> r[j] lane i. Unpacks and shuffles transpose the
// 4x4 blocks inside each 128-bit lane; two rounds of 128-bit lane shuffles move the blocks.
PTQ_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // u[i + j], lane L: rows i..i+3 of column 4L + j
    u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 p01 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), p23 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE);
    const __m512 q01 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44);
    const __m512 q23 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
    r[j] = _mm512_shuffle_f32x4(p01, q01, 0x88);
    r[4 + j] = _mm512_shuffle_f32x4(p01, q01, 0xDD);
    r[8 + j] = _mm512_shuffle_f32x4(p23, q23, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(p23, q23, 0xDD);
  }
}


// depthwise_rows8 with 16 channels in the zmm lanes and 16 outputs per step.
template <int64_t kStep>
PTQ_AVX512 void depthwise_rows16(const float* buf, const PlaneGeo& g, int64_t cols, const float* wl,
                                 const int64_t* off, __m512 bv, float* y, const Activation* act, int64_t channels) {
  const int64_t step = kStep ? kStep : g.sw * 16, taps = g.kh * g.kw, P = g.ho * g.wo;
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    const float* row = buf + oy * g.sh * cols * 16;
    for (int64_t ox = 0; ox < g.wo; ox += 16) {
      const float* p = row + ox * step;
      __m512 a[16];
      for (int k = 0; k < 16; ++k) a[k] = _mm512_setzero_ps();
      for (int64_t t = 0; t < taps; ++t) {
        const __m512 wv = _mm512_loadu_ps(wl + t * 16);
        const float* q = p + off[t];
        for (int k = 0; k < 16; ++k) a[k] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(q + k * step), a[k]);
      }
      for (int k = 0; k < 16; ++k) {
        a[k] = _mm512_add_ps(a[k], bv);
        if (act)  // as activated(): NaN passes through
          a[k] = _mm512_min_ps(_mm512_set1_ps(act->hi), _mm512_max_ps(_mm512_set1_ps(act->lo), a[k]));
      }
      transpose16(a);  // a[l]: channel l, outputs ox..ox+15
      const __mmask16 mask = first16(g.wo - ox);
      float* out = y + oy * g.wo + ox;
      for (int64_t l = 0; l < channels; ++l) _mm512_mask_storeu_ps(out + l * P, mask, a[l]);
    }
  }
}

// n <= 16 pixels of 16 channels, as fill_pixels8.
PTQ_AVX512 void fill_pixels16(const float* const src[16], int64_t channels, int64_t n, int64_t ix, float* d) {
  const __mmask16 mask = first16(n);
  __m512 v[16];
  for (int64_t l = 0; l < 16; ++l) v[l] = _mm512_maskz_loadu_ps(mask, src[l] + (l < channels ? ix : 0));
  transpose16(v);
  for (int64_t k = 0; k < n; ++k) _mm512_storeu_ps(d + k * 16, v[k]);
}

// depthwise_channels8's scheme for up to 16 channels (buffer of 16 channels per pixel).
PTQ_AVX512 void depthwise_channels16(const float* x, int64_t channels, int64_t plane, const PlaneGeo& g,
                                     const float* w, const float* bias, float* y, const Activation* act) {
  static const float zeros[16] = {};
  const float* src[16];
  for (int64_t l = 0; l < 16; ++l) src[l] = l < channels ? x + l * plane : zeros;
  const LaneBuffer& b = lane_buffer<16>(g, w, bias, channels, [&src, channels](float* d, int64_t n, int64_t ix) {
    fill_pixels16(src, channels, n, ix, d);
  });
  const __m512 bv = _mm512_load_ps(b.bl);
  if (g.sw == 1) depthwise_rows16<16>(b.buf.data(), g, b.cols, b.wl.data(), b.off.data(), bv, y, act, channels);
  else depthwise_rows16<0>(b.buf.data(), g, b.cols, b.wl.data(), b.off.data(), bv, y, act, channels);
}

// One channel with its pixels in the lanes, for wide maps: there the channel-lane kernel's
// transposes into and out of its buffer cost as much as its FMAs. Reads the zero-padded phase
// planes (phase_planes.h), so each tap's 16 outputs are one contiguous load. Every pixel is the
// FMA chain of depthwise_rows16 (taps in (ky, kx) order from 0, + bias, then the activation):
// the two kernels give identical results.
// kTaps > 0: the tap count known at compile time (3x3: 9), weights and offsets in registers.
template <int kTaps>
PTQ_AVX512 void plane16_rows(const float* planes, const PlaneGeo& g, const float* w, const int64_t* toff, float bias,
                             float* y, const Activation* act) {
  const int64_t taps = kTaps > 0 ? kTaps : g.kh * g.kw, step = row_step(g);
  constexpr int kFix = kTaps > 0 ? kTaps : 1;
  __m512 wv[kFix];
  int64_t off[kFix];
  for (int t = 0; t < kTaps; ++t) wv[t] = _mm512_set1_ps(w[t]), off[t] = toff[t];
  const __m512 bv = _mm512_set1_ps(bias);
  const __m512 lo = _mm512_set1_ps(act ? act->lo : 0.f), hi = _mm512_set1_ps(act ? act->hi : 0.f);
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    const float* base = planes + oy * step;
    float* yr = y + oy * g.wo;
    int64_t ox = 0;
    if constexpr (kTaps > 0) {
      // Two blocks per step: two independent FMA chains in flight (a few % on 112x112).
      for (; ox + 32 <= g.wo; ox += 32) {
        __m512 a = _mm512_setzero_ps(), b = a;
#pragma GCC unroll 16
        for (int t = 0; t < kTaps; ++t) {
          a = _mm512_fmadd_ps(wv[t], _mm512_loadu_ps(base + off[t] + ox), a);
          b = _mm512_fmadd_ps(wv[t], _mm512_loadu_ps(base + off[t] + ox + 16), b);
        }
        a = _mm512_add_ps(a, bv);
        b = _mm512_add_ps(b, bv);
        if (act) a = _mm512_min_ps(hi, _mm512_max_ps(lo, a)), b = _mm512_min_ps(hi, _mm512_max_ps(lo, b));
        _mm512_storeu_ps(yr + ox, a);
        _mm512_storeu_ps(yr + ox + 16, b);
      }
    }
    for (; ox < g.wo; ox += 16) {
      __m512 a = _mm512_setzero_ps();
      if constexpr (kTaps > 0) {
#pragma GCC unroll 16
        for (int t = 0; t < kTaps; ++t) a = _mm512_fmadd_ps(wv[t], _mm512_loadu_ps(base + off[t] + ox), a);
      } else {
        for (int64_t t = 0; t < taps; ++t)
          a = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_loadu_ps(base + toff[t] + ox), a);
      }
      a = _mm512_add_ps(a, bv);
      if (act) a = _mm512_min_ps(hi, _mm512_max_ps(lo, a));  // as activated(): NaN passes through
      _mm512_mask_storeu_ps(yr + ox, first16(g.wo - ox), a);
    }
  }
}

PTQ_AVX512 void depthwise_plane16(const float* x, const PlaneGeo& g, const float* w, float bias, float* y,
                                  const Activation* act) {
  thread_local std::vector<float> planes;
  thread_local TapOffsets taps_cache;  // every channel of a layer shares the geometry
  build_phase_planes(x, g, 0.f, planes);
  const int64_t* off = taps_cache.get(g);
  if (g.kh * g.kw == 9) plane16_rows<9>(planes.data(), g, w, off, bias, y, act);
  else plane16_rows<0>(planes.data(), g, w, off, bias, y, act);
}

// One channel of a 3x3 stride-2 (columns) depthwise Conv with pixels in the lanes, taps read by
// taps_s2 with zeros for the padding: the FMA chain of depthwise_rows16, so identical results.
PTQ_AVX512 void depthwise_s2_plane16(const float* x, const PlaneGeo& g, const float* w, float bias, float* y,
                                     const Activation* act) {
  __m512 wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = _mm512_set1_ps(w[t]);
  const __m512 bv = _mm512_set1_ps(bias), zero = _mm512_setzero_ps();
  const __m512 lo = _mm512_set1_ps(act ? act->lo : 0.f), hi = _mm512_set1_ps(act ? act->hi : 0.f);
  s2_windows(
      x, g, y, zero, zero,
      [&wv](__m512 a, int t, __m512 v) __attribute__((always_inline, target("avx512f,avx2,fma"))) {
        return _mm512_fmadd_ps(wv[t], v, a);
      },
      [&](__m512 a) __attribute__((always_inline, target("avx512f,avx2,fma"))) {
        a = _mm512_add_ps(a, bv);
        return act ? _mm512_min_ps(hi, _mm512_max_ps(lo, a)) : a;  // as activated(): NaN passes through
      });
}

#pragma GCC diagnostic pop

// Stride-1 output rows at least this wide run one channel at a time with pixels in the lanes,
// and 3x3 stride-2 rows at least kS2DirectMinWo wide read their taps in place. Measured per layer
// against the channel-lane kernel (1 thread, 3x3 + Relu): 112 columns 243 -> 199 us, 80 columns
// 228 -> 201 us, but 56 columns 211 -> 235 us (3.5 vectors a row); stride 2: 56 and 40 outputs
// 366 -> 295 and 119 -> 99 us, 28 outputs 111 -> 117 us.
constexpr int64_t kPlaneLanesMinWo = 64;
constexpr int64_t kS2DirectMinWo = 40;

}  // namespace

bool conv_s2_small_supported(const PlaneGeo& g, int64_t c) { return avx512_usable() && s2_direct(g) && c <= kSmallC; }

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // as in taps_s2
// Output row oy of a Conv with few input channels (at most kSmallC), 3x3 windows with column
// stride 2 (an image model's first layer: C = 3). The row's c·9 taps per output pixel are
// gathered by taps_s2 straight into packed B panels (16 columns each, k-major, as pack_b writes
// them), then the GEMM tiles multiply the packed weights with them: the GEMM path's sums without
// im2col and its packed copy, which cost more than the products on such a layer (27 floats per
// output pixel). A 16-channel FMA loop over the gathered taps instead ran at half the GEMM's
// rate (squeezenet1.1's conv1 549 us vs ORT 331 at 1 thread).
PTQ_AVX512 void conv_s2_small(const float* x, int64_t c, const PlaneGeo& g, const float* pa, int64_t m,
                              const float* bias, float* y, int64_t oy, const Activation* act) {
  const int64_t K = c * 9, HW = g.h * g.w, panels = (g.wo + kNr - 1) / kNr;
  thread_local std::vector<float> strip;
  strip.resize(static_cast<size_t>(panels * kNr * K));
  const float* r[kSmallC][3];
  for (int64_t ci = 0; ci < c; ++ci) rows_s2(x + ci * HW, g, oy, r[ci]);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t p = 0; p < panels; ++p) {
    float* d = strip.data() + p * kNr * K;
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t ky = 0; ky < 3; ++ky) {
        __m512 t[3];
        taps_s2(r[ci][ky], g.w, 2 * p * kNr - g.pl, zero, t);
        for (int64_t kx = 0; kx < 3; ++kx) _mm512_storeu_ps(d + ((ci * 3 + ky) * 3 + kx) * kNr, t[kx]);
      }
  }
  gemm_tiles(pa, strip.data(), nullptr, m, g.wo, K, bias, y + oy * g.wo, g.ho * g.wo, act, K);
}
#pragma GCC diagnostic pop

int64_t depthwise_block_channels() { return avx512_usable() ? 16 : 8; }

void depthwise_channels(const float* x, int64_t channels, int64_t plane, const PlaneGeo& g, const float* w,
                        const float* bias, float* y, const Activation* act) {
  const int64_t taps = g.kh * g.kw, P = g.ho * g.wo;
  if (avx512_usable() && g.sw == 1 && g.wo >= kPlaneLanesMinWo) {
    for (int64_t l = 0; l < channels; ++l)
      depthwise_plane16(x + l * plane, g, w + l * taps, bias ? bias[l] : 0.f, y + l * P, act);
  } else if (avx512_usable() && s2_direct(g) && g.wo >= kS2DirectMinWo) {
    for (int64_t l = 0; l < channels; ++l)
      depthwise_s2_plane16(x + l * plane, g, w + l * taps, bias ? bias[l] : 0.f, y + l * P, act);
  } else if (avx512_usable()) {
    depthwise_channels16(x, channels, plane, g, w, bias, y, act);
  } else {
    depthwise_channels8(x, channels, plane, g, w, bias, y, act);
  }
}

namespace {

// The constants of exp8 and exp16 (one table, so the two widths cannot drift apart: they must give
// the same bits).
struct ExpConstants {
  static constexpr float kLo = -87.3365f, kHi = 88.3762f;         // input clamp
  static constexpr float kLog2e = 1.44269504088896341f;
  static constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // ln 2 in two parts
  static constexpr float kPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                     4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
};

// exp on 8 lanes (Cephes expf: n = round(x·log2 e), r = x - n·ln 2 in two parts, degree-7
// polynomial, 2^n through the exponent bits); within 2 ulp of std::exp on [-87.33, 88.37], inputs
// clamped to that range (outside it the callers' results are 0 or 1 either way); NaN stays NaN.
PTQ_AVX2 inline __m256 exp8(__m256 x) {
  using C = ExpConstants;
  x = _mm256_max_ps(_mm256_set1_ps(C::kLo), _mm256_min_ps(_mm256_set1_ps(C::kHi), x));
  const __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(C::kLog2e), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C::kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C::kLn2Lo), r);
  __m256 p = _mm256_set1_ps(C::kPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C::kPoly[i]));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

PTQ_AVX2 inline __m256 sigmoid8(__m256 v) {
  const __m256 one = _mm256_set1_ps(1.f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
}

// exp8 and sigmoid8 on 16 lanes: the same operations lane by lane (AVX-512 min/max return the
// second operand on NaN as the AVX ones do; roundscale 0x09 is floor), so the same bits.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's AVX-512 intrinsics
PTQ_AVX512 inline __m512 exp16(__m512 x) {
  using C = ExpConstants;
  x = _mm512_max_ps(_mm512_set1_ps(C::kLo), _mm512_min_ps(_mm512_set1_ps(C::kHi), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(C::kLog2e), _mm512_set1_ps(0.5f)),
                                        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C::kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C::kLn2Lo), r);
  __m512 p = _mm512_set1_ps(C::kPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C::kPoly[i]));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// The whole blocks of 16; returns how many elements it did.
PTQ_AVX512 size_t sigmoid16(const float* x, float* y, size_t n) {
  const __m512 one = _mm512_set1_ps(1.f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    _mm512_storeu_ps(y + i, _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), v)))));
  }
  return i;
}
#pragma GCC diagnostic pop

}  // namespace

PTQ_AVX2 void sigmoid(const float* x, float* y, size_t n) {
  size_t i = avx512_usable() ? sigmoid16(x, y, n) : 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, sigmoid8(_mm256_loadu_ps(x + i)));
  if (i < n) {  // the tail through the same lanes, so every element gets the same arithmetic
    alignas(32) float t[8] = {};
    std::memcpy(t, x + i, sizeof(float) * (n - i));
    _mm256_store_ps(t, sigmoid8(_mm256_load_ps(t)));
    std::memcpy(y + i, t, sizeof(float) * (n - i));
  }
}

#else  // not x86: available() is false, so these are never called.

void gemm_packed(const float*, const float*, int64_t, int64_t, int64_t, const float*, float*,
                 int64_t, const Activation*, int64_t) {}
bool gemm_direct_b_supported() { return false; }
void gemm_direct_b(const float*, const float*, const int64_t*, int64_t, int64_t, int64_t, const float*, float*, int64_t,
                   const Activation*, int64_t) {}
void depthwise_channels8(const float*, int64_t, int64_t, const PlaneGeo&, const float*, const float*, float*,
                         const Activation*) {}
int64_t depthwise_block_channels() { return 8; }
void depthwise_channels(const float*, int64_t, int64_t, const PlaneGeo&, const float*, const float*, float*,
                        const Activation*) {}
void max_planes(const float*, const PlaneGeo&, float*) {}
bool conv_s2_small_supported(const PlaneGeo&, int64_t) { return false; }
void conv_s2_small(const float*, int64_t, const PlaneGeo&, const float*, int64_t, const float*, float*, int64_t,
                   const Activation*) {}
bool max_s2_direct_supported(const PlaneGeo&) { return false; }
void max_s2_direct(const float*, const PlaneGeo&, float*) {}
void sigmoid(const float*, float*, size_t) {}

#endif

}  // namespace fast
}  // namespace ptq::runtime
