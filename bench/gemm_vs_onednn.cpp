// The fast GEMM (src/runtime/ops/fast_kernels.*, B packed per call as Conv does) vs oneDNN's
// dnnl_sgemm on conv-shaped problems, one thread, best of 30 (docs/benchmarks.md "Runtime speed").
// Not part of the build (oneDNN is no ptq dependency); needs Debian libdnnl-dev:
//   g++ -O2 -std=c++20 -march=native -Isrc/runtime/ops -Iinclude bench/gemm_vs_onednn.cpp \
//       src/runtime/ops/fast_kernels.cpp -ldnnl -o /tmp/gemm_vs_onednn && OMP_NUM_THREADS=1 /tmp/gemm_vs_onednn
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include <algorithm>
#include <dnnl.h>
#include "fast_kernels.h"
using namespace ptq::runtime;
int main() {
  struct S { long m, k, n; } shapes[] = {{256, 576, 169}, {64, 64, 3136}, {96, 16, 12544}, {160, 960, 49}, {384, 64, 196}, {1000,1280,1}};
  std::mt19937 rng(1); std::uniform_real_distribution<float> d(-1, 1);
  for (auto s : shapes) {
    std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n), c2(s.m * s.n);
    for (auto& v : a) v = d(rng); for (auto& v : b) v = d(rng);
    std::vector<float> pa(fast::packed_a_size(s.m, s.k)), pb(fast::packed_b_size(s.k, s.n));
    fast::pack_a(a.data(), s.k, 1, s.m, s.k, pa.data());
    double best1 = 1e9, best2 = 1e9;
    for (int it = 0; it < 30; ++it) {
      auto t0 = std::chrono::steady_clock::now();
      fast::pack_b(b.data(), s.n, 1, s.k, s.n, pb.data());
      fast::gemm_packed(pa.data(), pb.data(), s.m, s.n, s.k, nullptr, c.data(), s.n);
      auto t1 = std::chrono::steady_clock::now();
      dnnl_sgemm('N', 'N', s.m, s.n, s.k, 1.f, a.data(), s.k, b.data(), s.n, 0.f, c2.data(), s.n);
      auto t2 = std::chrono::steady_clock::now();
      best1 = std::min(best1, std::chrono::duration<double>(t1 - t0).count());
      best2 = std::min(best2, std::chrono::duration<double>(t2 - t1).count());
    }
    double fl = 2.0 * s.m * s.k * s.n;
    float md = 0; for (size_t i = 0; i < c.size(); ++i) md = std::max(md, std::abs(c[i] - c2[i]));
    std::printf("M=%4ld K=%4ld N=%5ld  ptq %6.1f GFLOP/s  dnnl_sgemm %6.1f GFLOP/s  maxdiff %.1e\n", s.m, s.k, s.n, fl / best1 / 1e9, fl / best2 / 1e9, md);
  }
}
