#!/usr/bin/env bash
# Benchmarks the state tables of issue 17 (crate statetable) beside the same flow in pyzmq
# (perf/statetable_py.py) and beside redis-benchmark, in one sitting, and prints a markdown table of
# medians with the ratios.
#
# Per rep (BENCH_REPS, default 3), alternating ours and pyzmq so that the machine's load drifts over
# both alike:
#   ours b1 p1, py b1 p1, ours b16 p1, py b16 p1, ours b1 p2, ours b16 p2   SETs producer → consumer
#   ours wt-replace, py wt-replace, ours wt-merge, py wt-merge            the same, written to Redis
#   redis-benchmark -P 64 of a 10-field HSET                               what this Redis can take
# (bN: N operations per message; pN: N producers; wt: write-through, B = 16.) Every SET has 10 fields
# of 16-byte values with 8-byte names, on 16-byte keys, 100,000 distinct keys (-r 100000).
#
# Needs redis-server, redis-cli and redis-benchmark (Debian: apt-get install redis-server
# redis-tools), cargo, and python with pyzmq (scripts/ensure-pyzmq.sh; redis-py is installed into
# it if missing). It starts its own redis-server on a free loopback port (--save "" --appendonly
# no) and stops it at the end, and builds `cargo build --release -p zmtp-perf --bin
# statetable_bench`.
#
# Environment (all optional):
#   BENCH_REPS=3                repetitions of every case
#   BENCH_COUNT=2000000         operations per run, ours without Redis
#   BENCH_WT_COUNT=1000000      operations per run, ours with write-through
#   BENCH_PY_COUNT=300000       operations per run, pyzmq without Redis
#   BENCH_PY_WT_COUNT=100000    operations per run, pyzmq with write-through
#   BENCH_RB_COUNT=1000000      requests of redis-benchmark (-n)
#   BENCH_CASES="..."           cases to run (default all, names as above: ours-b1-p1 py-b16-p1
#                               ours-wt-replace py-wt-merge redis-benchmark ...)
#   BENCH_RT=current|multi      runtime of statetable_bench (default current-thread)
#   BENCH_OUT=DIR               where results.jsonl, the table and the logs go (default a temp dir)
# Exit status: 0 when every run succeeded, 1 when one failed (the table shows what ran).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

REPS=${BENCH_REPS:-3}
COUNT=${BENCH_COUNT:-2000000}
WT_COUNT=${BENCH_WT_COUNT:-1000000}
PY_COUNT=${BENCH_PY_COUNT:-300000}
PY_WT_COUNT=${BENCH_PY_WT_COUNT:-100000}
RB_COUNT=${BENCH_RB_COUNT:-1000000}
ALL="ours-b1-p1 py-b1-p1 ours-b16-p1 py-b16-p1 ours-b1-p2 ours-b16-p2 ours-wt-replace py-wt-replace ours-wt-merge py-wt-merge redis-benchmark"
CASES=${BENCH_CASES:-$ALL}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/bench-statetable.XXXXXX)}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

for tool in redis-server redis-cli redis-benchmark; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench-statetable: $tool not found; install it (Debian: apt-get install -y redis-server redis-tools; scripts/test-all.sh does the same)" >&2
        exit 1
    fi
done

PY="$(bash "$script_dir/ensure-pyzmq.sh")"
if ! "$PY" -c 'import redis' >/dev/null 2>&1; then
    echo "bench-statetable: installing redis-py into $PY's environment" >&2
    "$PY" -m pip install -q redis >&2 || echo "bench-statetable: redis-py not installed; the pyzmq write-through runs will say SKIPPED" >&2
fi

echo "bench-statetable: building statetable_bench (release)" >&2
cargo build --release -p zmtp-perf --bin statetable_bench </dev/null >&2
target_dir="$(cargo metadata --format-version 1 --no-deps </dev/null |
    grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d'"' -f4)"
BIN="${target_dir:-$repo_root/target}/release/statetable_bench"

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --logfile "$OUT/redis.log" --dir "$OUT" &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { echo "bench-statetable: redis-server did not start (see $OUT/redis.log)" >&2; exit 1; }
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

{
    echo "machine: $(nproc) cores, $(uname -srm)"
    grep -m1 'model name' /proc/cpuinfo || true
    echo "redis: $(redis-server --version)"
    echo "python: $("$PY" -c 'import sys, zmq; print(sys.version.split()[0], "pyzmq", zmq.__version__, "libzmq", zmq.zmq_version())')"
    echo "started: $(date -u +%FT%TZ), load: $(uptime | sed 's/.*load average: //')"
} | tee "$OUT/machine.txt" >&2

failed=0
TCK=$(getconf CLK_TCK)
# CPU seconds redis-server has used so far (utime + stime from /proc): what each case cost Redis.
redis_cpu() { awk -v t="$TCK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$REDIS_PID/stat"; }

# run_flow CASE REP IMPL COUNT BATCH PRODUCERS [consumer args...]: consumer first (bound on a free
# port it reports on stderr), then the producer; both JSON lines go to results.jsonl tagged.
run_flow() {
    local case=$1 rep=$2 impl=$3 count=$4 batch=$5 producers=$6
    shift 6
    local cmd
    if [[ $impl == ours ]]; then cmd=("$BIN"); else cmd=("$PY" "$repo_root/perf/statetable_py.py"); fi
    local log="$OUT/$case.$rep"
    # Made here: the background job opens them only once it runs, which may be after the first look.
    : >"$log.consume.out"
    : >"$log.consume.err"
    "${cmd[@]}" consume --bind 'tcp://127.0.0.1:*' --count "$count" "$@" >"$log.consume.out" 2>"$log.consume.err" &
    local cpid=$!
    local ep=""
    for _ in $(seq 300); do
        ep=$(sed -n 's/^ENDPOINT //p' "$log.consume.err" 2>/dev/null | head -n 1 || true)
        [[ -n $ep ]] && break
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.05
    done
    if [[ -z $ep ]] && grep -q SKIPPED "$log.consume.out"; then
        wait "$cpid" || true
        sed "s/^{/{\"case\":\"$case\",\"rep\":$rep,/" "$log.consume.out" >>"$RESULTS"
        echo "bench-statetable: $case rep $rep: SKIPPED ($(cat "$log.consume.err"))" >&2
        return
    fi
    if [[ -z $ep ]]; then
        echo "bench-statetable: $case rep $rep: consumer did not bind (see $log.consume.err)" >&2
        kill "$cpid" 2>/dev/null || true
        wait "$cpid" 2>/dev/null || true
        failed=1
        return
    fi
    local prc=0 crc=0 rcpu0
    rcpu0=$(redis_cpu)
    "${cmd[@]}" produce --connect "$ep" --count "$count" --batch "$batch" --producers "$producers" \
        >"$log.produce.out" 2>"$log.produce.err" || prc=$?
    wait "$cpid" || crc=$?
    if ((prc != 0 || crc != 0)); then
        echo "bench-statetable: $case rep $rep: producer exit $prc, consumer exit $crc (see $log.*)" >&2
        failed=1
    fi
    local extra=""
    if [[ " $* " == *" --redis "* ]]; then
        extra=",\"dbsize\":$(redis-cli -p "$REDIS_PORT" dbsize),\"redis_server_cpu_seconds\":$(awk -v a="$(redis_cpu)" -v b="$rcpu0" 'BEGIN { printf "%.2f", a - b }')"
    fi
    for side in consume produce; do
        if [[ -s $log.$side.out ]]; then
            sed "s/^{/{\"case\":\"$case\",\"rep\":$rep${extra},/" "$log.$side.out" >>"$RESULTS"
        fi
    done
    echo "bench-statetable: $case rep $rep: $(grep -o '"ops_per_s":[0-9]*' "$log.consume.out" | head -n 1) $(grep -o '"redis_ops_per_s":[0-9]*' "$log.consume.out" || true)" >&2
}

run_case() {
    local case=$1 rep=$2
    case $case in
    ours-b1-p1) run_flow "$case" "$rep" ours "$COUNT" 1 1 ;;
    ours-b16-p1) run_flow "$case" "$rep" ours "$COUNT" 16 1 ;;
    ours-b1-p2) run_flow "$case" "$rep" ours "$COUNT" 1 2 ;;
    ours-b16-p2) run_flow "$case" "$rep" ours "$COUNT" 16 2 ;;
    py-b1-p1) run_flow "$case" "$rep" py "$PY_COUNT" 1 1 ;;
    py-b16-p1) run_flow "$case" "$rep" py "$PY_COUNT" 16 1 ;;
    ours-wt-replace | ours-wt-merge | py-wt-replace | py-wt-merge)
        redis-cli -p "$REDIS_PORT" flushall >/dev/null
        local impl=${case%%-*} n=$WT_COUNT merge=()
        [[ $impl == py ]] && n=$PY_WT_COUNT
        [[ $case == *merge ]] && merge=(--merge)
        run_flow "$case" "$rep" "$impl" "$n" 16 1 --redis "$REDIS_URL" "${merge[@]}"
        ;;
    redis-benchmark)
        redis-cli -p "$REDIS_PORT" flushall >/dev/null
        local v=value-00-abcdefg args=() i
        for i in 0 1 2 3 4 5 6 7 8 9; do args+=("field_0$i" "$v"); done
        local csv rcpu0
        rcpu0=$(redis_cpu)
        if csv=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -P 64 -n "$RB_COUNT" -r 100000 --csv \
            HSET key:__rand_int__ "${args[@]}" 2>"$OUT/$case.$rep.err"); then
            local rps
            rps=$(printf '%s\n' "$csv" | tail -n 1 | cut -d, -f2 | tr -d '"')
            echo "{\"case\":\"$case\",\"rep\":$rep,\"impl\":\"redis-benchmark\",\"mode\":\"hset\",\"ops\":$RB_COUNT,\"ops_per_s\":$rps,\"redis_ops_per_s\":$rps,\"dbsize\":$(redis-cli -p "$REDIS_PORT" dbsize),\"redis_server_cpu_seconds\":$(awk -v a="$(redis_cpu)" -v b="$rcpu0" 'BEGIN { printf "%.2f", a - b }')}" >>"$RESULTS"
            echo "bench-statetable: $case rep $rep: $rps requests/s" >&2
        else
            echo "bench-statetable: redis-benchmark failed (see $OUT/$case.$rep.err)" >&2
            failed=1
        fi
        ;;
    *)
        echo "bench-statetable: unknown case $case" >&2
        failed=1
        ;;
    esac
}

for rep in $(seq "$REPS"); do
    for case in $CASES; do
        run_case "$case" "$rep"
    done
done
echo "finished: $(date -u +%FT%TZ), load: $(uptime | sed 's/.*load average: //')" | tee -a "$OUT/machine.txt" >&2

python3 "$script_dir/plot-statetable-bench.py" --table "$RESULTS" | tee "$OUT/table.md"
echo "bench-statetable: raw results in $RESULTS" >&2
exit "$failed"
