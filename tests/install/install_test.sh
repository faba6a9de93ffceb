#!/usr/bin/env bash
# `cmake --install` into a temp prefix, then a separate project builds against it with
# find_package(ptq) and quantizes the demo model through pipeline::quantize; also runs the installed quantize.
# usage: install_test.sh CMAKE BUILD_DIR SOURCE_DIR GENERATOR CXX VERSION
set -euo pipefail
cmake=$1 build=$2 src=$3 gen=$4 cxx=$5 version=$6
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ptq-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log"
for f in bin/quantize include/ptq/pipeline/quantize.h lib/cmake/ptq/ptqConfig.cmake \
         lib/cmake/ptq/ptqConfigVersion.cmake lib/cmake/ptq/ptqTargets.cmake; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed (prefix $prefix)"; find "$prefix" | head -50; exit 1; }
done
ls "$prefix"/lib/libptq.so* >/dev/null || { echo "FAIL: lib/libptq.so not installed"; exit 1; }
# Public headers use only ptq/ and std headers (no protobuf, Eigen, spdlog, ...).
if bad=$(grep -rhE '^\s*#\s*include' "$prefix/include/ptq" | grep -vE '#\s*include\s*("ptq/|<[a-z_]+>)'); then
  echo "FAIL: public headers include non-std, non-ptq headers:"; echo "$bad"; exit 1
fi

out=$("$prefix/bin/quantize" --version)
echo "$out"
[[ "$out" == *"$version"* ]] || { echo "FAIL: installed quantize --version does not say $version"; exit 1; }

# The consumer sees only the install prefix: no package registry, no build tree.
"$cmake" -S "$src/tests/install/consumer" -B "$tmp/consumer" -G "$gen" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  >"$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
grep -F "ptq $version from $prefix/lib/cmake/ptq" "$tmp/configure.log" \
  || { echo "FAIL: find_package(ptq) did not use $prefix"; cat "$tmp/configure.log"; exit 1; }
"$cmake" --build "$tmp/consumer" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
# It links libptq.so from the prefix, not the build tree's.
needed=$(ldd "$tmp/consumer/ptq_consumer" | grep libptq) || { echo "FAIL: consumer does not link libptq"; exit 1; }
echo "$needed"
[[ "$needed" == *"$prefix/lib/libptq.so"* ]] || { echo "FAIL: consumer loads libptq from elsewhere"; exit 1; }

run=$("$tmp/consumer/ptq_consumer" "$src/models/demo/model.onnx" "$src/models/demo/calib" "$tmp/demo.int8.onnx")
echo "$run"
grep -q '^caught ptq::IoError (exit code 5)$' <<<"$run" || { echo "FAIL: exception not caught by type"; exit 1; }
grep -qE '^quantized_nodes=[1-9][0-9]* QuantizeLinear=[1-9][0-9]* DequantizeLinear=[1-9][0-9]*$' <<<"$run" \
  || { echo "FAIL: unexpected consumer output"; exit 1; }
echo "install test: OK"
