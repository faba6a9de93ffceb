// The int8 GEMM core of the integer kernels: int32 accumulators computed exactly as ONNX Runtime's
// MLAS computes them on this CPU, from 8-bit codes, with weights packed once per constant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ptq::runtime::int8 {

// How products are summed. kExact: Σ (a − z_a)(b − z_b) in int32. kPairSaturate: MLAS's u8×s8
// kernels on x86 without VNNI (SSSE3/AVX2/AVX-512BW vpmaddubsw): the raw codes are multiplied in
// adjacent K pairs (k = 2j, 2j + 1 counted from 0), each pair sum saturated to int16, then summed
// exactly, and the zero points applied afterwards through row/column sums:
//   acc = Σ_j sat16(a[2j]·b[2j] + a[2j+1]·b[2j+1]) − z_a·Σb − z_b·Σa + K·z_a·z_b.
enum class Arith { kExact, kPairSaturate };

// The arithmetic ORT uses for uint8 activations × int8 weights on this CPU: kPairSaturate on x86
// without AVX-VNNI / AVX512-VNNI (MLAS picks vpdpbusd kernels, which do not saturate pairs, when
// VNNI is there), kExact elsewhere. Every other type combination is exact in MLAS.
Arith u8s8_arith();
// kPairSaturate only for u8 A × s8 B on a CPU where u8s8_arith() says so.
Arith arith_for(bool a_signed, bool b_signed);

// True when the AVX2 kernels may run (compiled for x86-64 and the CPU has AVX2).
bool avx2_usable();

// The weights of a GEMM as N rows of K codes (the output channels / columns), packed once:
// raw codes, column sums, and the AVX2 layout [N/16][K4/4][16][4] (K4 = K rounded up to 4, zero
// padding), in which one 32-byte vector holds 4 consecutive K codes of 8 columns.
struct PackedB {
  int64_t n = 0, k = 0, k4 = 0, n16 = 0;
  bool is_signed = true;
  std::vector<int16_t> raw;       // [n][k]
  std::vector<int32_t> col_sum;   // Σ_k raw[n][k]
  std::vector<int8_t> packed;     // AVX2 layout (only for signed weights)
  std::vector<int16_t> widened;   // `packed` widened for the exact loop without VNNI (widen_packed)
};

// Fills `widened` where the exact u8 × s8 loop on AVX2 without VNNI will read it, else leaves it
// empty (the loop then widens each block per call).
void widen_packed(PackedB& p);

// Packs rows b(n, k) (raw codes widened to int32). `exact_sums`: the weights will be summed
// exactly (uint8 weights, packed as codes minus 128), so the widened layout is kept too.
template <typename Get>
PackedB pack_b(int64_t n, int64_t k, bool is_signed, Get&& b, bool exact_sums = false) {
  PackedB p;
  p.n = n;
  p.k = k;
  p.k4 = (k + 3) / 4 * 4;
  p.n16 = (n + 15) / 16 * 16;
  p.is_signed = is_signed;
  p.raw.resize(static_cast<std::size_t>(n * k));
  p.col_sum.assign(static_cast<std::size_t>(n), 0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < k; ++i) {
      const int32_t v = b(j, i);
      p.raw[static_cast<std::size_t>(j * k + i)] = static_cast<int16_t>(v);
      p.col_sum[static_cast<std::size_t>(j)] += v;
    }
  if (is_signed) {
    p.packed.assign(static_cast<std::size_t>(p.n16 * p.k4), 0);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < k; ++i) {
        const int64_t blk = j / 16, col = j % 16, q = i / 4, r = i % 4;
        p.packed[static_cast<std::size_t>(((blk * (p.k4 / 4) + q) * 16 + col) * 4 + r)] =
            static_cast<int8_t>(p.raw[static_cast<std::size_t>(j * k + i)]);
      }
    if (exact_sums) widen_packed(p);
  }
  return p;
}

// The activation operand: M rows of K codes; code (i, k) is at base[i·row_stride + (k/4)·quad_stride
// + k%4] (so 4 consecutive K codes of a row are contiguous). Codes from K to K4 must be readable
// and zero. `is_signed`: int8 codes (else uint8).
struct AView {
  const uint8_t* base = nullptr;
  int64_t m = 0, row_stride = 0, quad_stride = 0;
  bool is_signed = false;
  int32_t zero = 0;
};

// An optional fused output stage: y(i, j) = saturate(nearbyint(float(acc + bias[j]) · scale[j])
// + zero) stored at y[i·y_row + j·y_col] (MLAS's MlasRequantizeOutput).
struct Requant {
  const int32_t* bias = nullptr;  // one per B row, or nullptr
  const float* scale = nullptr;   // one per B row
  int32_t zero = 0;
  bool is_signed = false;         // int8 output, else uint8
  uint8_t* y = nullptr;
  int64_t y_row = 0, y_col = 0;
};

// C(i, j) = acc for rows i of A and rows j of B, stored at c[i·c_row + j·c_col], or requantized
// through `rq` when given (then c is unused). `zb` holds one zero point per B row or a single one.
// Only B rows j in [j0, j1) (j1 < 0: all; j0 a multiple of 16), so callers can split work by
// columns. Chooses the AVX2 kernel when it applies, else the scalar loops; both give the same
// results.
void gemm(const AView& a, const PackedB& b, const std::vector<int32_t>& zb, Arith arith,
          int32_t* c, int64_t c_row, int64_t c_col, const Requant* rq = nullptr, int64_t j0 = 0,
          int64_t j1 = -1);
// The straight scalar loops of the same arithmetic (the reference the tests compare with).
void gemm_reference(const AView& a, const PackedB& b, const std::vector<int32_t>& zb, Arith arith,
                    int32_t* c, int64_t c_row, int64_t c_col, const Requant* rq = nullptr,
                    int64_t j0 = 0, int64_t j1 = -1);

// Depthwise accumulators acc[oy·wo + ox] = Σ_{ky,kx} w[ky·kw + kx] · plane(oy·sh + ky·dh,
// ox·sw + kx·dw) on a centred, zero-padded int16 plane stored by column phase: element (r, col)
// at plane[((col % sw)·rows + r)·phase_cols + col / sw]. Exact int32. phase_cols must be at
// least depthwise_phase_cols(...): the AVX2 path reads whole 16-column blocks (zeros past the
// image) and drops the extra results.
struct DepthwiseGeo {
  int64_t rows, phase_cols, kh, kw, sh, sw, dh, dw, ho, wo;
};
inline int64_t depthwise_phase_cols(int64_t padded_width, int64_t sw, int64_t wo, int64_t kw, int64_t dw) {
  const int64_t need = (wo + 15) / 16 * 16 + (kw - 1) * dw / sw + 1;
  const int64_t have = (padded_width + sw - 1) / sw;
  return have > need ? have : need;
}
void depthwise_acc(const int16_t* plane, const DepthwiseGeo& g, const int32_t* w, int32_t* acc);
// The same sums requantized straight to codes y[oy·wo + ox] (requantize_row's arithmetic with one
// bias and scale: the channel's), without the int32 plane.
struct DepthwiseRequant {
  int32_t bias = 0;
  float scale = 0.f;
  int32_t zero = 0;
  bool is_signed = false;  // int8 codes, else uint8
  uint8_t* y = nullptr;
};
void depthwise_requant(const int16_t* plane, const DepthwiseGeo& g, const int32_t* w, const DepthwiseRequant& rq);

// Depthwise with up to 16 channels in the vector lanes (uint8 input, requantized output), for
// small planes, where the per-plane kernel's 16-column blocks and per-channel setup cost more
// than the arithmetic (7x7 and 14x14 maps ran 3-7x slower than ORT). The planes are transposed
// to pixel-major 16-channel int16 rows, summed in tap pairs (vpmaddwd, exact), requantized as
// requantize_row does with each channel's bias and scale, and transposed back. AVX2 only:
// callers check avx2_usable().
struct DepthwiseLanes {
  const uint8_t* x = nullptr;   // first channel's input plane (h x w); planes h·w apart
  int64_t channels = 0;         // 1..16
  int64_t h = 0, w = 0, pt = 0, pl = 0, kh = 0, kw = 0, sh = 0, sw = 0, dh = 0, dw = 0, ho = 0, wo = 0;
  int32_t zx = 0;
  const int32_t* wc = nullptr;  // centred weights (w − z_w), [channel][kh·kw]
  const int32_t* bias = nullptr;  // per channel, or nullptr
  const float* scale = nullptr;   // per channel
  int32_t zero = 0;
  bool y_signed = false;
  uint8_t* y = nullptr;         // first channel's output plane (ho x wo); planes ho·wo apart
};
void depthwise_lanes(const DepthwiseLanes& d);

// Splits n byte pairs into centred int16 halves: even[j] = src[2j] − zero, odd[j] = src[2j+1] −
// zero (a stride-2 row into its two column phases).
void widen_centred_pairs(const uint8_t* src, int64_t n, int32_t zero, int16_t* even, int16_t* odd);

// dst[j] = src[2j] for j < n (a stride-2 row's even bytes), reading at most `avail` bytes of src.
void every_second_byte(const uint8_t* src, int64_t n, int64_t avail, uint8_t* dst);

// Interleaves 4 byte rows: dst[4·i + r] = rows[r][i] for i < n (one K quad of n pixels).
void interleave4(const uint8_t* const rows[4], int64_t n, uint8_t* dst);

// y = saturate(nearbyint(float(acc + bias) · scale) + zero) for n values (MLAS's
// MlasRequantizeOutput: float multiply, round half to even, add the zero point, clamp).
template <typename Q>
void requantize_row(const int32_t* acc, int64_t n, int32_t bias, float scale, int32_t zero, Q* y);

}  // namespace ptq::runtime::int8
