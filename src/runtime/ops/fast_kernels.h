// AVX2/FMA float kernels (packed GEMM, depthwise and max windows, sigmoid), chosen at run time by CPU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "phase_planes.h"
#include "ptq/runtime/kernel.h"

namespace ptq::runtime::fast {

// True when the CPU has AVX2 and FMA (checked once).
bool cpu_supported();
// cpu_supported() and the set_fast_kernels switch is on. Otherwise callers use the Eigen
// reference kernels. The fast kernels are compiled with target attributes, not -march, so the
// binary still runs on any x86-64 (and builds with PTQ_RUNTIME_NATIVE=OFF or non-x86 targets).
bool available();

// Register tile of the GEMM micro-kernel: kMr rows of A (broadcast) × kNr columns of B (two
// 8-float registers), 12 accumulators.
constexpr int64_t kMr = 6;
constexpr int64_t kNr = 16;

// Packed A: row panels of kMr rows, each k-major (kMr floats per k, missing rows zero).
inline int64_t packed_a_size(int64_t m, int64_t k) { return (m + kMr - 1) / kMr * kMr * k; }
// Packed B: column panels of kNr columns, each k-major (kNr floats per k, missing columns zero).
inline int64_t packed_b_size(int64_t k, int64_t n) { return (n + kNr - 1) / kNr * kNr * k; }

// Packs A (element (i, p) at a[i·rs + p·cs]) of m×k into dst (packed_a_size floats).
void pack_a(const float* a, int64_t rs, int64_t cs, int64_t m, int64_t k, float* dst);
// Packs B (element (p, j) at b[p·rs + j·cs]) of k×n into dst (packed_b_size floats).
void pack_b(const float* b, int64_t rs, int64_t cs, int64_t k, int64_t n, float* dst);

// c[i·ldc + j] = bias[i] (0 without bias) + Σ_p A(i, p)·B(p, j) for i < m, j < n, from packed
// A and B. Each element is one FMA chain over p = 0..k-1 in order, whatever the tiling, so the
// result does not depend on how callers split rows or columns.
// With `act`, each element is then clamped (a fused Relu/Clip) before it is stored.
// ka: the k the A panels were packed with, when pa points at column k0 of a wider packed A
// (a sum over the slice p = k0..k0+k-1 only); 0: k.
void gemm_packed(const float* pa, const float* pb, int64_t m, int64_t n, int64_t k,
                 const float* bias, float* c, int64_t ldc, const Activation* act = nullptr, int64_t ka = 0);

// Packs B (element (p, j) at b[boff[p] + j]) of k×n into dst (packed_b_size floats).
void pack_b_rows(const float* b, const int64_t* boff, int64_t k, int64_t n, float* dst);

// gemm_packed's sums (each element the same FMA chain) with B read in place, element (p, j) at
// b[boff[p] + j]: a pointwise Conv's input rows (boff[p] = p·H·W), or a stride-1 Conv's taps over
// a zero-padded input (boff[p] = the tap's offset), with no im2col or packed copy. Only where
// gemm_direct_b_supported() (AVX-512: masked loads at the column tail) is it faster than packing
// B once for several calls; elsewhere it packs B first.
bool gemm_direct_b_supported();
void gemm_direct_b(const float* pa, const float* b, const int64_t* boff, int64_t m, int64_t n, int64_t k,
                   const float* bias, float* c, int64_t ldc, const Activation* act = nullptr, int64_t ka = 0);

// Depthwise window sums of `channels` (1-8) consecutive planes at once, channels in the vector
// lanes: y = Σ taps w·x (one FMA chain, taps in (ky, kx) order from 0, zero padding included),
// then + bias (0 without), then `act` if given. x and y point at the first channel's input (h×w)
// and output (ho×wo) planes, `plane` elements apart in x; w holds kh×kw taps per channel. One
// plane per call with 16-column blocks over phase copies was 2.5-8x slower than ORT on
// mobilenetv2's small and strided planes.
void depthwise_channels8(const float* x, int64_t channels, int64_t plane, const PlaneGeo& g,
                         const float* w, const float* bias, float* y, const Activation* act = nullptr);

// Output row oy of a Conv (group 1) with c input channels, 3x3 windows, column stride 2 and no
// column dilation, read straight from x (c planes h×w) without im2col: y (m planes ho×wo) =
// bias + Σ w·x over taps in (c, ky, kx) order, one FMA chain each (the GEMM path's sums), then
// `act`. pa holds the weights (m × c·9) as pack_a packs them. Where conv_s2_small_supported(g, c):
// AVX-512 and c <= kSmallC.
constexpr int64_t kSmallC = 4;
bool conv_s2_small_supported(const PlaneGeo& g, int64_t c);
void conv_s2_small(const float* x, int64_t c, const PlaneGeo& g, const float* pa, int64_t m, const float* bias,
                   float* y, int64_t oy, const Activation* act = nullptr);

// depthwise_channels8, or on AVX-512 the same sums with 16 channels per vector (then up to 16
// channels per call), and for stride-1 rows of 64 or more outputs or 3x3 stride-2 rows of 40 or
// more one channel at a time with 16 pixels per vector (the same sums); depthwise_block_channels()
// says how many channels a call takes.
int64_t depthwise_block_channels();
void depthwise_channels(const float* x, int64_t channels, int64_t plane, const PlaneGeo& g,
                        const float* w, const float* bias, float* y, const Activation* act = nullptr);

// Max over the window from -inf-filled phase planes; a NaN tap is skipped (as std::max(acc, v)
// with acc first).
void max_planes(const float* planes, const PlaneGeo& g, float* y);
// The same maxima for a 3x3 window with column stride 2 (no column dilation), read straight from
// the input plane x (h×w), without phase planes: where max_s2_direct_supported(g) (AVX-512).
bool max_s2_direct_supported(const PlaneGeo& g);
void max_s2_direct(const float* x, const PlaneGeo& g, float* y);

// y = 1 / (1 + exp(-x)) elementwise, 8 lanes at a time (every element, the tail too, through the
// same arithmetic, so a result does not depend on where a chunk starts); within a few ulp of the
// std::exp formula, NaN stays NaN.
void sigmoid(const float* x, float* y, size_t n);

}  // namespace ptq::runtime::fast
