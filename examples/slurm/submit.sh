#!/usr/bin/env bash
# Submits sharded calibration as a Slurm job array and the merge + emit job that waits for it.
#
#   MODEL=m.onnx DATA=calib/ OUT=m.int8.onnx WORK=/shared/ptq-run SHARDS=8 \
#   CALIB_FLAGS="--preprocess torchvision --method percentile" bash examples/slurm/submit.sh
#
# Prints "ARRAY_JOB_ID MERGE_JOB_ID" on stdout. MODEL, DATA, OUT and WORK must be paths that every
# compute node sees (a shared file system). Optional: SHARDS (default 4), THREADS (CPUs per shard,
# default 1), QUANTIZE (the binary, default `quantize` on PATH), CALIB_FLAGS (calibration and data
# flags, given to every shard: --method, --percentile, --target, --preset, preprocessing ...),
# EMIT_FLAGS (flags for the final `quantize MODEL --load-calib`), SBATCH_ARGS (given to both
# sbatch calls, e.g. "--partition=cpu --account=me").
set -euo pipefail
set -f  # the flag variables are split on spaces, never globbed
here=$(cd "$(dirname "$0")" && pwd)

: "${MODEL:?set MODEL (the fp32 ONNX model)}" "${DATA:?set DATA (calibration data)}"
: "${OUT:?set OUT (the int8 model to write)}" "${WORK:?set WORK (a shared folder for the shard files)}"
SHARDS=${SHARDS:-4}
THREADS=${THREADS:-1}
QUANTIZE=${QUANTIZE:-quantize}
CALIB_FLAGS=${CALIB_FLAGS:-}
EMIT_FLAGS=${EMIT_FLAGS:-}
SBATCH_ARGS=${SBATCH_ARGS:-}
[[ $SHARDS =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: SHARDS must be a positive integer, got '$SHARDS'" >&2; exit 1; }
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: THREADS must be a positive integer, got '$THREADS'" >&2; exit 1; }

mkdir -p "$WORK/parts" "$WORK/logs"
export MODEL DATA OUT WORK SHARDS QUANTIZE CALIB_FLAGS EMIT_FLAGS

# shellcheck disable=SC2086  # SBATCH_ARGS holds several options
array=$(sbatch --parsable --export=ALL --array="1-$SHARDS" --cpus-per-task="$THREADS" \
  --output="$WORK/logs/calibrate-%A_%a.out" $SBATCH_ARGS "$here/calibrate.sbatch")
array=${array%%;*}  # --parsable prints "jobid" or "jobid;cluster"

# afterok: the merge starts only when every array task exited 0; --kill-on-invalid-dep cancels it
# when one failed, instead of leaving it pending forever (DependencyNeverSatisfied).
# shellcheck disable=SC2086
merge=$(sbatch --parsable --export=ALL --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --output="$WORK/logs/merge-%j.out" $SBATCH_ARGS "$here/merge.sbatch")
merge=${merge%%;*}

echo "submit.sh: calibration array job $array ($SHARDS shards), merge job $merge; logs in $WORK/logs" >&2
echo "$array $merge"
