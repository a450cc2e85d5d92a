#!/usr/bin/env bash
# Connection capacity and reconnect storm, zmtp against libzmq, in one run (reliability.md §7c L-5,
# L-8; §7b B-12, B-13). Builds perf/'s conn_capacity in release mode, then for each server in turn
# (a zmtp ROUTER: `conn_capacity serve`; a pyzmq ROUTER on libzmq 4.3.5: scripts/capacity_server.py,
# both NULL, both echoing) starts a fresh server process and runs the same raw-socket client:
#
#   idle:  N idle handshaked connections (default 10000): RSS per connection, handshakes/s, time to
#          handshake N, idle CPU, an active client's round-trip latency before and with N idle;
#   storm: CLIENTS clients (default 1000) each connecting, handshaking and closing every PERIOD_MS
#          (default 100) for SECS (default 60): reconnects/s, server RSS, descriptors and CLOSE_WAIT
#          during and after, a legitimate client's round-trip p50/p99 before and during.
#          STORM_ROUNDS (default 2) storms in a row: RSS that grows per round would be a leak.
#
# Writes $OUT/$DATE.md (side by side), $OUT/$DATE.tsv (metric, zmtp, libzmq), $OUT/$DATE-samples.tsv
# (the storm's 250 ms samples) and $OUT/$DATE-storm.svg (RSS and descriptors over time); raw client
# and server output goes to $OUT/raw-$DATE/ (not committed). Non-interactive. A smoke run:
#
#     N=200 CLIENTS=50 SECS=3 OUT=/tmp/cap scripts/capacity.sh
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

N="${N:-10000}"
CLIENTS="${CLIENTS:-1000}"
PERIOD_MS="${PERIOD_MS:-100}"
SECS="${SECS:-60}"
DATE="${DATE:-$(date -u +%Y-%m-%d)}"
OUT="${OUT:-$repo_root/docs/capacity}"
SERVERS="${SERVERS:-zmtp libzmq}"
export STORM_ROUNDS="${STORM_ROUNDS:-2}"

ulimit -n "$(ulimit -Hn)" || true
py="$("$script_dir/ensure-pyzmq.sh")"
cargo build --release -p zmtp-perf --bin conn_capacity </dev/null >&2
target_dir="$(cargo metadata --format-version 1 --no-deps </dev/null |
    grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d'"' -f4)"
bin="${target_dir:-$repo_root/target}/release/conn_capacity"

raw="$OUT/raw-$DATE"
mkdir -p "$OUT" "$raw"
: >"$raw/results.txt"
server_pid=""
cleanup() { if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

# start_server NAME TAG: starts a fresh server, sets server_pid and endpoint.
start_server() {
    local name="$1" tag="$2"
    case "$name" in
        zmtp) "$bin" serve >"$raw/server-$tag.out" 2>"$raw/server-$tag.err" </dev/null & ;;
        libzmq) "$py" "$script_dir/capacity_server.py" >"$raw/server-$tag.out" 2>"$raw/server-$tag.err" </dev/null & ;;
        *) echo "capacity: unknown server $name" >&2; exit 1 ;;
    esac
    server_pid=$!
    endpoint=""
    for _ in $(seq 100); do
        endpoint="$(awk '/^ENDPOINT/{print $2}' "$raw/server-$tag.out")"
        [[ -n "$endpoint" ]] && break
        sleep 0.1
    done
    if [[ -z "$endpoint" ]]; then
        echo "capacity: $name server did not start" >&2
        cat "$raw/server-$tag.err" >&2
        exit 1
    fi
}

lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2); print "cpu\t"$2}' >"$raw/machine.txt"
echo "cores	$(nproc)" >>"$raw/machine.txt"
echo "load_before	$(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw/machine.txt"
echo "kernel	$(uname -r)" >>"$raw/machine.txt"
echo "commit	$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >>"$raw/machine.txt"

for s in $SERVERS; do
    start_server "$s" "idle-$s"
    echo "capacity: idle $N against $s ($endpoint, pid $server_pid)" >&2
    "$bin" idle "$endpoint" "$server_pid" "$N" "$s" 2>&1 >>"$raw/results.txt" | tee "$raw/idle-$s.err" >&2
    cleanup; server_pid=""
done
for s in $SERVERS; do
    start_server "$s" "storm-$s"
    echo "capacity: storm $CLIENTS x ${PERIOD_MS} ms x ${SECS} s against $s ($endpoint, pid $server_pid)" >&2
    "$bin" storm "$endpoint" "$server_pid" "$CLIENTS" "$PERIOD_MS" "$SECS" "$s" "$raw/samples-$s.tsv" \
        2>&1 >>"$raw/results.txt" | tee "$raw/storm-$s.err" >&2
    cleanup; server_pid=""
done
echo "load_after	$(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw/machine.txt"

"$py" "$script_dir/capacity_report.py" "$raw" "$OUT/$DATE"
echo "capacity: wrote $OUT/$DATE.md $OUT/$DATE.tsv $OUT/$DATE-samples.tsv $OUT/$DATE-storm.svg" >&2
