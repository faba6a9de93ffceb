#!/usr/bin/env bash
# examples/slurm end to end on a one-node Slurm started here: the sharded table and model equal a single-machine run.
#
#   slurm_e2e.sh --quantize BIN --shared DIR [--examples DIR] [--configs "minmax percentile ..."]
#                [--shards N] [--deadline SECONDS] [--keep]
#
# Configurations: minmax, percentile, entropy, mse (--method NAME) and trt (--method mse --target
# trt: a placement flag the merge step must pass on, or the model differs).
#
# Starts munged (own key and socket), slurmctld and slurmd in the foreground as background
# processes, all state, logs and pid files in a temp folder, configured only through SLURM_CONF.
# Then: a smoke job (array + afterok dependency) proves the cluster; for each configuration,
# examples/slurm/submit.sh with N shards on mobilenetv2 (100 ImageNet images) must give a table and
# a model that `cmp` equal to `quantize MODEL --calib DATA --save-calib` on one machine; a run whose
# shards fail must get its merge job cancelled and write no model. The daemons are always stopped
# and the temp folder removed (trap), also when the deadline passes.
# Exit 77 (skip) when ../shared, the Slurm/munge binaries or a daemon are not available.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
QUANTIZE="" SHARED="" EXAMPLES="$here/../../examples/slurm"
CONFIGS="minmax percentile entropy mse trt" SHARDS=4 DEADLINE=600 KEEP=0
while (($#)); do
  case $1 in
    --quantize) QUANTIZE=$2; shift 2 ;;
    --shared) SHARED=$2; shift 2 ;;
    --examples) EXAMPLES=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    --shards) SHARDS=$2; shift 2 ;;
    --deadline) DEADLINE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "slurm_e2e: unknown argument $1" >&2; exit 2 ;;
  esac
done

skip() { echo "SKIP: $*"; exit 77; }
log() { echo "[slurm_e2e $(date +%T)] $*"; }

[ -x "$QUANTIZE" ] || { echo "slurm_e2e: --quantize BIN is required" >&2; exit 2; }
MODEL=$SHARED/models/mobilenetv2/model.onnx
IMAGES=$SHARED/data/imagenet-sample
[ -f "$MODEL" ] && [ -d "$IMAGES" ] || skip "no shared models/data at '$SHARED' (mobilenetv2, imagenet-sample)"
for b in munged munge slurmctld slurmd sbatch sinfo squeue scontrol scancel; do
  command -v "$b" >/dev/null || skip "'$b' not found (tools/setup.sh --tests installs slurm-wlm and munge)"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/ptq-slurm.XXXXXX") || exit 1
chmod 755 "$T"  # munged wants its socket folder (and the path to it) searchable by all
mkdir -p "$T/munge" "$T/run" "$T/state" "$T/spool" "$T/log" "$T/calib"
chmod 700 "$T/munge"
export SLURM_CONF=$T/slurm.conf
unset SLURM_JOB_ID SLURM_ARRAY_JOB_ID  # in case the test itself runs inside a Slurm job
PIDS=() WATCHDOG=""

stop_pid() {  # TERM, then KILL after 5 s; only processes this script started
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
}
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
  if [ -f "$SLURM_CONF" ] && scontrol ping >/dev/null 2>&1; then
    # jobs first, so slurmstepd ends their processes before the daemons go
    scancel --user="$(id -un)" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  if ((KEEP)); then echo "slurm_e2e: kept $T"; else rm -rf "$T"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted or deadline (${DEADLINE}s) passed"; exit 1' INT TERM
# The watchdog holds no pipe of ours (ctest waits for those) and leaves at most a 1 s sleep behind.
(end=$((SECONDS + DEADLINE)); while ((SECONDS < end)); do sleep 1; done; kill -TERM $$) >/dev/null 2>&1 &
WATCHDOG=$!

tail_logs() { local f; for f in "$@"; do [ -f "$f" ] && { echo "--- $f (tail)"; tail -n 20 "$f"; }; done; }

# --- munge: own key, socket, pid, log and seed files ---------------------------------------------
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge/munge.key"
munged -F --key-file="$T/munge/munge.key" --socket="$T/run/munge.sock" --pid-file="$T/run/munged.pid" \
  --log-file="$T/log/munged.log" --seed-file="$T/munge/munged.seed" >"$T/log/munged.out" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do [ -S "$T/run/munge.sock" ] && break; sleep 0.1; done
echo probe | munge -S "$T/run/munge.sock" | unmunge -S "$T/run/munge.sock" >/dev/null 2>&1 \
  || { tail_logs "$T/log/munged.out" "$T/log/munged.log"; skip "munged did not start"; }

# --- slurm.conf: this node as it is (slurmd -C), our ports, state and logs in $T -----------------
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000))
}
ctld_port=$(free_port) slurmd_port=$(free_port)
[ "$ctld_port" != "$slurmd_port" ] || slurmd_port=$((ctld_port + 1))
hw=$(slurmd -C 2>/dev/null | head -n 1 | grep -o ' CPUs=.*')
[ -n "$hw" ] || hw=" CPUs=$(nproc) RealMemory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024))"
user=$(id -un)
cat >"$SLURM_CONF" <<EOF
ClusterName=ptqtest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/run/munge.sock
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/run/slurmctld.pid
SlurmdPidFile=$T/run/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
NodeName=localhost NodeAddr=127.0.0.1$hw State=UNKNOWN
PartitionName=ptq Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -D -i >"$T/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -N localhost >"$T/log/slurmd.out" 2>&1 &
PIDS+=($!)
state=""
for ((i = 0; i < 300; i++)); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1)
  [ "$state" = idle ] && break
  for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || break 2; done
  sleep 0.1
done
if [ "$state" != idle ]; then
  tail_logs "$T"/log/slurm*.out "$T"/log/slurm*.log
  skip "single-node Slurm did not come up (node state '${state:-none}')"
fi
log "Slurm up: $(sinfo -h -N -o '%N %t CPUs=%c mem=%m') (ports $ctld_port/$slurmd_port)"

job_state() { scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1 | cut -d= -f2; }
wait_jobs() {  # wait until every job given has left PENDING/RUNNING/...; fails at the deadline
  local id s busy
  while :; do
    busy=0
    for id in "$@"; do
      s=$(job_state "$id")
      case $s in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) ;; *) busy=1 ;; esac
    done
    ((busy)) || return 0
    sleep 0.5
  done
}

# --- smoke job: array + afterok dependency, no ptq involved ---------------------------------------
smoke=$(sbatch --parsable --array=1-2 -o "$T/smoke-%a.out" --wrap 'echo "task $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT"')
after=$(sbatch --parsable --dependency="afterok:$smoke" -o "$T/smoke-after.out" --wrap 'cat '"$T"'/smoke-1.out '"$T"'/smoke-2.out')
wait_jobs "$after"
if [ "$(job_state "$after")" != COMPLETED ] || [ "$(cat "$T/smoke-after.out")" != "$(printf 'task 1/2\ntask 2/2')" ]; then
  tail_logs "$T"/smoke-*.out "$T"/log/slurm*.log
  echo "FAIL: smoke job array + dependency did not run as expected"; exit 1
fi
log "smoke job array + dependency ok"

# --- calibration data: every 10th image in sorted order (100 images) ------------------------------
LC_ALL=C ls "$IMAGES" | grep -i '\.jpg$' | awk 'NR % 10 == 1' | while read -r f; do ln -s "$IMAGES/$f" "$T/calib/$f"; done
n=$(ls "$T/calib" | wc -l)
[ "$n" -ge 100 ] || { echo "FAIL: expected 100 calibration images, found $n"; exit 1; }

flags_of() { case $1 in trt) echo "--preprocess torchvision --method mse --target trt" ;; *) echo "--preprocess torchvision --method $1" ;; esac; }
failures=0
declare -A ARRAY MERGE

# --- submit every configuration (the scheduler runs them side by side), then one-machine runs ----
for m in $CONFIGS; do
  out=$(MODEL="$MODEL" DATA="$T/calib" OUT="$T/run-$m/model.onnx" WORK="$T/run-$m" SHARDS="$SHARDS" \
        QUANTIZE="$QUANTIZE" CALIB_FLAGS="$(flags_of "$m")" EMIT_FLAGS="-q" \
        bash "$EXAMPLES/submit.sh") || { echo "FAIL: submit.sh ($m)"; exit 1; }
  read -r ARRAY[$m] MERGE[$m] <<<"$out"
  log "$m: array job ${ARRAY[$m]}, merge job ${MERGE[$m]}"
done
# A run whose shards all fail (a flag quantize rejects): its merge job must be cancelled, no model.
bad=$(MODEL="$MODEL" DATA="$T/calib" OUT="$T/run-bad/model.onnx" WORK="$T/run-bad" SHARDS=2 \
      QUANTIZE="$QUANTIZE" CALIB_FLAGS="--method no-such-method" bash "$EXAMPLES/submit.sh") \
  || { echo "FAIL: submit.sh (bad run)"; exit 1; }
read -r bad_array bad_merge <<<"$bad"

for m in $CONFIGS; do
  mkdir -p "$T/ref-$m"
  # shellcheck disable=SC2046
  "$QUANTIZE" "$MODEL" --calib "$T/calib" $(flags_of "$m") --save-calib "$T/ref-$m/table.json" \
    -o "$T/ref-$m/model.onnx" -q >/dev/null || { echo "FAIL: single-machine run ($m)"; exit 1; }
done
log "single-machine runs done; waiting for the Slurm jobs"

merges=()
for m in $CONFIGS; do merges+=("${MERGE[$m]}"); done
wait_jobs "${merges[@]}" "$bad_merge"

for m in $CONFIGS; do
  s=$(job_state "${MERGE[$m]}") ok=1
  if [ "$s" != COMPLETED ]; then
    echo "FAIL: $m: merge job ${MERGE[$m]} ended $s"; ok=0
  else
    for ((i = 1; i <= SHARDS; i++)); do
      p=$(printf '%s/parts/part-%04d-of-%04d.json' "$T/run-$m" "$i" "$SHARDS")
      [ -s "$p" ] || { echo "FAIL: $m: shard statistics $p missing"; ok=0; }
    done
    cmp "$T/ref-$m/table.json" "$T/run-$m/table.json" || { echo "FAIL: $m: merged table differs from the single-machine table"; ok=0; }
    cmp "$T/ref-$m/model.onnx" "$T/run-$m/model.onnx" || { echo "FAIL: $m: model differs from the single-machine model"; ok=0; }
  fi
  if ((ok)); then
    log "$m: $SHARDS shards on Slurm == one machine (table $(stat -c %s "$T/run-$m/table.json") B, model $(stat -c %s "$T/run-$m/model.onnx") B, cmp equal)"
  else
    failures=$((failures + 1))
    tail_logs "$T/run-$m"/logs/*.out
  fi
done

s=$(job_state "$bad_merge")
if [ "$s" != CANCELLED ] || [ -e "$T/run-bad/model.onnx" ]; then
  echo "FAIL: failing shards: merge job $bad_merge ended '$s' (want CANCELLED), model written: $([ -e "$T/run-bad/model.onnx" ] && echo yes || echo no)"
  tail_logs "$T/run-bad"/logs/*.out
  failures=$((failures + 1))
else
  log "failing shards (array $bad_array): merge job cancelled, no model written"
fi

if ((failures)); then echo "FAIL: $failures check(s) failed"; exit 1; fi
echo "PASS: configurations ($CONFIGS), $SHARDS shards each, table and model byte-identical to one machine"
