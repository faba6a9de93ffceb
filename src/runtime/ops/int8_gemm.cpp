// The int8 GEMM core (see int8_gemm.h): AVX2 kernel with a runtime CPU check, scalar reference.
#include "int8_gemm.h"

#include "ptq/core/cpu_features.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define PTQ_INT8_X86 1
#endif

namespace ptq::runtime::int8 {
namespace {

#ifdef PTQ_INT8_X86
bool has_vnni() { return cpu_features().avx_vnni || cpu_features().avx512_vnni; }
#endif

int32_t sat16(int32_t v) { return std::min<int32_t>(32767, std::max<int32_t>(-32768, v)); }

int32_t code(const AView& a, int64_t i, int64_t k) {
  const uint8_t u = a.base[i * a.row_stride + (k / 4) * a.quad_stride + k % 4];
  return a.is_signed ? static_cast<int32_t>(static_cast<int8_t>(u)) : static_cast<int32_t>(u);
}

int32_t zb_of(const std::vector<int32_t>& zb, int64_t j) {
  return zb.size() == 1 ? zb[0] : zb[static_cast<size_t>(j)];
}

// MlasRequantizeOutput for one value: clamp in float (bounds are integers, so clamping before
// rounding is the same), round half to even, add the zero point.
int32_t requant_value(int32_t acc, float scale, int32_t zero, bool is_signed) {
  const float lo = static_cast<float>((is_signed ? -128 : 0) - zero);
  const float hi = static_cast<float>((is_signed ? 127 : 255) - zero);
  const float v = std::min(std::max(static_cast<float>(acc) * scale, lo), hi);
  return static_cast<int32_t>(std::nearbyint(v)) + zero;
}

void store(const Requant* rq, int32_t* c, int64_t c_row, int64_t c_col, int64_t i, int64_t j,
           int32_t acc) {
  if (!rq) {
    c[i * c_row + j * c_col] = acc;
    return;
  }
  const int32_t b = rq->bias ? rq->bias[j] : 0;
  rq->y[i * rq->y_row + j * rq->y_col] =
      static_cast<uint8_t>(requant_value(acc + b, rq->scale[j], rq->zero, rq->is_signed));
}

bool any_nonzero(const std::vector<int32_t>& v) {
  return std::any_of(v.begin(), v.end(), [](int32_t x) { return x != 0; });
}

#ifdef PTQ_INT8_X86
// requantize_row's arithmetic on 8 lanes (bias already added): float(acc) · scale, clamped,
// rounded half to even (the default MXCSR mode, as nearbyint), + zero. The GEMM's fused output
// stage and the depthwise kernel share it. A function, not a lambda: a lambda does not get its
// caller's target attribute in a portable build.
__attribute__((target("avx2"))) inline __m256i requant8(__m256i acc, __m256 scale, __m256 lo_q, __m256 hi_q,
                                                        __m256i zero_q) {
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
  f = _mm256_min_ps(_mm256_max_ps(f, lo_q), hi_q);
  return _mm256_add_epi32(_mm256_cvtps_epi32(f), zero_q);
}

// 16 codes from two vectors of requantized values (in range, so the saturating packs are exact),
// in the order packs_epi32 interleaves them: lo's lanes 0-3, hi's 0-3, lo's 4-7, hi's 4-7 (the
// depthwise kernels' accumulators lay out their outputs or channels so that this is 0-15).
__attribute__((target("avx2"))) inline __m128i codes16(__m256i lo, __m256i hi, bool is_signed) {
  const __m256i q16 = _mm256_packs_epi32(lo, hi);
  const __m256i q8 = is_signed ? _mm256_packs_epi16(q16, q16) : _mm256_packus_epi16(q16, q16);
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(q8, 0x08));
}

// The K loops in assembly: with intrinsics GCC spills one of the 8 accumulators of the pair
// loop (13 of the 16 ymm registers are live), which costs a third of the speed. One 32-byte
// vector of B holds 4 consecutive K codes of 8 columns; each row's 4 codes are broadcast.
//   kPairs: vpmaddubsw (u8 codes × s8 weights, pairs saturated to int16, as MLAS's kernel without
//           VNNI does), vpmaddwd with ones, vpaddd.
//   kVnniVex: vpdpbusd (AVX-VNNI on ymm), the four products summed exactly into int32, as MLAS's
//           VNNI kernels do. Inline assembly needs no target attribute, so the same binary runs
//           on CPUs without them (the caller checks).
//   kVnniZmm: AVX512-VNNI on zmm: one vector holds a quad of all 16 columns; even and odd quads
//           go to two sets of 4 accumulators (integer sums: any order is exact), so eight
//           vpdpbusd chains hide its latency; the sets are added at the end.
//   kWiden: exact sums without VNNI, as MLAS's u8×u8 kernels compute them (for weights stored
//           as uint8, packed with their codes minus 128): codes and weights widened to int16,
//           one vpmaddwd per two K (tile_sums_widen). It replaced splitting each code into
//           a & 0x7f and a & 0x80 for two vpmaddubsw passes, which took twice the multiplies.
enum class KLoop { kPairs, kVnniVex, kVnniZmm, kWiden };

// B of one 16-column block for kWiden: packed [quad][column][4 codes] int8 (PackedB's layout)
// to [quad][even | odd codes][column][2 codes] int16: the first two vectors hold (k0, k2) of
// columns 0-7 and 8-15, the next two (k1, k3). pack_b keeps it for weights summed exactly
// (PackedB::widened); per call it cost as much as the sums themselves for a row or four.
void widen_block(const int8_t* bq, int64_t quads, int16_t* bw) {
  for (int64_t q = 0; q < quads; ++q)
    for (int64_t col = 0; col < 16; ++col)
      for (int64_t r = 0; r < 4; ++r) bw[q * 64 + (r % 2) * 32 + col * 2 + r / 2] = bq[(q * 16 + col) * 4 + r];
}

// kWiden's K loop on 4 rows × 16 columns (see tile_sums), on B widened by widen_block. A row's
// quad a0 a1 a2 a3, broadcast, read as int16 words is (a0 + 256·a1, a2 + 256·a3): masking the
// low bytes gives (a0, a2), shifting the words right by 8 gives (a1, a3), both zero-extended;
// one vpmaddwd of each against the matching weights sums a column's whole quad, exact in int32
// (each product at most 255 · 128, as in the other loops). No shuffles, eight accumulators.
__attribute__((target("avx2"))) void tile_sums_widen(const int16_t* bw, const uint8_t* const r[4], int64_t quads,
                                                     int64_t qs, int32_t* raw) {
  const __m256i low = _mm256_set1_epi16(0x00ff);
  __m256i acc[8];
  for (__m256i& v : acc) v = _mm256_setzero_si256();
  for (int64_t q = 0; q < quads; ++q) {
    const __m256i* b = reinterpret_cast<const __m256i*>(bw + q * 64);
    for (int ri = 0; ri < 4; ++ri) {
      int32_t quad;
      std::memcpy(&quad, r[ri] + q * qs, 4);
      const __m256i a = _mm256_set1_epi32(quad);
      const __m256i even = _mm256_and_si256(a, low), odd = _mm256_srli_epi16(a, 8);
      acc[2 * ri] = _mm256_add_epi32(acc[2 * ri], _mm256_add_epi32(_mm256_madd_epi16(even, _mm256_loadu_si256(b)),
                                                                   _mm256_madd_epi16(odd, _mm256_loadu_si256(b + 2))));
      acc[2 * ri + 1] =
          _mm256_add_epi32(acc[2 * ri + 1], _mm256_add_epi32(_mm256_madd_epi16(even, _mm256_loadu_si256(b + 1)),
                                                             _mm256_madd_epi16(odd, _mm256_loadu_si256(b + 3))));
    }
  }
  for (int i = 0; i < 8; ++i) _mm256_storeu_si256(reinterpret_cast<__m256i*>(raw + 8 * i), acc[i]);
}

#define PTQ_TILE_LOOP_BEGIN                                 \
  "vpxor %%xmm0, %%xmm0, %%xmm0\n\t"                        \
  "vpxor %%xmm1, %%xmm1, %%xmm1\n\t"                        \
  "vpxor %%xmm2, %%xmm2, %%xmm2\n\t"                        \
  "vpxor %%xmm3, %%xmm3, %%xmm3\n\t"                        \
  "vpxor %%xmm4, %%xmm4, %%xmm4\n\t"                        \
  "vpxor %%xmm5, %%xmm5, %%xmm5\n\t"                        \
  "vpxor %%xmm6, %%xmm6, %%xmm6\n\t"                        \
  "vpxor %%xmm7, %%xmm7, %%xmm7\n\t"
#define PTQ_TILE_LOOP_END                                   \
  "add $64, %[bq]\n\t"                                      \
  "add %[qs], %[p0]\n\t"                                    \
  "add %[qs], %[p1]\n\t"                                    \
  "add %[qs], %[p2]\n\t"                                    \
  "add %[qs], %[p3]\n\t"                                    \
  "dec %[n]\n\t"                                            \
  "jnz 1b\n\t"                                              \
  "vmovdqu %%ymm0, (%[out])\n\t"                            \
  "vmovdqu %%ymm1, 32(%[out])\n\t"                          \
  "vmovdqu %%ymm2, 64(%[out])\n\t"                          \
  "vmovdqu %%ymm3, 96(%[out])\n\t"                          \
  "vmovdqu %%ymm4, 128(%[out])\n\t"                         \
  "vmovdqu %%ymm5, 160(%[out])\n\t"                         \
  "vmovdqu %%ymm6, 192(%[out])\n\t"                         \
  "vmovdqu %%ymm7, 224(%[out])\n\t"
// {vex} vpdpbusd: ymmACC += Σ4 u8(ymmA) · s8(ymmB) per dword (AT&T order: B, A, ACC).
#define PTQ_VNNI_STEP                                       \
  "1:\n\t"                                                  \
  "vmovdqu (%[bq]), %%ymm8\n\t"                             \
  "vmovdqu 32(%[bq]), %%ymm9\n\t"                           \
  "vpbroadcastd (%[p0]), %%ymm10\n\t"                       \
  "vpbroadcastd (%[p1]), %%ymm11\n\t"                       \
  "vpbroadcastd (%[p2]), %%ymm12\n\t"                       \
  "vpbroadcastd (%[p3]), %%ymm13\n\t"                       \
  "%{vex%} vpdpbusd %%ymm8, %%ymm10, %%ymm0\n\t"            \
  "%{vex%} vpdpbusd %%ymm9, %%ymm10, %%ymm1\n\t"            \
  "%{vex%} vpdpbusd %%ymm8, %%ymm11, %%ymm2\n\t"            \
  "%{vex%} vpdpbusd %%ymm9, %%ymm11, %%ymm3\n\t"            \
  "%{vex%} vpdpbusd %%ymm8, %%ymm12, %%ymm4\n\t"            \
  "%{vex%} vpdpbusd %%ymm9, %%ymm12, %%ymm5\n\t"            \
  "%{vex%} vpdpbusd %%ymm8, %%ymm13, %%ymm6\n\t"            \
  "%{vex%} vpdpbusd %%ymm9, %%ymm13, %%ymm7\n\t"
#define PTQ_TILE_OPERANDS                                                                       \
  : [bq] "+r"(bq), [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [p3] "+r"(p3), [n] "+r"(n)   \
  : [qs] "r"(qs), [out] "r"(raw)                                                              \
  : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",   \
    "xmm11", "xmm12", "xmm13", "xmm15", "memory", "cc"

// One K quad on zmm: each row's 4 codes (at p_r + OFF) broadcast, times the quad's weights in B,
// into the four accumulators A0-A3.
#define PTQ_ZMM_QUAD(OFF, B, A0, A1, A2, A3)          \
  "vpbroadcastd (%[p0]" OFF "), %%zmm10\n\t"          \
  "vpbroadcastd (%[p1]" OFF "), %%zmm11\n\t"          \
  "vpbroadcastd (%[p2]" OFF "), %%zmm12\n\t"          \
  "vpbroadcastd (%[p3]" OFF "), %%zmm13\n\t"          \
  "vpdpbusd %%" B ", %%zmm10, %%" A0 "\n\t"           \
  "vpdpbusd %%" B ", %%zmm11, %%" A1 "\n\t"           \
  "vpdpbusd %%" B ", %%zmm12, %%" A2 "\n\t"           \
  "vpdpbusd %%" B ", %%zmm13, %%" A3 "\n\t"

// raw[ri·16 + jj] = Σ over the K quads of row ri's codes times column jj's weights (4 rows ×
// 16 columns; quads ≥ 1). `block`: the column block of B, PackedB's int8 layout, or for kWiden
// the widened one (widen_block).
void tile_sums(KLoop kloop, const void* block, const uint8_t* const r[4], int64_t quads, int64_t qs,
               int32_t* raw) {
  if (kloop == KLoop::kWiden) {
    tile_sums_widen(static_cast<const int16_t*>(block), r, quads, qs, raw);
    return;
  }
  const int8_t* bq = static_cast<const int8_t*>(block);
  const uint8_t *p0 = r[0], *p1 = r[1], *p2 = r[2], *p3 = r[3];
  int64_t n = quads;
  switch (kloop) {
    case KLoop::kVnniVex:
      __asm__ volatile(PTQ_TILE_LOOP_BEGIN PTQ_VNNI_STEP PTQ_TILE_LOOP_END PTQ_TILE_OPERANDS);
      return;
    case KLoop::kVnniZmm: {
      int64_t odd = quads % 2;
      n = quads / 2;
      __asm__ volatile(
          "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
          "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"
          "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"
          "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"
          "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"
          "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"
          "vpxord %%zmm6, %%zmm6, %%zmm6\n\t"
          "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"
          "test %[n], %[n]\n\t"
          "jz 2f\n\t"
          "1:\n\t"
          "vmovdqu32 (%[bq]), %%zmm8\n\t"
          "vmovdqu32 64(%[bq]), %%zmm9\n\t"
          PTQ_ZMM_QUAD("", "zmm8", "zmm0", "zmm1", "zmm2", "zmm3")
          PTQ_ZMM_QUAD(",%[qs]", "zmm9", "zmm4", "zmm5", "zmm6", "zmm7")
          "add $128, %[bq]\n\t"
          "lea (%[p0],%[qs],2), %[p0]\n\t"
          "lea (%[p1],%[qs],2), %[p1]\n\t"
          "lea (%[p2],%[qs],2), %[p2]\n\t"
          "lea (%[p3],%[qs],2), %[p3]\n\t"
          "dec %[n]\n\t"
          "jnz 1b\n\t"
          "2:\n\t"
          "test %[odd], %[odd]\n\t"
          "jz 3f\n\t"
          "vmovdqu32 (%[bq]), %%zmm8\n\t"
          PTQ_ZMM_QUAD("", "zmm8", "zmm0", "zmm1", "zmm2", "zmm3")
          "3:\n\t"
          "vpaddd %%zmm4, %%zmm0, %%zmm0\n\t"
          "vpaddd %%zmm5, %%zmm1, %%zmm1\n\t"
          "vpaddd %%zmm6, %%zmm2, %%zmm2\n\t"
          "vpaddd %%zmm7, %%zmm3, %%zmm3\n\t"
          "vmovdqu32 %%zmm0, (%[out])\n\t"
          "vmovdqu32 %%zmm1, 64(%[out])\n\t"
          "vmovdqu32 %%zmm2, 128(%[out])\n\t"
          "vmovdqu32 %%zmm3, 192(%[out])\n\t"
          : [bq] "+r"(bq), [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [p3] "+r"(p3), [n] "+r"(n),
            [odd] "+r"(odd)
          : [qs] "r"(qs), [out] "r"(raw)
          : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
            "xmm11", "xmm12", "xmm13", "memory", "cc");
      return;
    }
    case KLoop::kWiden:  // above
    case KLoop::kPairs:
      break;
  }
  __asm__ volatile(
      PTQ_TILE_LOOP_BEGIN
      "vpcmpeqw %%ymm15, %%ymm15, %%ymm15\n\t"
      "vpsrlw $15, %%ymm15, %%ymm15\n\t"
      "1:\n\t"
      "vmovdqu (%[bq]), %%ymm8\n\t"
      "vmovdqu 32(%[bq]), %%ymm9\n\t"
      "vpbroadcastd (%[p0]), %%ymm10\n\t"
      "vpmaddubsw %%ymm8, %%ymm10, %%ymm11\n\t"
      "vpmaddwd %%ymm15, %%ymm11, %%ymm11\n\t"
      "vpaddd %%ymm11, %%ymm0, %%ymm0\n\t"
      "vpmaddubsw %%ymm9, %%ymm10, %%ymm10\n\t"
      "vpmaddwd %%ymm15, %%ymm10, %%ymm10\n\t"
      "vpaddd %%ymm10, %%ymm1, %%ymm1\n\t"
      "vpbroadcastd (%[p1]), %%ymm12\n\t"
      "vpmaddubsw %%ymm8, %%ymm12, %%ymm13\n\t"
      "vpmaddwd %%ymm15, %%ymm13, %%ymm13\n\t"
      "vpaddd %%ymm13, %%ymm2, %%ymm2\n\t"
      "vpmaddubsw %%ymm9, %%ymm12, %%ymm12\n\t"
      "vpmaddwd %%ymm15, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm12, %%ymm3, %%ymm3\n\t"
      "vpbroadcastd (%[p2]), %%ymm10\n\t"
      "vpmaddubsw %%ymm8, %%ymm10, %%ymm11\n\t"
      "vpmaddwd %%ymm15, %%ymm11, %%ymm11\n\t"
      "vpaddd %%ymm11, %%ymm4, %%ymm4\n\t"
      "vpmaddubsw %%ymm9, %%ymm10, %%ymm10\n\t"
      "vpmaddwd %%ymm15, %%ymm10, %%ymm10\n\t"
      "vpaddd %%ymm10, %%ymm5, %%ymm5\n\t"
      "vpbroadcastd (%[p3]), %%ymm12\n\t"
      "vpmaddubsw %%ymm8, %%ymm12, %%ymm13\n\t"
      "vpmaddwd %%ymm15, %%ymm13, %%ymm13\n\t"
      "vpaddd %%ymm13, %%ymm6, %%ymm6\n\t"
      "vpmaddubsw %%ymm9, %%ymm12, %%ymm12\n\t"
      "vpmaddwd %%ymm15, %%ymm12, %%ymm12\n\t"
      "vpaddd %%ymm12, %%ymm7, %%ymm7\n\t"
      PTQ_TILE_LOOP_END
      PTQ_TILE_OPERANDS);
}
#undef PTQ_TILE_LOOP_BEGIN
#undef PTQ_TILE_LOOP_END
#undef PTQ_VNNI_STEP
#undef PTQ_TILE_OPERANDS
#undef PTQ_ZMM_QUAD

// Σ_k a(i, k) for every row of uint8 codes (the z_b · Σa term; uint8 weights, packed as codes
// minus 128, always have a zero point). Rows interleaved by quads (the conv layout: row_stride 4)
// sum 8 rows' quads per vector; contiguous rows (quad_stride 4) 32 codes per vpsadbw; codes from
// K to K4 are zero. A scalar loop of code() here took longer than the GEMM it served.
__attribute__((target("avx2"))) void row_sums_avx2(const AView& a, int64_t quads, int32_t* row_sum) {
  const int64_t m = a.m;
  if (a.row_stride == 4) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t q = 0; q < quads; ++q) {
      const uint8_t* p = a.base + q * a.quad_stride;
      int64_t i = 0;
      for (; i + 8 <= m; i += 8) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4 * i));
        const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(v, ones8), ones16);
        __m256i* out = reinterpret_cast<__m256i*>(row_sum + i);
        _mm256_storeu_si256(out, _mm256_add_epi32(_mm256_loadu_si256(out), s));
      }
      for (; i < m; ++i) row_sum[i] += p[4 * i] + p[4 * i + 1] + p[4 * i + 2] + p[4 * i + 3];
    }
    return;
  }
  for (int64_t i = 0; i < m; ++i) {
    int64_t sum = 0;
    const uint8_t* row = a.base + i * a.row_stride;
    int64_t q = 0;
    if (a.quad_stride == 4) {
      __m256i acc = _mm256_setzero_si256();
      for (; q + 8 <= quads; q += 8)
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 4 * q)),
                                                     _mm256_setzero_si256()));
      alignas(32) int64_t part[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(part), acc);
      sum = part[0] + part[1] + part[2] + part[3];
    }
    for (; q < quads; ++q) {
      const uint8_t* p = row + q * a.quad_stride;
      sum += p[0] + p[1] + p[2] + p[3];
    }
    row_sum[i] = static_cast<int32_t>(sum);
  }
}

// 4 rows × 16 columns per step: the K loop (tile_sums), then the zero-point terms and the
// optional fused output stage on 8 lanes.
__attribute__((target("avx2"))) void gemm_avx2_tiles(KLoop kloop, const AView& a, const PackedB& b,
                                                      const std::vector<int32_t>& zb, int32_t* c,
                                                      int64_t c_row, int64_t c_col,
                                                      const Requant* rq, int64_t j0, int64_t j1) {
  const int64_t quads = b.k4 / 4;
  const bool zb_used = any_nonzero(zb);
  std::vector<int32_t> row_sum(static_cast<size_t>(a.m), 0);
  if (zb_used) row_sums_avx2(a, b.k4 / 4, row_sum.data());
  alignas(32) int32_t tile[4][16];
  thread_local std::vector<int16_t> bw;  // kWiden's block of B, widened here when pack_b did not
  // Per column of the block: the zero-point terms (+ bias), z_b, the output scale.
  alignas(32) int32_t fix[16], zbs[16];
  alignas(32) float scale[16];
  const float lo = rq ? static_cast<float>((rq->is_signed ? -128 : 0) - rq->zero) : 0.f;
  const float hi = rq ? static_cast<float>((rq->is_signed ? 127 : 255) - rq->zero) : 0.f;
  for (int64_t nb = j0 / 16; nb < (j1 + 15) / 16; ++nb) {
    const int8_t* bp = b.packed.data() + nb * quads * 64;
    const int64_t cols = std::min<int64_t>(16, j1 - nb * 16);
    const void* block = bp;
    if (kloop == KLoop::kWiden && !b.widened.empty()) {
      block = b.widened.data() + nb * quads * 64;
    } else if (kloop == KLoop::kWiden) {  // weights not packed for exact sums (ConvInteger's int8)
      bw.resize(static_cast<size_t>(quads * 64));
      widen_block(bp, quads, bw.data());
      block = bw.data();
    }
    for (int64_t jj = 0; jj < 16; ++jj) {
      const int64_t j = nb * 16 + jj;
      if (jj >= cols) {
        fix[jj] = zbs[jj] = 0;
        scale[jj] = 0.f;
        continue;
      }
      const int32_t z = zb_of(zb, j);
      zbs[jj] = z;
      fix[jj] = -a.zero * b.col_sum[static_cast<size_t>(j)] + static_cast<int32_t>(b.k) * a.zero * z +
                (rq && rq->bias ? rq->bias[j] : 0);
      scale[jj] = rq ? rq->scale[j] : 0.f;
    }
    for (int64_t i0 = 0; i0 < a.m; i0 += 4) {
      const int64_t rows = std::min<int64_t>(4, a.m - i0);
      const uint8_t* r[4];
      for (int64_t r_ = 0; r_ < 4; ++r_) r[r_] = a.base + (i0 + std::min(r_, rows - 1)) * a.row_stride;
      alignas(32) int32_t raw[4][16];
      tile_sums(kloop, block, r, quads, a.quad_stride, &raw[0][0]);
      // acc + fix − z_b·Σa, then (fused output stage) scale, clamp, round half to even, + z_y.
      // Constants come from memory here, after the K loop (no lambdas: clang does not give them
      // this function's target).
      for (int64_t ri = 0; ri < 4; ++ri) {
        const int64_t i = std::min(i0 + ri, a.m - 1);
        for (int h = 0; h < 16; h += 8) {
          __m256i v = _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(&raw[ri][h])),
                                       _mm256_load_si256(reinterpret_cast<const __m256i*>(fix + h)));
          if (zb_used)
            v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(zbs + h)),
                                                       _mm256_set1_epi32(row_sum[static_cast<size_t>(i)])));
          if (rq)
            v = requant8(v, _mm256_load_ps(scale + h), _mm256_set1_ps(lo), _mm256_set1_ps(hi),
                         _mm256_set1_epi32(rq->zero));
          _mm256_store_si256(reinterpret_cast<__m256i*>(&tile[ri][h]), v);
        }
      }
      if (rq && rq->y_row == 1 && rows == 4) {  // 4 consecutive pixels per channel: one dword
        // Codes are in range already, so the saturating packs are exact; then a byte shuffle
        // gathers each column's 4 rows: lane k of `d` holds the dword of column 4·lane + k.
        const __m256i order = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                               0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        alignas(32) uint32_t d[16];
        for (int h = 0; h < 16; h += 8) {
          const __m256i t0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(&tile[0][h]));
          const __m256i t1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(&tile[1][h]));
          const __m256i t2 = _mm256_load_si256(reinterpret_cast<const __m256i*>(&tile[2][h]));
          const __m256i t3 = _mm256_load_si256(reinterpret_cast<const __m256i*>(&tile[3][h]));
          const __m256i w01 = rq->is_signed ? _mm256_packs_epi32(t0, t1) : _mm256_packus_epi32(t0, t1);
          const __m256i w23 = rq->is_signed ? _mm256_packs_epi32(t2, t3) : _mm256_packus_epi32(t2, t3);
          const __m256i bytes = rq->is_signed ? _mm256_packs_epi16(w01, w23) : _mm256_packus_epi16(w01, w23);
          _mm256_store_si256(reinterpret_cast<__m256i*>(d + h), _mm256_shuffle_epi8(bytes, order));
        }
        uint8_t* y = rq->y + i0 + nb * 16 * rq->y_col;
        // d[0..3]: columns 0-3, d[4..7]: 4-7 (second lane), d[8..15]: 8-15.
        for (int64_t jj = 0; jj < cols; ++jj) __builtin_memcpy(y + jj * rq->y_col, &d[jj], 4);
      } else if (rq) {
        uint8_t* y = rq->y + i0 * rq->y_row + nb * 16 * rq->y_col;
        for (int64_t jj = 0; jj < cols; ++jj)
          for (int64_t ri = 0; ri < rows; ++ri)
            y[ri * rq->y_row + jj * rq->y_col] = static_cast<uint8_t>(tile[ri][jj]);
      } else {
        int32_t* cc = c + i0 * c_row + nb * 16 * c_col;
        for (int64_t jj = 0; jj < cols; ++jj)
          for (int64_t ri = 0; ri < rows; ++ri) cc[ri * c_row + jj * c_col] = tile[ri][jj];
      }
    }
  }
}

// Where the depthwise kernel's 16-output blocks go: int32 accumulators, or (fused output stage)
// requantized codes, as requantize_row computes them.
struct DepthwiseStore {
  int32_t* acc = nullptr;
  const DepthwiseRequant* rq = nullptr;
};

// kPairs > 0: the tap-pair count, known at compile time (3x3: 5), so the pair weights stay in
// registers; 0: any count. An odd tap count reads its last tap twice against a zero weight.
template <int kPairs>
__attribute__((target("avx2"))) void depthwise_avx2(const int16_t* plane, const DepthwiseGeo& g,
                                                     const int32_t* w, const int64_t* tap, int64_t taps,
                                                     const DepthwiseStore& out) {
  const int64_t pairs = kPairs > 0 ? kPairs : (taps + 1) / 2;
  // Taps in pairs for vpmaddwd: (w[t], w[t+1]) against interleaved (x_t, x_t+1), exact in int32
  // (centred codes and weights fit int16).
  // Per-thread scratch, not per-call vectors: a 7x7 plane's whole work is a few hundred cycles,
  // which heap allocations per channel doubled.
  thread_local std::vector<int32_t> wpair;
  thread_local std::vector<int64_t> to;
  wpair.resize(static_cast<std::size_t>(pairs));
  to.resize(static_cast<std::size_t>(2 * pairs));
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t t = 2 * p;
    const int32_t w1 = t + 1 < taps ? w[t + 1] : 0;
    wpair[static_cast<std::size_t>(p)] =
        static_cast<int32_t>((static_cast<uint32_t>(w[t]) & 0xFFFFu) | (static_cast<uint32_t>(w1) << 16));
    to[static_cast<std::size_t>(t)] = tap[t];
    to[static_cast<std::size_t>(t + 1)] = t + 1 < taps ? tap[t + 1] : tap[t];
  }
  __m256i wfix[kPairs > 0 ? kPairs : 1];  // the fixed count's weights, in registers
  for (int p = 0; p < kPairs; ++p) wfix[p] = _mm256_set1_epi32(wpair[static_cast<std::size_t>(p)]);
  const DepthwiseRequant* rq = out.rq;
  const __m256i bias = _mm256_set1_epi32(rq ? rq->bias : 0);
  const __m256 scale = _mm256_set1_ps(rq ? rq->scale : 0.f);
  const __m256 lo_q = _mm256_set1_ps(rq ? static_cast<float>((rq->is_signed ? -128 : 0) - rq->zero) : 0.f);
  const __m256 hi_q = _mm256_set1_ps(rq ? static_cast<float>((rq->is_signed ? 127 : 255) - rq->zero) : 0.f);
  const __m256i zero_q = _mm256_set1_epi32(rq ? rq->zero : 0);
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    const int16_t* row = plane + oy * g.sh * g.phase_cols;
    for (int64_t ox = 0; ox < g.wo; ox += 16) {
      __m256i lo = _mm256_setzero_si256(), hi = lo;
      for (int64_t p = 0; p < pairs; ++p) {
        const auto k = static_cast<std::size_t>(p);
        const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + to[2 * k] + ox));
        const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + to[2 * k + 1] + ox));
        const __m256i wv = kPairs > 0 ? wfix[p] : _mm256_set1_epi32(wpair[k]);
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wv));
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wv));
      }
      // lo holds outputs 0-3 | 8-11, hi 4-7 | 12-15 (per 128-bit lane).
      const int64_t n = std::min<int64_t>(16, g.wo - ox);
      if (!rq) {
        alignas(32) int32_t line[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(line), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_store_si256(reinterpret_cast<__m256i*>(line + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
        std::memcpy(out.acc + oy * g.wo + ox, line, static_cast<std::size_t>(n) * sizeof(int32_t));
        continue;
      }
      const __m128i codes = codes16(requant8(_mm256_add_epi32(lo, bias), scale, lo_q, hi_q, zero_q),
                                    requant8(_mm256_add_epi32(hi, bias), scale, lo_q, hi_q, zero_q), rq->is_signed);
      uint8_t* y = rq->y + oy * g.wo + ox;
      if (n == 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y), codes);
      } else {
        alignas(16) uint8_t part[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(part), codes);
        std::memcpy(y, part, static_cast<std::size_t>(n));
      }
    }
  }
}

__attribute__((target("avx2"))) int64_t widen_pairs_avx2(const uint8_t* src, int64_t n, int32_t zero,
                                                         int16_t* even, int16_t* odd) {
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zero));
  const __m256i low = _mm256_set1_epi16(0x00FF);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * j));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(even + j), _mm256_sub_epi16(_mm256_and_si256(v, low), z));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(odd + j), _mm256_sub_epi16(_mm256_srli_epi16(v, 8), z));
  }
  return j;
}

__attribute__((target("avx2"))) int64_t every_second_byte_avx2(const uint8_t* src, int64_t n, int64_t avail,
                                                                uint8_t* dst) {
  const __m256i low = _mm256_set1_epi16(0x00FF);
  int64_t j = 0;
  for (; j + 32 <= n && 2 * j + 64 <= avail; j += 32) {
    const __m256i a = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * j)), low);
    const __m256i b = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * j + 32)), low);
    // packus interleaves 128-bit lanes (a0 b0 a1 b1): the permute restores the order.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j),
                        _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xD8));
  }
  if (j + 16 <= n && 2 * j + 32 <= avail) {  // 16 more (pool rows of 24-56 codes end here)
    const __m128i lo = _mm256_castsi256_si128(low);
    const __m128i a = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * j)), lo);
    const __m128i b = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * j + 16)), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j), _mm_packus_epi16(a, b));
    j += 16;
  }
  return j;
}

__attribute__((target("avx2"))) void interleave4_avx2(const uint8_t* const rows[4], int64_t n,
                                                       uint8_t* dst) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[0] + i));
    const __m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[1] + i));
    const __m128i r2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[2] + i));
    const __m128i r3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[3] + i));
    const __m128i lo01 = _mm_unpacklo_epi8(r0, r1), hi01 = _mm_unpackhi_epi8(r0, r1);
    const __m128i lo23 = _mm_unpacklo_epi8(r2, r3), hi23 = _mm_unpackhi_epi8(r2, r3);
    __m128i* d = reinterpret_cast<__m128i*>(dst + 4 * i);
    _mm_storeu_si128(d + 0, _mm_unpacklo_epi16(lo01, lo23));
    _mm_storeu_si128(d + 1, _mm_unpackhi_epi16(lo01, lo23));
    _mm_storeu_si128(d + 2, _mm_unpacklo_epi16(hi01, hi23));
    _mm_storeu_si128(d + 3, _mm_unpackhi_epi16(hi01, hi23));
  }
  for (; i < n; ++i)
    for (int r = 0; r < 4; ++r) dst[4 * i + r] = rows[r][i];
}

// 16x16 byte transpose: rows[i] byte j -> out[j] byte i (SSE2 unpacks: bytes, words, dwords,
// qwords).
__attribute__((target("avx2"))) inline void transpose16x16(const __m128i rows[16], __m128i out[16]) {
  __m128i s1[8][2], s2[4][4], s3[2][8];
  for (int j = 0; j < 8; ++j) {  // channel pair j, pixel half q
    s1[j][0] = _mm_unpacklo_epi8(rows[2 * j], rows[2 * j + 1]);
    s1[j][1] = _mm_unpackhi_epi8(rows[2 * j], rows[2 * j + 1]);
  }
  for (int k = 0; k < 4; ++k)  // channel quad k, pixel quarter r
    for (int q = 0; q < 2; ++q) {
      s2[k][2 * q] = _mm_unpacklo_epi16(s1[2 * k][q], s1[2 * k + 1][q]);
      s2[k][2 * q + 1] = _mm_unpackhi_epi16(s1[2 * k][q], s1[2 * k + 1][q]);
    }
  for (int o = 0; o < 2; ++o)  // channel octet o, pixel pair e
    for (int r = 0; r < 4; ++r) {
      s3[o][2 * r] = _mm_unpacklo_epi32(s2[2 * o][r], s2[2 * o + 1][r]);
      s3[o][2 * r + 1] = _mm_unpackhi_epi32(s2[2 * o][r], s2[2 * o + 1][r]);
    }
  for (int e = 0; e < 8; ++e) {
    out[2 * e] = _mm_unpacklo_epi64(s3[0][e], s3[1][e]);
    out[2 * e + 1] = _mm_unpackhi_epi64(s3[0][e], s3[1][e]);
  }
}

// depthwise_lanes' window sums on AVX512-VNNI: a pixel's 16 channels of taps t and t + 1 widened
// into one zmm of (x_t, x_t+1) int16 pairs, summed with the channels' weight pairs by one
// vpdpwssd (exact int32, as vpmaddwd + vpaddd), then requant8's arithmetic on 16 lanes and a
// saturating narrow (the codes are in range). `off`: the taps' element offsets in pairs, as the
// AVX2 loop reads them. Codes pixel-major into obuf, channels 0-15 per pixel.
// kPairs > 0: the pair count known at compile time (3x3: 5), weights and offsets in registers.
template <int kPairs>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void depthwise_lanes_vnni(const int16_t* buf, const DepthwiseLanes& d,
                                                                               int64_t wp, const int64_t* off,
                                                                               uint8_t* obuf) {
  const int64_t taps = d.kh * d.kw, pairs = kPairs > 0 ? kPairs : (taps + 1) / 2;
  thread_local std::vector<int32_t> wq;  // [pair][16 channels]: (w_t & 0xFFFF) | w_t+1 << 16
  wq.assign(static_cast<std::size_t>(pairs * 16), 0);
  for (int64_t p = 0; p < pairs; ++p)
    for (int64_t l = 0; l < d.channels; ++l) {
      const int64_t t0 = 2 * p, t1 = 2 * p + 1;
      const int32_t w0 = d.wc[l * taps + t0], w1 = t1 < taps ? d.wc[l * taps + t1] : 0;
      wq[static_cast<std::size_t>(p * 16 + l)] =
          static_cast<int32_t>((static_cast<uint32_t>(w0) & 0xFFFFu) | (static_cast<uint32_t>(w1) << 16));
    }
  alignas(64) int32_t bias[16] = {};
  alignas(64) float scale[16] = {};
  for (int64_t l = 0; l < d.channels; ++l) {
    bias[l] = d.bias ? d.bias[l] : 0;
    scale[l] = d.scale[l];
  }
  const __m512i bv = _mm512_load_si512(bias);
  const __m512 sv = _mm512_load_ps(scale);
  const __m512 lo_q = _mm512_set1_ps(static_cast<float>((d.y_signed ? -128 : 0) - d.zero));
  const __m512 hi_q = _mm512_set1_ps(static_cast<float>((d.y_signed ? 127 : 255) - d.zero));
  const __m512i zero_q = _mm512_set1_epi32(d.zero);
  constexpr int kFix = kPairs > 0 ? kPairs : 1;
  __m512i wfix[kFix];
  int64_t o0[kFix], o1[kFix];
  for (int p = 0; p < kPairs; ++p) {
    wfix[p] = _mm512_loadu_si512(wq.data() + p * 16);
    o0[p] = off[2 * p], o1[p] = off[2 * p + 1];
  }
  const auto pair_sum = [](__m512i acc, const int16_t* a, const int16_t* b, __m512i w)
      __attribute__((always_inline, target("avx512f,avx512bw,avx512vnni"))) {
    const __m512i x0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)));
    const __m512i x1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
    return _mm512_dpwssd_epi32(acc, _mm512_or_si512(x0, _mm512_slli_epi32(x1, 16)), w);
  };
  uint8_t* out = obuf;
  for (int64_t oy = 0; oy < d.ho; ++oy)
    for (int64_t ox = 0; ox < d.wo; ++ox, out += 16) {
      const int16_t* base = buf + (oy * d.sh * wp + ox * d.sw) * 16;
      __m512i acc = _mm512_setzero_si512();
      if constexpr (kPairs > 0) {
#pragma GCC unroll 8
        for (int p = 0; p < kPairs; ++p) acc = pair_sum(acc, base + o0[p], base + o1[p], wfix[p]);
      } else {
        for (int64_t p = 0; p < pairs; ++p)
          acc = pair_sum(acc, base + off[2 * p], base + off[2 * p + 1], _mm512_loadu_si512(wq.data() + p * 16));
      }
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, bv)), sv);
      f = _mm512_min_ps(_mm512_max_ps(f, lo_q), hi_q);
      const __m512i c = _mm512_add_epi32(_mm512_cvtps_epi32(f), zero_q);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), d.y_signed ? _mm512_cvtsepi32_epi8(c) : _mm512_cvtusepi32_epi8(c));
    }
}

__attribute__((target("avx2"))) void depthwise_lanes_avx2(const DepthwiseLanes& d) {
  const int64_t hp = (d.ho - 1) * d.sh + (d.kh - 1) * d.dh + 1;
  const int64_t wp = (d.wo - 1) * d.sw + (d.kw - 1) * d.dw + 1;
  const int64_t HW = d.h * d.w, P = d.ho * d.wo, taps = d.kh * d.kw, pairs = (taps + 1) / 2;
  // The centred, zero-padded image, 16 int16 channels per pixel (padding is the zero point: 0).
  thread_local std::vector<int16_t> buf;
  buf.assign(static_cast<std::size_t>(hp * wp * 16), 0);
  const __m256i zx = _mm256_set1_epi16(static_cast<int16_t>(d.zx));
  {
    alignas(16) static const uint8_t zeros[16] = {};
    __m128i rows[16], px[16];
    int64_t iy = 0, ix = 0;  // of pixel p
    for (int64_t p = 0; p < HW; p += 16) {
      const int64_t n = std::min<int64_t>(16, HW - p);
      for (int64_t l = 0; l < 16; ++l) {
        if (l >= d.channels) {
          rows[l] = _mm_load_si128(reinterpret_cast<const __m128i*>(zeros));
        } else if (n == 16) {
          rows[l] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d.x + l * HW + p));
        } else {  // nothing past the plane is read
          alignas(16) uint8_t part[16] = {};
          std::memcpy(part, d.x + l * HW + p, static_cast<std::size_t>(n));
          rows[l] = _mm_load_si128(reinterpret_cast<const __m128i*>(part));
        }
      }
      transpose16x16(rows, px);
      for (int64_t k = 0; k < n; ++k) {
        const int64_t r = iy + d.pt, c = ix + d.pl;
        if (r >= 0 && r < hp && c >= 0 && c < wp)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(buf.data() + (r * wp + c) * 16),
                              _mm256_sub_epi16(_mm256_cvtepu8_epi16(px[k]), zx));
        if (++ix == d.w) ix = 0, ++iy;
      }
    }
  }
  thread_local std::vector<int64_t> off;  // [pair][tap t, tap t + 1] element offsets
  off.resize(static_cast<std::size_t>(2 * pairs));
  for (int64_t p = 0; p < pairs; ++p) {  // an odd count's last pair reads its tap twice
    const int64_t t0 = 2 * p, t1 = 2 * p + 1 < taps ? 2 * p + 1 : 2 * p;
    off[static_cast<std::size_t>(2 * p)] = ((t0 / d.kw) * d.dh * wp + (t0 % d.kw) * d.dw) * 16;
    off[static_cast<std::size_t>(2 * p + 1)] = ((t1 / d.kw) * d.dh * wp + (t1 % d.kw) * d.dw) * 16;
  }
  // Output codes pixel-major, 16 channels per pixel (rows padded to 16 pixels for the transpose).
  thread_local std::vector<uint8_t> obuf;
  obuf.resize(static_cast<std::size_t>((P + 15) / 16 * 16 * 16));
  if (cpu_features().avx512_vnni) {
    if (pairs == 5) depthwise_lanes_vnni<5>(buf.data(), d, wp, off.data(), obuf.data());
    else depthwise_lanes_vnni<0>(buf.data(), d, wp, off.data(), obuf.data());
  } else {
    // Tap pairs, interleaved as vpmaddwd reads them: lo covers channels 0-3 | 8-11, hi 4-7 | 12-15.
    thread_local std::vector<int16_t> wpair;  // [pair][lo, hi][16]
    wpair.resize(static_cast<std::size_t>(2 * pairs * 16));
    for (int64_t p = 0; p < pairs; ++p) {
      alignas(32) int16_t w0[16] = {}, w1[16] = {};
      const int64_t t0 = 2 * p, t1 = 2 * p + 1 < taps ? 2 * p + 1 : 2 * p;
      for (int64_t l = 0; l < d.channels; ++l) {
        w0[l] = static_cast<int16_t>(d.wc[l * taps + t0]);
        w1[l] = t1 != t0 ? static_cast<int16_t>(d.wc[l * taps + t1]) : int16_t{0};
      }
      const __m256i a = _mm256_load_si256(reinterpret_cast<const __m256i*>(w0));
      const __m256i b = _mm256_load_si256(reinterpret_cast<const __m256i*>(w1));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(wpair.data() + 2 * p * 16), _mm256_unpacklo_epi16(a, b));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(wpair.data() + (2 * p + 1) * 16), _mm256_unpackhi_epi16(a, b));
    }
    alignas(32) int32_t bias[16] = {};
    alignas(32) float scale[16] = {};
    for (int64_t l = 0; l < d.channels; ++l) {
      // lane order of the lo / hi accumulators
      const int64_t slot = (l % 8 < 4 ? 0 : 8) + (l / 8) * 4 + l % 4;
      bias[slot] = d.bias ? d.bias[l] : 0;
      scale[slot] = d.scale[l];
    }
    const __m256i bias_lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(bias));
    const __m256i bias_hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(bias + 8));
    const __m256 scale_lo = _mm256_load_ps(scale), scale_hi = _mm256_load_ps(scale + 8);
    const __m256 lo_q = _mm256_set1_ps(static_cast<float>((d.y_signed ? -128 : 0) - d.zero));
    const __m256 hi_q = _mm256_set1_ps(static_cast<float>((d.y_signed ? 127 : 255) - d.zero));
    const __m256i zero_q = _mm256_set1_epi32(d.zero);
    for (int64_t oy = 0; oy < d.ho; ++oy)
      for (int64_t ox = 0; ox < d.wo; ++ox) {
        const int16_t* base = buf.data() + (oy * d.sh * wp + ox * d.sw) * 16;
        __m256i lo = _mm256_setzero_si256(), hi = lo;
        for (int64_t p = 0; p < pairs; ++p) {
          const auto k = static_cast<std::size_t>(2 * p);
          const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + off[k]));
          const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + off[k + 1]));
          const __m256i wlo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wpair.data() + k * 16));
          const __m256i whi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wpair.data() + (k + 1) * 16));
          lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wlo));
          hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), whi));
        }
        // codes16's order is channels 0-15.
        _mm_storeu_si128(reinterpret_cast<__m128i*>(obuf.data() + (oy * d.wo + ox) * 16),
                         codes16(requant8(_mm256_add_epi32(lo, bias_lo), scale_lo, lo_q, hi_q, zero_q),
                                 requant8(_mm256_add_epi32(hi, bias_hi), scale_hi, lo_q, hi_q, zero_q), d.y_signed));
      }
  }
  // Back to planes: 16 pixels x 16 channels at a time.
  __m128i rows[16], ch[16];
  for (int64_t p = 0; p < P; p += 16) {
    for (int k = 0; k < 16; ++k)
      rows[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(obuf.data() + (p + k) * 16));
    transpose16x16(rows, ch);
    const int64_t n = std::min<int64_t>(16, P - p);
    for (int64_t l = 0; l < d.channels; ++l) {
      if (n == 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d.y + l * P + p), ch[l]);
      } else {
        alignas(16) uint8_t part[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(part), ch[l]);
        std::memcpy(d.y + l * P + p, part, static_cast<std::size_t>(n));
      }
    }
  }
}
#endif

}  // namespace

namespace {

// Offset of each tap from the start of its output row's first input row.
// Per-thread scratch (one call per channel: no allocation each time).
const std::vector<int64_t>& depthwise_taps(const DepthwiseGeo& g) {
  thread_local std::vector<int64_t> tap;
  tap.resize(static_cast<std::size_t>(g.kh * g.kw));
  for (int64_t ky = 0; ky < g.kh; ++ky)
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t off = kx * g.dw;
      tap[static_cast<std::size_t>(ky * g.kw + kx)] =
          ((off % g.sw) * g.rows + ky * g.dh) * g.phase_cols + off / g.sw;
    }
  return tap;
}

void depthwise_reference(const int16_t* plane, const DepthwiseGeo& g, const int32_t* w,
                         const std::vector<int64_t>& tap, int32_t* acc) {
  const int64_t taps = g.kh * g.kw;
  for (int64_t i = 0; i < g.ho * g.wo; ++i) acc[i] = 0;
  for (int64_t oy = 0; oy < g.ho; ++oy) {
    const int16_t* row = plane + oy * g.sh * g.phase_cols;
    int32_t* a = acc + oy * g.wo;
    for (int64_t t = 0; t < taps; ++t) {
      const int16_t* p = row + tap[static_cast<std::size_t>(t)];
      for (int64_t ox = 0; ox < g.wo; ++ox) a[ox] += w[t] * p[ox];
    }
  }
}

#ifdef PTQ_INT8_X86
void depthwise_dispatch(const int16_t* plane, const DepthwiseGeo& g, const int32_t* w,
                        const std::vector<int64_t>& tap, const DepthwiseStore& out) {
  const int64_t taps = g.kh * g.kw;
  if (taps == 9) depthwise_avx2<5>(plane, g, w, tap.data(), taps, out);
  else depthwise_avx2<0>(plane, g, w, tap.data(), taps, out);
}
#endif

}  // namespace

void depthwise_acc(const int16_t* plane, const DepthwiseGeo& g, const int32_t* w, int32_t* acc) {
  const std::vector<int64_t>& tap = depthwise_taps(g);
#ifdef PTQ_INT8_X86
  if (avx2_usable()) {
    DepthwiseStore out;
    out.acc = acc;
    depthwise_dispatch(plane, g, w, tap, out);
    return;
  }
#endif
  depthwise_reference(plane, g, w, tap, acc);
}

void depthwise_requant(const int16_t* plane, const DepthwiseGeo& g, const int32_t* w, const DepthwiseRequant& rq) {
  const std::vector<int64_t>& tap = depthwise_taps(g);
#ifdef PTQ_INT8_X86
  if (avx2_usable()) {
    DepthwiseStore out;
    out.rq = &rq;
    depthwise_dispatch(plane, g, w, tap, out);
    return;
  }
#endif
  thread_local std::vector<int32_t> acc;
  acc.resize(static_cast<std::size_t>(g.ho * g.wo));
  depthwise_reference(plane, g, w, tap, acc.data());
  if (rq.is_signed)
    requantize_row(acc.data(), g.ho * g.wo, rq.bias, rq.scale, rq.zero, reinterpret_cast<int8_t*>(rq.y));
  else
    requantize_row(acc.data(), g.ho * g.wo, rq.bias, rq.scale, rq.zero, rq.y);
}

void widen_centred_pairs(const uint8_t* src, int64_t n, int32_t zero, int16_t* even, int16_t* odd) {
  int64_t j = 0;
#ifdef PTQ_INT8_X86
  if (avx2_usable()) j = widen_pairs_avx2(src, n, zero, even, odd);
#endif
  for (; j < n; ++j) {
    even[j] = static_cast<int16_t>(src[2 * j] - zero);
    odd[j] = static_cast<int16_t>(src[2 * j + 1] - zero);
  }
}

void every_second_byte(const uint8_t* src, int64_t n, int64_t avail, uint8_t* dst) {
  int64_t j = 0;
#ifdef PTQ_INT8_X86
  if (avx2_usable()) j = every_second_byte_avx2(src, n, avail, dst);
#endif
  for (; j < n; ++j) dst[j] = src[2 * j];
}

void interleave4(const uint8_t* const rows[4], int64_t n, uint8_t* dst) {
#ifdef PTQ_INT8_X86
  if (avx2_usable()) {
    interleave4_avx2(rows, n, dst);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i)
    for (int r = 0; r < 4; ++r) dst[4 * i + r] = rows[r][i];
}

Arith u8s8_arith() {
#ifdef PTQ_INT8_X86
  static const Arith a = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("ssse3") && !has_vnni() ? Arith::kPairSaturate : Arith::kExact;
  }();
  return a;
#else
  return Arith::kExact;
#endif
}

Arith arith_for(bool a_signed, bool b_signed) {
  return !a_signed && b_signed ? u8s8_arith() : Arith::kExact;
}

bool avx2_usable() {
#ifdef PTQ_INT8_X86
  return cpu_features().avx2;
#else
  return false;
#endif
}

void widen_packed(PackedB& p) {
#ifdef PTQ_INT8_X86
  if (!avx2_usable() || has_vnni() || p.packed.empty()) return;  // only the kWiden loop reads it
  const int64_t quads = p.k4 / 4;
  p.widened.resize(static_cast<size_t>(p.n16 * p.k4));
  for (int64_t nb = 0; nb < p.n16 / 16; ++nb)
    widen_block(p.packed.data() + nb * quads * 64, quads, p.widened.data() + nb * quads * 64);
#else
  (void)p;
#endif
}

void gemm_reference(const AView& a, const PackedB& b, const std::vector<int32_t>& zb, Arith arith,
                    int32_t* c, int64_t c_row, int64_t c_col, const Requant* rq, int64_t j0,
                    int64_t j1) {
  if (j1 < 0) j1 = b.n;
  for (int64_t i = 0; i < a.m; ++i)
    for (int64_t j = j0; j < j1; ++j) {
      const int16_t* bj = b.raw.data() + j * b.k;
      const int32_t z = zb_of(zb, j);
      int32_t s = 0;
      if (arith == Arith::kExact) {
        for (int64_t k = 0; k < b.k; ++k) s += (code(a, i, k) - a.zero) * (bj[k] - z);
      } else {
        int32_t asum = 0;
        for (int64_t k = 0; k < b.k; k += 2) {
          const int32_t a0 = code(a, i, k), a1 = k + 1 < b.k ? code(a, i, k + 1) : 0;
          const int32_t b1 = k + 1 < b.k ? bj[k + 1] : 0;
          s += sat16(a0 * bj[k] + a1 * b1);
          asum += a0 + a1;
        }
        s += -a.zero * b.col_sum[static_cast<size_t>(j)] - z * asum + static_cast<int32_t>(b.k) * a.zero * z;
      }
      store(rq, c, c_row, c_col, i, j, s);
    }
}

void depthwise_lanes(const DepthwiseLanes& d) {
#ifdef PTQ_INT8_X86
  depthwise_lanes_avx2(d);
#else
  (void)d;
#endif
}

#ifdef PTQ_INT8_X86
namespace {

// Pixels in the vector lanes (AVX512-VNNI), for a requantized output stored pixel-contiguous
// (y_row 1: NCHW planes): one 64-byte load of A holds a K quad of 16 pixels, each channel's quad
// of weights is broadcast to it, and an output channel's 16 codes are one requantize and one
// saturating narrow store. The 4-pixel x 16-channel tiles spent most of their time rearranging
// bytes into NCHW and requantizing on 8 lanes: a 1x1 Conv with K = 16 on 112x112 ran 3x ORT.
// Integer sums are exact in any order, and the output stage is requant8's arithmetic on 16
// lanes, so the codes are the tiles' codes.
template <int kV>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void pixel_lanes_block(
    const AView& a, const PackedB& b, const Requant& rq, int64_t j0, int64_t j1) {
  constexpr int kR = 4;  // output channels per step: kR x kV accumulators
  const int64_t quads = b.k4 / 4;
  const __mmask16 tail = static_cast<__mmask16>((1u << (a.m - 16 * (kV - 1))) - 1u);
  const __m512 lo = _mm512_set1_ps(static_cast<float>((rq.is_signed ? -128 : 0) - rq.zero));
  const __m512 hi = _mm512_set1_ps(static_cast<float>((rq.is_signed ? 127 : 255) - rq.zero));
  const __m512i zero = _mm512_set1_epi32(rq.zero);
  for (int64_t j = j0; j < j1; j += kR) {
    const int32_t* w[kR];  // channel j + r's weight quads, 16 dwords apart
    for (int r = 0; r < kR; ++r) {
      const int64_t jj = std::min(j + r, j1 - 1);  // past the end: the last channel again, not stored
      w[r] = reinterpret_cast<const int32_t*>(b.packed.data() + ((jj / 16 * quads) * 16 + jj % 16) * 4);
    }
    __m512i acc[kR][kV];
#pragma GCC unroll 16
    for (int i = 0; i < kR * kV; ++i) acc[i / kV][i % kV] = _mm512_setzero_si512();
    const uint8_t* ap = a.base;
    // Every index below is a constant after unrolling, so the accumulators stay in registers
    // (with a runtime index GCC stored all of them to the stack in each K step).
    for (int64_t q = 0; q < quads; ++q, ap += a.quad_stride) {
      __m512i x[kV];
#pragma GCC unroll 4
      for (int v = 0; v + 1 < kV; ++v) x[v] = _mm512_loadu_si512(ap + 64 * v);
      x[kV - 1] = _mm512_maskz_loadu_epi32(tail, ap + 64 * (kV - 1));
#pragma GCC unroll 4
      for (int r = 0; r < kR; ++r) {
        const __m512i wq = _mm512_set1_epi32(w[r][16 * q]);
#pragma GCC unroll 4
        for (int v = 0; v < kV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x[v], wq);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < kR; ++r) {
      const int64_t jj = j + r;
      if (jj >= j1) break;
      const __m512i fix = _mm512_set1_epi32(-a.zero * b.col_sum[static_cast<size_t>(jj)] + (rq.bias ? rq.bias[jj] : 0));
      const __m512 scale = _mm512_set1_ps(rq.scale[jj]);
      uint8_t* y = rq.y + jj * rq.y_col;
#pragma GCC unroll 4
      for (int v = 0; v < kV; ++v) {
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc[r][v], fix)), scale);
        f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
        const __m512i c = _mm512_add_epi32(_mm512_cvtps_epi32(f), zero);  // in range: narrowing is exact
        const __mmask16 m = v + 1 < kV ? static_cast<__mmask16>(0xFFFF) : tail;
        if (rq.is_signed) _mm512_mask_cvtsepi32_storeu_epi8(y + 16 * v, m, c);
        else _mm512_mask_cvtusepi32_storeu_epi8(y + 16 * v, m, c);
      }
    }
  }
}

// Applies when AVX512-VNNI is there, the output is requantized into pixel-contiguous rows, A's
// pixels are 4 bytes apart (quads of K), there are at most 64 of them, and the weights have no
// zero point (symmetric int8, as the emitter and ORT's quantizer make them).
bool pixel_lanes(const AView& a, const PackedB& b, const std::vector<int32_t>& zb, const Requant* rq, int64_t j0,
                 int64_t j1) {
  if (!rq || rq->y_row != 1 || a.row_stride != 4 || a.m < 1 || a.m > 64 || !cpu_features().avx512_vnni ||
      any_nonzero(zb))
    return false;
  switch ((a.m + 15) / 16) {
    case 1: pixel_lanes_block<1>(a, b, *rq, j0, j1); break;
    case 2: pixel_lanes_block<2>(a, b, *rq, j0, j1); break;
    case 3: pixel_lanes_block<3>(a, b, *rq, j0, j1); break;
    default: pixel_lanes_block<4>(a, b, *rq, j0, j1); break;
  }
  return true;
}

}  // namespace
#endif

void gemm(const AView& a, const PackedB& b, const std::vector<int32_t>& zb, Arith arith,
          int32_t* c, int64_t c_row, int64_t c_col, const Requant* rq, int64_t j0, int64_t j1) {
  if (j1 < 0) j1 = b.n;
#ifdef PTQ_INT8_X86
  if (!a.is_signed && b.is_signed && !b.packed.empty() && b.k > 0 && avx2_usable()) {
    if (arith == Arith::kPairSaturate) {
      gemm_avx2_tiles(KLoop::kPairs, a, b, zb, c, c_row, c_col, rq, j0, j1);
      return;
    }
    if (has_vnni()) {  // exact sums: what MLAS's VNNI kernels compute
      if (pixel_lanes(a, b, zb, rq, j0, j1)) return;
      gemm_avx2_tiles(cpu_features().avx512_vnni ? KLoop::kVnniZmm : KLoop::kVnniVex, a, b, zb, c, c_row, c_col,
                      rq, j0, j1);
      return;
    }
    gemm_avx2_tiles(KLoop::kWiden, a, b, zb, c, c_row, c_col, rq, j0, j1);
    return;
  }
#endif
  gemm_reference(a, b, zb, arith, c, c_row, c_col, rq, j0, j1);
}

template <typename Q>
void requantize_row(const int32_t* acc, int64_t n, int32_t bias, float scale, int32_t zero, Q* y) {
  const float lo = static_cast<float>(std::numeric_limits<Q>::min() - zero);
  const float hi = static_cast<float>(std::numeric_limits<Q>::max() - zero);
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::min(std::max(static_cast<float>(acc[i] + bias) * scale, lo), hi);
    y[i] = static_cast<Q>(static_cast<int32_t>(std::nearbyint(v)) + zero);
  }
}

template void requantize_row<uint8_t>(const int32_t*, int64_t, int32_t, float, int32_t, uint8_t*);
template void requantize_row<int8_t>(const int32_t*, int64_t, int32_t, float, int32_t, int8_t*);

}  // namespace ptq::runtime::int8
