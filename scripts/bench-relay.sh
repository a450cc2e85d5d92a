#!/usr/bin/env bash
# Benchmarks the relay against the pyzmq reference relay (tests/peers/reference_relay.py) with
# relay_load (perf/src/bin/relay_load.rs) and prints a markdown table, both side by side.
#
# Scenarios, each against a freshly started relay:
#   (a) 50 clients (closed loop, window 1), 3 ingestors (distinct prefixes): max requests/s, latency
#   (b) a fixed rate of half of (a)'s requests/s (that implementation's own): p50/p99/p99.9
#   (c) 100,000 requests pending at a silent ingestor (request_timeout_secs = 3600,
#       max_pending_requests = P + 10,000): relay RSS, then round-trip latency on another prefix
#   (d) market-data fan-out, 1 upstream PUB to 10 subscribers: msg/s to the slowest and fastest
#       subscriber, loss
#
# Builds `cargo build --release -p relay -p zmtp-perf` first (relay_load alone if the relay does not
# build). Our relay runs from
# target/release/relay with a temporary config (CONFIG_PATH) and RUST_LOG=relay=warn (the
# contract's per-request info lines would otherwise be what is measured; BENCH_RUST_LOG overrides);
# the reference logs at warn too (it logs per request only with -v). If target/release/relay
# cannot run (`--help` fails), only the reference is measured.
#
# Environment (all optional):
#   BENCH_IMPLS="ours reference"  implementations to run
#   BENCH_PORT_BASE=35550         ports base+9 clients, +5 work, +6 responses, +8 market data,
#                                 +7 upstream (kept off the defaults, which tests may be using)
#   BENCH_WARMUP=1 BENCH_DURATION=5   seconds per load scenario
#   BENCH_PENDING=100000          requests left pending in (c)
#   BENCH_FANOUT_SUBS=10          subscribers in (d)
#   BENCH_RUST_LOG=relay=warn     RUST_LOG for our relay
#   BENCH_RT=current|multi        runtime of relay_load (default current-thread: one core)
#   BENCH_SCENARIOS="a b c d"     scenarios to run (b needs a)
#   BENCH_RELAY_BIN=PATH          our relay binary (default target/release/relay), e.g. a musl
#                                 build: target/x86_64-unknown-linux-musl/release/relay
#   BENCH_ADMIN=""                our relay's admin_address (default "": the admin endpoint and
#                                 its metrics are off; e.g. 127.0.0.1:35554 turns them on)
#   BENCH_SCRAPE=0                with BENCH_ADMIN set, 1 scrapes /metrics every second (curl) as
#                                 Prometheus would
#
# Raw RESULT lines and relay logs go to $BENCH_OUT (default a temporary directory, printed).
# Exit status: 0 when every scenario ran, 1 when one failed (the table shows "fail").
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

IMPLS=${BENCH_IMPLS:-"ours reference"}
BASE=${BENCH_PORT_BASE:-35550}
WARMUP=${BENCH_WARMUP:-1}
DURATION=${BENCH_DURATION:-5}
PENDING=${BENCH_PENDING:-100000}
SUBS=${BENCH_FANOUT_SUBS:-10}
RUST_LOG_BENCH=${BENCH_RUST_LOG:-relay=warn}
ADMIN=${BENCH_ADMIN:-}
SCENARIOS=${BENCH_SCENARIOS:-"a b c d"}
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
SCRAPE=${BENCH_SCRAPE:-0}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/bench-relay.XXXXXX)}
mkdir -p "$OUT"

CLIENT_PORT=$((BASE + 9))
WORK_PORT=$((BASE + 5))
RESPONSE_PORT=$((BASE + 6))
UPSTREAM_PORT=$((BASE + 7))
MD_PORT=$((BASE + 8))
UPSTREAM="tcp://127.0.0.1:$UPSTREAM_PORT"

echo "bench-relay: building (cargo build --release -p relay -p zmtp-perf)" >&2
if ! cargo build --release -p relay -p zmtp-perf </dev/null >&2; then
    # The relay may be mid-change: still measure the reference with a fresh relay_load.
    echo "bench-relay: the relay does not build; building relay_load alone" >&2
    cargo build --release -p zmtp-perf --bin relay_load </dev/null >&2
fi
target_dir="$(cargo metadata --format-version 1 --no-deps </dev/null |
    grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d'"' -f4)"
bin="${target_dir:-$repo_root/target}/release"
LOAD="$bin/relay_load"
RELAY_BIN=${BENCH_RELAY_BIN:-$bin/relay}
PY="$(bash "$script_dir/ensure-pyzmq.sh")"

if [[ " $IMPLS " == *" ours "* ]] && ! timeout 5 "$RELAY_BIN" --help </dev/null >/dev/null 2>&1; then
    echo "bench-relay: $RELAY_BIN --help fails: measuring the reference only" >&2
    IMPLS=${IMPLS//ours/}
fi

relay_pid=""
scrape_pid=""
cleanup() {
    if [[ -n "$scrape_pid" ]]; then
        kill "$scrape_pid" 2>/dev/null || true
    fi
    if [[ -n "$relay_pid" ]]; then
        kill -TERM "$relay_pid" 2>/dev/null || true
        wait "$relay_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# Readiness is the client port accepting a connection (our relay logs that probe as a `peer
# disconnected` warning: it closes before the handshake; harmless).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_relay IMPL NAME TIMEOUT_SECS MAX_PENDING [HWM]: starts a relay in the background, sets
# relay_pid. HWM (default 10000, the relay's default) is the per-peer queue limit.
start_relay() {
    local impl=$1 name=$2 timeout_secs=$3 max_pending=$4 hwm=${5:-10000}
    for p in $CLIENT_PORT $WORK_PORT $RESPONSE_PORT $MD_PORT $UPSTREAM_PORT; do
        if port_open "$p"; then
            echo "bench-relay: port $p is already in use (set BENCH_PORT_BASE)" >&2
            return 1
        fi
    done
    local log="$OUT/$impl-$name.log"
    case $impl in
    ours)
        local cfg="$OUT/$impl-$name.toml"
        cat >"$cfg" <<EOF
bind_address = "tcp://127.0.0.1"
client_request_port = $CLIENT_PORT
ingestor_work_port = $WORK_PORT
ingestor_response_port = $RESPONSE_PORT
market_data_pub_port = $MD_PORT
flink_market_data_endpoint = "$UPSTREAM"
request_timeout_secs = $timeout_secs
max_pending_requests = $max_pending
high_water_mark = $hwm
admin_address = "$ADMIN"
EOF
        CONFIG_PATH="$cfg" RUST_LOG="$RUST_LOG_BENCH" "$RELAY_BIN" </dev/null 2>"$log" &
        ;;
    reference)
        "$PY" tests/peers/reference_relay.py --bind-address tcp://127.0.0.1 \
            --client-port "$CLIENT_PORT" --work-port "$WORK_PORT" --response-port "$RESPONSE_PORT" \
            --md-port "$MD_PORT" --upstream "$UPSTREAM" --request-timeout "$timeout_secs" \
            --max-pending "$max_pending" --hwm "$hwm" </dev/null 2>"$log" &
        ;;
    *)
        echo "bench-relay: unknown implementation $impl" >&2
        return 1
        ;;
    esac
    relay_pid=$!
    for _ in $(seq 100); do
        if port_open "$CLIENT_PORT"; then
            if [[ $impl == ours && -n "$ADMIN" && "$SCRAPE" == 1 ]]; then
                (while sleep 1; do curl -sf -o /dev/null "http://$ADMIN/metrics" || true; done) &
                scrape_pid=$!
            fi
            return 0
        fi
        if ! kill -0 "$relay_pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "bench-relay: $impl relay did not start; its log ($log):" >&2
    tail -n 20 "$log" >&2 || true
    relay_pid=""
    return 1
}

stop_relay() {
    if [[ -n "$scrape_pid" ]]; then
        kill "$scrape_pid" 2>/dev/null || true
        wait "$scrape_pid" 2>/dev/null || true
        scrape_pid=""
    fi
    if [[ -n "$relay_pid" ]]; then
        kill -TERM "$relay_pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$relay_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$relay_pid" 2>/dev/null || true
        wait "$relay_pid" 2>/dev/null || true
        relay_pid=""
    fi
}

# load IMPL NAME ARGS...: runs relay_load against the running relay; its RESULT line goes to
# $OUT/IMPL-NAME.result (empty on failure).
load() {
    local impl=$1 name=$2
    shift 2
    local out="$OUT/$impl-$name.out"
    local rc=0
    timeout 300 "$LOAD" --client-port "$CLIENT_PORT" --work-port "$WORK_PORT" \
        --response-port "$RESPONSE_PORT" --md-port "$MD_PORT" --upstream "$UPSTREAM" \
        --relay-pid "$relay_pid" --label "$impl" "$@" </dev/null >"$out" 2>&1 || rc=$?
    grep -v '^RESULT' "$out" | sed "s/^/  [$impl $name] /" >&2 || true
    if [[ $rc -ne 0 ]]; then
        echo "bench-relay: $impl $name: relay_load exited $rc" >&2
        : >"$OUT/$impl-$name.result"
        return 1
    fi
    grep '^RESULT' "$out" >"$OUT/$impl-$name.result" || true
}

# get IMPL NAME KEY: a value of a RESULT line, or "fail".
get() {
    local line
    line=$(cat "$OUT/$1-$2.result" 2>/dev/null || true)
    local v
    v=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n "s/^$3=//p" | head -n 1)
    printf '%s' "${v:-fail}"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
failed=0
run_scenario() { # IMPL NAME TIMEOUT MAX_PENDING LOAD-ARGS...
    local impl=$1 name=$2 timeout_secs=$3 max_pending=$4
    shift 4
    echo "bench-relay: $impl: scenario $name" >&2
    if start_relay "$impl" "$name" "$timeout_secs" "$max_pending" "${RUN_HWM:-10000}"; then
        load "$impl" "$name" "$@" || failed=1
    else
        : >"$OUT/$impl-$name.result"
        failed=1
    fi
    stop_relay
}

for impl in $IMPLS; do
    run_scenario "$impl" a 30 100000 requests --clients 50 --ingestors 3 \
        --warmup "$WARMUP" --duration "$DURATION"
    rps=$(get "$impl" a rps)
    if ! want b; then
        echo "skipped" >"$OUT/$impl-half-rate"
        : >"$OUT/$impl-b.result"
    elif [[ "$rps" =~ ^[0-9]+$ && "$rps" -gt 1 ]]; then
        echo "$((rps / 2))" >"$OUT/$impl-half-rate"
        run_scenario "$impl" b 30 100000 requests --clients 50 --ingestors 3 --rate "$((rps / 2))" \
            --warmup "$WARMUP" --duration "$DURATION"
    else
        echo "fail" >"$OUT/$impl-half-rate"
        : >"$OUT/$impl-b.result"
        failed=1
    fi
    # Queues as deep as the requests left pending: the silent ingestor reads more slowly than the
    # relay forwards, and with the default HWM its work messages would be dropped (PUB semantics).
    if want c; then
        RUN_HWM=$((PENDING + 10000)) run_scenario "$impl" c 3600 $((PENDING + 10000)) pending --count "$PENDING"
    fi
    if want d; then
        run_scenario "$impl" d 30 100000 fanout --subscribers "$SUBS" --duration "$DURATION"
    fi
done

mib() { # KiB -> MiB with one decimal, or the input
    if [[ "$1" =~ ^[0-9]+$ ]]; then awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; else printf '%s' "$1"; fi
}

row() { # LABEL then one value per implementation (a command evaluated per impl)
    local label=$1 expr=$2
    local line="| $label |"
    for impl in $IMPLS; do
        line+=" $(eval "$expr") |"
    done
    echo "$line"
}

header="| scenario / metric |"
sep="|---|"
for impl in $IMPLS; do
    case $impl in
    ours) header+=" relay (zmtp) |" ;;
    reference) header+=" reference (pyzmq) |" ;;
    *) header+=" $impl |" ;;
    esac
    sep+="---|"
done

echo
echo "Relay benchmark: $(nproc) cores (load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end),"
echo "$DURATION s measured after $WARMUP s warm-up per load scenario; raw results in $OUT"
echo
echo "$header"
echo "$sep"
row "**(a)** 50 clients, 3 ingestors, closed loop: requests/s" 'get $impl a rps'
row "(a) latency p50 / p99 / p99.9 (µs)" 'echo "$(get $impl a p50_us) / $(get $impl a p99_us) / $(get $impl a p999_us)"'
row "(a) replies not OK / missing" 'echo "$(get $impl a not_ok) / $(get $impl a missing)"'
row "(a) relay CPU (% of a core) / load tool CPU" 'echo "$(get $impl a relay_cpu_pct) / $(get $impl a tool_cpu_pct)"'
row "(a) relay RSS at end / peak (MiB)" 'echo "$(mib "$(get $impl a rss_kb)") / $(mib "$(get $impl a hwm_kb)")"'
row "**(b)** fixed rate, half of (a) (req/s)" 'cat "$OUT/$impl-half-rate"'
row "(b) achieved requests/s" 'get $impl b rps'
row "(b) latency p50 / p99 / p99.9 (µs)" 'echo "$(get $impl b p50_us) / $(get $impl b p99_us) / $(get $impl b p999_us)"'
row "(b) relay CPU (% of a core)" 'get $impl b relay_cpu_pct'
row "**(c)** $PENDING pending: forwarded / fill time (s)" 'echo "$(get $impl c forwarded) / $(get $impl c fill_s)"'
row "(c) relay RSS with them pending (MiB)" 'mib "$(get $impl c pending_rss_kb)"'
row "(c) round trip meanwhile p50 / p99 / p99.9 (µs)" 'echo "$(get $impl c p50_us) / $(get $impl c p99_us) / $(get $impl c p999_us)"'
row "**(d)** fan-out to $SUBS subscribers: published msg/s" 'get $impl d pub_msgs_per_s'
row "(d) delivered msg/s, slowest / fastest subscriber" 'echo "$(get $impl d slowest_msgs_per_s) / $(get $impl d fastest_msgs_per_s)"'
row "(d) loss (%)" 'get $impl d loss_pct'
row "(d) relay CPU / load tool CPU (% of a core)" 'echo "$(get $impl d relay_cpu_pct) / $(get $impl d tool_cpu_pct)"'
exit "$failed"
