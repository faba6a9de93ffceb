#!/usr/bin/env bash
# Sharded calibration on one machine: N concurrent `quantize calibrate --shard I/N --threads 1` + merge + emit vs one run.
#
#   bench/shards.sh [--quantize BIN] [--shared DIR] [--method M] [--every K] [--shards "1 2 4"] [--repeat R]
#
# Data: mobilenetv2 on every K-th image of imagenet-sample in sorted order (K=10: 100 images, the
# project's calibration split), --preprocess torchvision. Each configuration runs R times in turn
# (interleaved, so drifts of the machine hit all alike); the table prints the median wall time.
# Every sharded result is checked byte-identical (table and model) to the one-run result.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
Q=$root/build/tools/quantize SHARED=$root/../shared METHOD=percentile EVERY=10 SHARDS="1 2 4" REPEAT=3
while (($#)); do
  case $1 in
    --quantize) Q=$2; shift 2 ;;
    --shared) SHARED=$2; shift 2 ;;
    --method) METHOD=$2; shift 2 ;;
    --every) EVERY=$2; shift 2 ;;
    --shards) SHARDS=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    *) echo "usage: $0 [--quantize BIN] [--shared DIR] [--method M] [--every K] [--shards LIST] [--repeat R]" >&2; exit 1 ;;
  esac
done
MODEL=$SHARED/models/mobilenetv2/model.onnx
T=$(mktemp -d /tmp/ptq-shards.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/calib"
LC_ALL=C ls "$SHARED/data/imagenet-sample" | grep -i '\.jpg$' | awk -v k="$EVERY" '(NR - 1) % k == 0' |
  while read -r f; do ln -s "$SHARED/data/imagenet-sample/$f" "$T/calib/$f"; done
IMAGES=$(ls "$T/calib" | wc -l)
FLAGS=(--preprocess torchvision --method "$METHOD")

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

single() {  # $1 threads -> prints wall seconds
  local t0 t1
  t0=$(now)
  "$Q" "$MODEL" --calib "$T/calib" "${FLAGS[@]}" --threads "$1" --save-calib "$T/one-$1.json" -o "$T/one-$1.onnx" -q >/dev/null
  t1=$(now)
  secs "$t0" "$t1"
}
sharded() {  # $1 shards -> prints "calibrate merge emit total" wall seconds
  local n=$1 i t0 t1 t2 t3 pids=() parts=()
  rm -rf "$T/s$n"; mkdir -p "$T/s$n"
  t0=$(now)
  for ((i = 1; i <= n; i++)); do
    parts+=("$T/s$n/part-$i.json")
    "$Q" calibrate "$MODEL" --calib "$T/calib" "${FLAGS[@]}" --shard "$i/$n" --threads 1 \
      --save-stats "$T/s$n/part-$i.json" -q >/dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(now)
  "$Q" merge-stats "${parts[@]}" -o "$T/s$n/table.json" -q >/dev/null
  t2=$(now)
  "$Q" "$MODEL" --load-calib "$T/s$n/table.json" -o "$T/s$n/model.onnx" -q >/dev/null
  t3=$(now)
  cmp -s "$T/s$n/table.json" "$T/one-2.json" && cmp -s "$T/s$n/model.onnx" "$T/one-2.onnx" ||
    { echo "bench/shards.sh: $n shards differ from the one-run result" >&2; exit 1; }
  echo "$(secs "$t0" "$t1") $(secs "$t1" "$t2") $(secs "$t2" "$t3") $(secs "$t0" "$t3")"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A R
for ((r = 1; r <= REPEAT; r++)); do
  R[one2]+="$(single 2) " R[one1]+="$(single 1) "
  for n in $SHARDS; do
    read -r c m e t <<<"$(sharded "$n")"
    R[c$n]+="$c " R[m$n]+="$m " R[e$n]+="$e " R[t$n]+="$t "
  done
done
med() { tr ' ' '\n' <<<"${R[$1]}" | grep . | median; }

echo "mobilenetv2, $IMAGES images, --method $METHOD, $(nproc) cores, median of $REPEAT; $(date -u +%F)"
echo "| configuration | calibrate s | merge s | emit s | total s | speed-up vs one run --threads 2 |"
echo "|---|---|---|---|---|---|"
base=$(med one2)
for k in one1 one2; do
  v=$(med $k)
  echo "| one run, --threads ${k#one} | | | | $v | $(awk -v a="$base" -v b="$v" 'BEGIN { printf "%.2fx", a / b }') |"
done
for n in $SHARDS; do
  v=$(med t$n)
  echo "| $n shard(s) side by side, --threads 1 each | $(med c$n) | $(med m$n) | $(med e$n) | $v | $(awk -v a="$base" -v b="$v" 'BEGIN { printf "%.2fx", a / b }') |"
done
echo "(every sharded table and model cmp-equal to the one-run result)"
