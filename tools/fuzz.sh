#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, in build-fuzz) and runs one for SECONDS.
# Usage: tools/fuzz.sh TARGET SECONDS [libFuzzer flags...]
#   TARGET: onnx_loader | npy | npz | tensor_pb | image | calib_table | pipeline
# The corpus grows in build-fuzz/corpus/TARGET (seeded from build-fuzz/seeds/TARGET); crashes are
# written to build-fuzz/crashes/TARGET/ and make the script exit non-zero. PTQ_FUZZ_BUILD overrides
# the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  sed -n '2,8p' "$0" >&2
  exit 1
fi
target=$1 seconds=$2
shift 2
build=${PTQ_FUZZ_BUILD:-build-fuzz}
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

if [ ! -f "$build/CMakeCache.txt" ]; then
  CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPTQ_FUZZ=ON \
    -DPTQ_RUNTIME_NATIVE=OFF >/dev/null
fi
cmake --build "$build" --target "fuzz_$target" ptq_fuzz_seeds >/dev/null

"$build/tests/fuzz/ptq_fuzz_seeds" "$build/seeds" >/dev/null
corpus="$build/corpus/$target" crashes="$build/crashes/$target"
mkdir -p "$corpus" "$crashes"
# Leaks are not crashes here (protobuf and stb keep process-lifetime caches); bad allocations are:
# a single malloc over -malloc_limit_mb (default: rss_limit_mb) is reported as a crash.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2560 -timeout=30 \
  -print_final_stats=1 -artifact_prefix="$crashes/" "$@" "$corpus" "$build/seeds/$target"
