// Process-wide switch between the fast AVX2 float kernels and the Eigen reference kernels.
#pragma once

namespace ptq::runtime {

// Float Conv, Gemm, MatMul and MaxPool use hand-written AVX2/FMA kernels when the CPU has them
// and this switch is on (the default); off, they run the Eigen/scalar reference kernels. Tests
// and benchmarks flip it to compare the two; it is read at each kernel run. The environment
// variable PTQ_REFERENCE_KERNELS=1 turns it off from the start (e.g. for `quantize run`).
void set_fast_kernels(bool on);
// Whether the fast kernels run now: the switch is on and the CPU has AVX2 and FMA.
bool fast_kernels_active();
// On CPUs with AVX-512, the fast float kernels use 16-lane variants (GEMM tiles, depthwise,
// sigmoid) that give the same bits as the 8-lane ones; off (tests), the 8-lane ones run.
void set_avx512_kernels(bool on);

}  // namespace ptq::runtime
