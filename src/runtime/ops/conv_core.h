// Convolution geometry and the float/double NCHW convolution shared by Conv, QLinearConv, ConvInteger.
#pragma once

#include <cstdint>
#include <vector>

#include "common.h"
#include "spatial.h"

namespace ptq::runtime {

// 2-D geometry (1-D convolutions are mapped onto H = 1).
struct ConvGeo {
  int64_t n, c, h, w, m, kh, kw, ho, wo, sh, sw, dh, dw, pt, pl, group;
};

// Checks X/W shapes against the attributes and resolves the geometry; sets the output dims.
ConvGeo conv_geometry(const WindowAttrs& attrs, int64_t group, const Dims& x, const Dims& w,
                      Dims& out_dims);

// y = conv(x, w) + b (b may be nullptr); padding reads 0. T is float or double. The work split
// depends on the shape only, so the result is the same for any thread count.
template <typename T>
void conv_forward(const KernelContext& ctx, const T* x, const T* w, const T* b, const ConvGeo& g,
                  T* y);

// W (M × C/group × kernel) packed per group for fast::gemm_packed (fast_kernels.h).
std::vector<float> pack_conv_weights(const float* w, const Dims& wd, int64_t group);

// conv_forward<float> with the AVX2 kernels (call only when fast::available()): packed is
// pack_conv_weights(w) or nullptr (then packed per call); depthwise reads w directly. Same
// thread-count invariance; results differ from the reference by float rounding only.
// With `act`, the kernels clamp each output in registers before storing it (a fused Relu/Clip).
void conv_forward_fast(const KernelContext& ctx, const float* x, const float* w,
                       const float* packed, const float* b, const ConvGeo& g, float* y,
                       const Activation* act = nullptr);

}  // namespace ptq::runtime
