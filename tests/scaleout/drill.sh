#!/usr/bin/env bash
# Failure drills of scripts/slurm/vit-array.sbatch on the engines the README names, over a few hundred CIFAR-10
# images, each ending with scripts/slurm/merge.sh and a byte-for-byte comparison with a single-process run
# (same -b, same threads per task):
#  - GNU parallel: one shard's vit gets SIGTERM and one is SIGKILLed twice; --retries resumes the first,
#    exhausts on the second, and --resume-failed with the --joblog reruns only that one.
#  - Slurm: a real single-node cluster started here (slurmctld + slurmd on 127.0.0.1, a MUNGE key made on the
#    spot, the node line from `slurmd -C`: this machine's CPUs and memory); the array is submitted, one index is
#    scancelled mid-run, another task's vit is SIGKILLed, and the same sbatch command is submitted again.
# Every daemon it starts is stopped by PID however it ends (an EXIT trap; INT and TERM exit through it). Needs root;
# runs tests/scaleout/setup.sh (installs slurm-wlm, munge, parallel) first, and starts the Slurm cluster only when
# that script installed Slurm (it says so with exit 0; on a machine whose Slurm came from elsewhere, exit 3, only
# the GNU parallel drill runs).
# Usage: drill.sh VIT_BINARY SOURCE_DIR [IMAGES]     (IMAGES: default 400)
# Env: VIT_DRILL_MODEL (default SOURCE_DIR/models/deit-tiny-imagenet: ~20 ms an image on one core, so a task is
#      surely mid-run when it is killed), VIT_DRILL_KEEP=1 keeps the work folder.
set -uo pipefail
VIT=$(realpath "$1")
SRC=$(realpath "$2")
IMAGES=${3:-400}
. "$SRC/tests/cli/lib.sh"
MODEL=${VIT_DRILL_MODEL:-$SRC/models/deit-tiny-imagenet}
CIFAR=$SRC/../shared/data/cifar10-test
B=8
TASKS=4
t0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[%6ss] %s\n' "$(since "$t0")" "$*"; }

[[ $(id -u) -eq 0 ]] || { echo "drill: needs root (the daemons run as root here)"; exit 1; }
"$SRC/tests/scaleout/setup.sh"
case $? in
    0) slurm=1 ;;
    3) slurm=0 ;;
    *) echo "drill: setup failed"; exit 1 ;;
esac
[[ -d $CIFAR ]] || { echo "drill: $CIFAR missing (../shared test data)"; exit 1; }

D=$(mktemp -d /tmp/vit-scaleout-drill.XXXXXX)
chmod 755 "$D"
pids=()   # daemons started here, stopped in reverse order
export SLURM_CONF=$D/slurm.conf
ppid_=""  # a GNU parallel run in the background
stop_all() {
    if [[ -n $ppid_ ]] && kill -0 "$ppid_" 2>/dev/null; then
        kill -TERM "$ppid_"; sleep 0.5; kill -TERM "$ppid_" 2>/dev/null   # the second TERM makes parallel kill its jobs
        wait "$ppid_" 2>/dev/null
    fi
    if [[ -f $SLURM_CONF ]] && ((${#pids[@]} >= 2)); then
        local jobs
        jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
        if [[ -n $jobs ]]; then
            scancel $jobs 2>/dev/null
            for _ in $(seq 1 30); do [[ -z $(squeue -h 2>/dev/null) ]] && break; sleep 0.5; done
            # Still there: the jobs' own processes, by the PIDs slurmd knows for them (their slurmstepd then ends).
            local left
            left=$(scontrol listpids 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1 }')
            [[ -n $left ]] && kill -KILL $left 2>/dev/null
        fi
    fi
    local i p
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        p=${pids[i]}
        kill -TERM "$p" 2>/dev/null || continue
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    pids=()
    [[ ${VIT_DRILL_KEEP:-0} == 1 ]] && echo "drill: work folder kept: $D" || rm -rf "$D"
    cleanup   # lib.sh's: its temporary folder and tracked processes
}
trap stop_all EXIT
trap 'exit 130' INT TERM

free_port() {
    local p
    for p in $(shuf -i 20000-45000 -n 50); do
        [[ -z $(ss -Hltn "sport = :$p") ]] && { echo "$p"; return; }
    done
    echo 6817
}

echo "== the input list and the single-process reference"
list=$D/list.txt
find "$CIFAR" -name '*.jpg' | sort | awk -v n="$IMAGES" 'NR % 25 == 1 && c < n - 1 { print; c++ }' >"$list"
echo "not an image" >"$D/not-an-image.jpg"
sed -i "$((IMAGES / 2))i $D/not-an-image.jpg" "$list"   # one unreadable input: an error record, not a failure
check_eq "$IMAGES inputs listed" "$(wc -l <"$list")" "$IMAGES"
ts=$(date +%s.%N)
# One thread, as each array task has: oneDNN's results depend on the thread count for some batch shapes
# (here the block of 7 good images around the unreadable one), on the batch size for all.
"$VIT" classify -m "$MODEL" --format jsonl -b $B --shard-block $B -t 1 --files-from "$list" -o "$D/reference.jsonl" 2>/dev/null
check_eq "reference run: exit 2 (one unreadable input)" "$?" 2
log "single process (-b $B, -t 1): $IMAGES images in $(since "$ts") s"

echo "== GNU parallel: --retries, --joblog, --resume-failed"
mkdir -p "$D/par/logs" "$D/par/out"
# The shard's log holds every attempt; these read the last attempt's part (after its "vit pid" line).
last_attempt() { tr '\r' '\n' 2>/dev/null <"$1" | awk '/ vit pid /{ buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }'; }
done_in() { last_attempt "$1" | sed -n 's/^\([0-9]*\) done .*/\1/p' | tail -n 1 | grep . || echo 0; }
attempts_in() { local n; n=$(grep -c ' vit pid ' "$1" 2>/dev/null); echo "${n:-0}"; }
# Waits until the log $1 shows attempt $2 with at least $3 records done (at most 120 s).
wait_attempt() {
    for _ in $(seq 1 2400); do
        (($(attempts_in "$1") >= $2 && $(done_in "$1") >= $3)) && return 0
        sleep 0.05
    done
    return 1
}
vitpid_in() { grep -o 'vit pid [0-9]*' "$1" | tail -n 1 | cut -d' ' -f3; }
shard_cmd=$(printf 'VIT=%q VIT_SHARD={} VIT_SHARDS=%s VIT_THREADS=1 %q %q %q -m %q -b %s --shard-block %s --progress 2>>%q/par/logs/shard-{}.log' \
    "$VIT" "$TASKS" "$SRC/scripts/slurm/vit-array.sbatch" "$list" "$D/par/out" "$MODEL" "$B" "$B" "$D")
ts=$(date +%s.%N)
parallel -j2 --joblog "$D/par/jobs.log" --retries 2 "$shard_cmd" ::: $(seq 0 $((TASKS - 1))) &
ppid_=$!
log "parallel -j2 --retries 2 --joblog jobs.log over $TASKS shards (pid $ppid_)"
check "shard 1 running with 2 batches done" wait_attempt "$D/par/logs/shard-1.log" 1 $((2 * B))
log "shard 1: $(done_in "$D/par/logs/shard-1.log") records done: kill -TERM of its vit (pid $(vitpid_in "$D/par/logs/shard-1.log"))"
kill -TERM "$(vitpid_in "$D/par/logs/shard-1.log")"
check "shard 2 running with 2 batches done" wait_attempt "$D/par/logs/shard-2.log" 1 $((2 * B))
log "shard 2: $(done_in "$D/par/logs/shard-2.log") records done: kill -9 of its vit (pid $(vitpid_in "$D/par/logs/shard-2.log"))"
kill -9 "$(vitpid_in "$D/par/logs/shard-2.log")"
check "shard 2 retried by parallel, 2 batches done" wait_attempt "$D/par/logs/shard-2.log" 2 $((2 * B))
log "shard 2 retry: $(done_in "$D/par/logs/shard-2.log") records done: kill -9 again (pid $(vitpid_in "$D/par/logs/shard-2.log"))"
kill -9 "$(vitpid_in "$D/par/logs/shard-2.log")"
wait "$ppid_"
rc=$?
check_eq "parallel exit 1: one job failed after its retries" "$rc" 1
log "parallel over in $(since "$ts") s, exit $rc; jobs.log:"
column -t -s $'\t' "$D/par/jobs.log" | cut -c1-110 | sed 's/^/           /'
check_eq "jobs.log: shard 2 failed with 137" "$(awk -F'\t' '$NF ~ /VIT_SHARD=2 / { print $7 }' "$D/par/jobs.log" | tail -n 1)" 137
check_eq "shard 1 resumed by the retry" "$(grep -c 'resuming: ' "$D/par/logs/shard-1.log")" 1
n1=$(grep -o 'resuming: [0-9]* inputs' "$D/par/logs/shard-1.log" | grep -o '[0-9]*')
log "shard 1: the retry resumed after $n1 records kept by the SIGTERMed attempt"
check "  whole batches kept ($n1)" test $((n1 % B)) -eq 0 -a "$n1" -ge $((2 * B))
ts=$(date +%s.%N)
parallel -j2 --joblog "$D/par/jobs.log" --retries 2 --resume-failed "$shard_cmd" ::: $(seq 0 $((TASKS - 1)))
rc=$?
check_eq "parallel --resume-failed: exit 0" "$rc" 0
log "parallel --resume-failed over in $(since "$ts") s: attempts per shard (vit runs): $(for k in $(seq 0 $((TASKS - 1))); do printf '%s:%s ' "$k" "$(attempts_in "$D/par/logs/shard-$k.log")"; done)"
check_eq "only shard 2 rerun (3 attempts), shards 0 and 3 once" "$(attempts_in "$D/par/logs/shard-0.log") $(attempts_in "$D/par/logs/shard-2.log") $(attempts_in "$D/par/logs/shard-3.log")" "1 3 1"
"$SRC/scripts/slurm/merge.sh" -o "$D/par/merged.jsonl" "$list" "$D"/par/out/part-*.jsonl 2>"$D/par/merge.err"
check_eq "merge: exit 0" "$?" 0
log "$(tail -n 1 "$D/par/merge.err")"
check "merged = single-process run, byte for byte" cmp "$D/par/merged.jsonl" "$D/reference.jsonl"

if ((!slurm)); then
    echo "== Slurm drill SKIPPED: slurm-wlm was not installed by tests/scaleout/setup.sh (see its message above)"
    log "drill total $(since "$t0") s"
    finish
    exit
fi

echo "== a single-node Slurm cluster on 127.0.0.1"
mkdir -p "$D/munge" "$D/state" "$D/spool" "$D/logs" "$D/out"
chmod 700 "$D/munge"
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$D/munge/munge.key"
munged --foreground --force --key-file="$D/munge/munge.key" --socket="$D/munge/munge.sock" \
    --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed" \
    >"$D/munge/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do [[ -S $D/munge/munge.sock ]] && break; sleep 0.1; done
host=$(hostname -s)
node=$(slurmd -C | head -n 1)
cat >"$SLURM_CONF" <<EOF
ClusterName=vitdrill
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.sock
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=15
MinJobAge=600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=drill Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D -c -f "$SLURM_CONF" >"$D/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N "$host" >"$D/slurmd.out" 2>&1 &
pids+=($!)
up=0
for _ in $(seq 1 60); do
    [[ $(sinfo -h -o %T 2>/dev/null) == idle ]] && { up=1; break; }
    sleep 0.5
done
check "slurmctld + slurmd up, node idle" test "$up" -eq 1
((up)) || { tail -n 20 "$D"/slurmctld.log "$D"/slurmd.log "$D/munge/munged.log"; exit 1; }
log "cluster up: $node (munged ${pids[0]}, slurmctld ${pids[1]}, slurmd ${pids[2]})"

submit() {
    VIT=$VIT sbatch --parsable --array=0-$((TASKS - 1)) --cpus-per-task=1 --output="$D/logs/%A_%a.log" \
        "$SRC/scripts/slurm/vit-array.sbatch" "$list" "$D/out" -m "$MODEL" -b $B --shard-block $B --progress
}
# Records done so far by array task $1 of job $2, from its --progress line on stderr (0 before it starts).
progress() { tr '\r' '\n' 2>/dev/null <"$D/logs/$2_$1.log" | sed -n 's/^\([0-9]*\) done .*/\1/p' | tail -n 1 | grep . || echo 0; }
# Waits until array task $1 of job $2 has done at least $3 records (at most 120 s).
wait_progress() {
    for _ in $(seq 1 2400); do
        (($(progress "$1" "$2") >= $3)) && return 0
        grep -q "complete:" "$D/logs/$2_$1.log" 2>/dev/null && return 1
        sleep 0.05
    done
    return 1
}
wait_idle() { for _ in $(seq 1 1200); do [[ -z $(squeue -h) ]] && return 0; sleep 0.25; done; return 1; }
state() { scontrol -o show job "$1" | grep -o 'JobState=[A-Z_]* .*ExitCode=[0-9:]*' | sed 's/ .*ExitCode=/ ExitCode=/'; }

echo "== attempt 1: $TASKS tasks of 1 CPU; scancel one index, kill -9 another task's vit"
ts=$(date +%s.%N)
job1=$(submit)
log "submitted job array $job1 (--array=0-$((TASKS - 1)), $IMAGES images in all, -b $B)"
check "task 1 is running and has written 2 batches" wait_progress 1 "$job1" $((2 * B))
log "task 1: $(progress 1 "$job1") records done: scancel ${job1}_1"
scancel "${job1}_1"
check "task 2 is running and has written 2 batches" wait_progress 2 "$job1" $((2 * B))
vitpid=$(sed -n 's/.*vit pid \([0-9]*\) writing.*/\1/p' "$D/logs/${job1}_2.log")
log "task 2: $(progress 2 "$job1") records done: kill -9 of its vit (pid $vitpid)"
kill -9 "$vitpid"
check "attempt 1 drained" wait_idle
wall1=$(since "$ts")
log "attempt 1 over in $wall1 s"
for k in $(seq 0 $((TASKS - 1))); do log "  task $k: $(state "${job1}_$k")"; done
parts1=$(ls "$D/out")
log "  out/: $(echo $parts1)"
n1=$( (cat "$D"/out/part-1.job*.jsonl 2>/dev/null || true) | wc -l)
log "  task 1 kept $n1 records (whole batches of $B: $((n1 % B == 0 ? 1 : 0))); task 2 kept none: $(ls -a "$D/out" | grep -c vit-tmp) temporary file(s) of the killed vit"
check_eq "cancelled task: JobState" "$(state "${job1}_1" | cut -d' ' -f1)" "JobState=CANCELLED"
check_eq "killed task: JobState, exit 137" "$(state "${job1}_2")" "JobState=FAILED ExitCode=137:0"
check "cancelled task kept its finished batches (SIGTERM commits)" test "$n1" -ge $((2 * B))
check "  whole batches only" test $((n1 % B)) -eq 0
check "killed task left no part file" bash -c "! ls '$D'/out/part-2.job*.jsonl >/dev/null 2>&1"
"$SRC/scripts/slurm/merge.sh" -o "$D/merged.jsonl" "$list" "$D"/out/part-*.jsonl 2>"$D/merge1.err"
rc=$?
check_eq "merge before the resume: exit 1, missing inputs named" "$rc" 1
log "merge now: $(tail -n 1 "$D/merge1.err")"
check "  nothing written" test ! -e "$D/merged.jsonl"

echo "== attempt 2: the same sbatch command again"
ts=$(date +%s.%N)
job2=$(submit)
log "resubmitted: job array $job2"
check "attempt 2 drained" wait_idle
wall2=$(since "$ts")
log "attempt 2 over in $wall2 s"
for k in $(seq 0 $((TASKS - 1))); do
    log "  task $k: $(state "${job2}_$k"): $(grep -v 'done .*img/s' "$D/logs/${job2}_$k.log" | tr '\r' '\n' | grep '^vit-array' | sed 's/^vit-array: //' | tr '\n' ' ')"
done
check "finished shards not rerun" grep -q "already complete" "$D/logs/${job2}_0.log"
check "cancelled shard resumed from its kept records" grep -q "resuming: $n1 inputs done by 1 earlier attempt" "$D/logs/${job2}_1.log"
check "killed shard's temporary file removed" grep -q "removing .*vit-tmp" "$D/logs/${job2}_2.log"
n2=$(cat "$D"/out/part-1.job"$job2"*.jsonl | wc -l)
log "task 1: attempt 1 kept $n1 records, attempt 2 wrote $n2 (no input twice: merge checks)"
check "cancelled shard's resume wrote the rest" test "$n2" -gt 0
"$SRC/scripts/slurm/merge.sh" -o "$D/merged.jsonl" "$list" "$D"/out/part-*.jsonl 2>"$D/merge2.err"
rc=$?
check_eq "merge: exit 0" "$rc" 0
log "merge: $(tail -n 1 "$D/merge2.err")"
check "merged = single-process run, byte for byte ($IMAGES records, -b $B)" cmp "$D/merged.jsonl" "$D/reference.jsonl"
log "merged vs reference: $(cmp "$D/merged.jsonl" "$D/reference.jsonl" >/dev/null && echo identical || echo DIFFERENT), $(wc -l <"$D/merged.jsonl") records"
log "drill total $(since "$t0") s"
finish
