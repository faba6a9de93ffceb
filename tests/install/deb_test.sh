#!/usr/bin/env bash
# The .deb without touching the system: cpack builds it, every Depends must be installed here,
# dpkg-deb -x unpacks it into a temp root whose quantize runs (--version, the demo model with its
# accuracy gate) and whose /usr serves as the prefix of the find_package(ptq) consumer.
# (.ci/run installs it for real with dpkg -i; docs/packaging.md.)
# usage: deb_test.sh CPACK CMAKE BUILD_DIR SOURCE_DIR GENERATOR CXX VERSION
set -euo pipefail
cpack=$1 cmake=$2 build=$3 src=$4 gen=$5 cxx=$6 version=$7
for tool in dpkg-deb dpkg-shlibdeps dpkg-query file; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not found (not Debian, or no dpkg-dev/file: bash tools/setup.sh --tests)"; exit 77; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ptq-deb-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

start=$(date +%s%N)
"$cpack" --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 \
  || { cat "$tmp/cpack.log"; exit 1; }
echo "cpack: $(( ($(date +%s%N) - start) / 1000000 )) ms"
deb=$(ls "$tmp"/pkg/ptq_*.deb)
dpkg-deb -f "$deb"
[ "$(dpkg-deb -f "$deb" Package)" = ptq ] || { echo "FAIL: package name"; exit 1; }
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || { echo "FAIL: version is not $version"; exit 1; }

contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
for f in ./usr/bin/quantize ./usr/include/ptq/pipeline/quantize.h ./usr/lib/cmake/ptq/ptqConfig.cmake \
         ./usr/lib/cmake/ptq/ptqConfigVersion.cmake ./usr/lib/cmake/ptq/ptqTargets.cmake; do
  grep -qxF "$f" <<<"$contents" || { echo "FAIL: $f not in the package"; exit 1; }
done
grep -qE '^\./usr/lib/libptq\.so' <<<"$contents" || { echo "FAIL: libptq.so not in the package"; exit 1; }

# Every Depends (computed by dpkg-shlibdeps) must be satisfied by what is installed here.
depends=$(dpkg-deb -f "$deb" Depends)
[ -n "$depends" ] || { echo "FAIL: empty Depends"; exit 1; }
provides=$(dpkg-query -W -f='${db:Status-Abbrev}|${Provides}\n' | grep -E '^ii')
for dep in $(tr -d ' ' <<<"$depends" | tr ',' '\n'); do
  ok=0
  for alt in $(tr '|' ' ' <<<"$dep"); do
    name=${alt%%(*} cond=""
    [[ "$alt" == *"("* ]] && cond=${alt#*(} && cond=${cond%)}
    have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null | sed -n 's/^install ok installed //p')
    if [ -z "$have" ]; then  # a virtual package (libspdlog1.10-fmt9): provided by an installed one?
      [ -z "$cond" ] && grep -qE "[|, ]$name( |,|\$)" <<<"$provides" && ok=1
      continue
    fi
    if [ -n "$cond" ]; then
      op=$(sed -E 's/^([<>=]+).*/\1/' <<<"$cond") ver=$(sed -E 's/^[<>=]+//' <<<"$cond")
      case $op in '>=') op=ge ;; '<=') op=le ;; '=') op=eq ;; '>>') op=gt ;; '<<') op=lt ;; esac
      dpkg --compare-versions "$have" "$op" "$ver" || continue
    fi
    ok=1
  done
  ((ok)) || { echo "FAIL: Depends '$dep' is not satisfied on this machine"; exit 1; }
done
echo "Depends satisfied: $depends"

root=$tmp/root
dpkg-deb -x "$deb" "$root"
q=$root/usr/bin/quantize
out=$("$q" --version)
echo "$out"
[[ "$out" == *"$version"* ]] || { echo "FAIL: quantize --version does not say $version"; exit 1; }
d=$src/models/demo
"$q" "$d/model.onnx" --calib "$d/calib" --eval "$d/eval" --labels "$d/labels.tsv" --max-drop 1 \
  -o "$tmp/demo.int8.onnx" >"$tmp/demo.log" 2>&1 || { cat "$tmp/demo.log"; echo "FAIL: demo run"; exit 1; }
tail -n 1 "$tmp/demo.log"
[ "$(tail -n 1 "$tmp/demo.log")" = PASSED ] || { echo "FAIL: demo did not end with PASSED"; exit 1; }

# The unpacked /usr as an install prefix: the consumer project builds and runs against it.
"$cmake" -S "$src/tests/install/consumer" -B "$tmp/consumer" -G "$gen" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$root/usr" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  >"$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
grep -F "from $root/usr/lib/cmake/ptq" "$tmp/configure.log" || { echo "FAIL: not the package's config"; exit 1; }
"$cmake" --build "$tmp/consumer" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
"$tmp/consumer/ptq_consumer" "$d/model.onnx" "$d/calib" "$tmp/consumer.int8.onnx"
echo "deb test: OK"
