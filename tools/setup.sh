#!/usr/bin/env bash
# Installs exactly the missing Debian packages and, for tests, creates the git-ignored Python venv.
#   tools/setup.sh          what building and running `quantize` needs (the quick start)
#   tools/setup.sh --tests  also the test suite's: GoogleTest, ONNX test data, Chromium (HTML report test), .venv
#   tools/setup.sh --fuzz   also clang and libFuzzer's runtime (implies --tests; .ci/run uses it)
# Idempotent: a second run installs nothing. Works as root or through sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

tests=0 fuzz=0
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    --fuzz) tests=1 fuzz=1 ;;
    *) echo "setup: unknown option '$arg' (use --tests or --fuzz)" >&2; exit 1 ;;
  esac
done

PACKAGES=(
  cmake ninja-build g++ ccache pkg-config
  libonnx-dev libprotobuf-dev protobuf-compiler
  libeigen3-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libstb-dev zlib1g-dev libjpeg62-turbo-dev
)
((tests)) && PACKAGES+=(git libgtest-dev libonnx-testdata python3 python3-venv python3-pip chromium)
((tests)) && PACKAGES+=(dpkg-dev file)  # cpack's dpkg-shlibdeps for the .deb (ctest label install, .ci/run)
((tests)) && PACKAGES+=(python3-dev pybind11-dev)  # the Python package's extension module (pip install ., python/)
((tests)) && PACKAGES+=(slurm-wlm munge python3-yaml)  # tests/scaleout: one-node Slurm (examples/slurm), k8s manifests
((fuzz)) && PACKAGES+=(clang libclang-rt-14-dev)  # libFuzzer targets (tools/fuzz.sh; .ci/run's fuzz smoke run)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

((tests)) || exit 0
# Python venv for ONNX Runtime (oracle in tests, peer in benchmarks). Debian's python3 so that
# python3-venv is guaranteed; the pins live in tools/requirements.txt.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if [ -x .venv/bin/python ] && .venv/bin/python -c "import onnxruntime, onnx, numpy, PIL" 2>/dev/null \
   && .venv/bin/python - <<'PYEOF' 2>/dev/null
import sys, importlib.metadata as md
want = {}
for line in open("tools/requirements.txt"):
    line = line.split("#")[0].strip()
    if "==" in line:
        k, v = line.split("==")
        want[k] = v
sys.exit(0 if all(md.version(k) == v for k, v in want.items()) else 1)
PYEOF
then
  echo "setup: .venv is ready"
else
  echo "setup: creating .venv from tools/requirements.txt"
  "$PY" -m venv .venv
  if ! .venv/bin/pip install -q --disable-pip-version-check -r tools/requirements.txt; then
    echo "setup: WARNING: could not install onnxruntime/onnx/numpy/pillow from PyPI (unreachable?)." >&2
    echo "setup: tests that use ONNX Runtime as the oracle will be SKIPPED; everything else works." >&2
    exit 0
  fi
  echo "setup: .venv ready ($(.venv/bin/python -c 'import onnxruntime; print("onnxruntime", onnxruntime.__version__)'))"
fi
