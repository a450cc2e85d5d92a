#!/usr/bin/env bash
# The relay soak (reliability.md §7b B-22, §7c L-11): builds the relay and perf/src/bin/relay_soak.rs
# in release, runs the soak for SECONDS (default 1200 = 20 min), and writes under docs/soak/:
#   <date>-relay-<label>.tsv   one row per second (relay RSS, fds, CPU, latency p50/p99, replies by
#                              status, lost/duplicated, churn, hostile peers, kills, machine load)
#   <date>-relay-<label>.png   RSS, fds, CPU (and the machine's load average), p50/p99 over time
#   <date>-relay-<label>.md    the summary: figures and the pass criteria's verdict
#
# What the load is and what the criteria are: perf/src/soak.rs (module doc). Extra arguments are
# passed to `relay_soak run` (e.g. --clients 20). The relay's log (warn and above) goes to
# $SOAK_LOG_DIR (default a temporary directory, printed). Exit status: relay_soak's (0 pass,
# 1 a criterion failed, 2 could not run).
#
# usage: scripts/soak.sh [SECONDS] [relay_soak run options...]
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

SECS=${1:-1200}
shift || true
if [[ "$SECS" -eq 1200 ]]; then label=20min
elif (( SECS % 60 == 0 )); then label="$((SECS / 60))min"
else label="${SECS}s"; fi
stamp=$(date -u +%F)
out_dir="$repo_root/docs/soak"
mkdir -p "$out_dir"
base="$out_dir/$stamp-relay-$label"
log_dir=${SOAK_LOG_DIR:-$(mktemp -d /tmp/relay-soak.XXXXXX)}
mkdir -p "$log_dir"

echo "soak: building (cargo build --release -p relay -p zmtp-perf --bin relay --bin relay_soak)" >&2
cargo build --release -p relay -p zmtp-perf --bin relay --bin relay_soak </dev/null >&2
target_dir="$(cargo metadata --format-version 1 --no-deps </dev/null |
    grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d'"' -f4)"
built="${target_dir:-$repo_root/target}/release"
# Run copies, so a rebuild during the run cannot change the ingestors restarted from relay_soak.
bin="$log_dir/bin"
mkdir -p "$bin"
cp "$built/relay" "$built/relay_soak" "$bin/"

# matplotlib for the plot, in the repo's .venv (the one scripts/ensure-pyzmq.sh makes).
PY="$(bash "$script_dir/ensure-pyzmq.sh")"
if ! "$PY" -c 'import matplotlib' </dev/null >/dev/null 2>&1; then
    echo "soak: installing matplotlib into $(dirname "$(dirname "$PY")")" >&2
    "$PY" -m pip install -q matplotlib </dev/null >&2
fi

echo "soak: running $SECS s; samples -> $base.tsv, relay log -> $log_dir/relay.log" >&2
started=$(date -u +"%F %T")
commit=$(git rev-parse --short HEAD)
branch=$(git rev-parse --abbrev-ref HEAD)
dirty=$(git status --porcelain -- relay perf zmtp Cargo.lock | grep -q . && echo " + uncommitted changes" || true)
set +e
"$bin/relay_soak" run --duration "$SECS" --relay-bin "$bin/relay" --tsv "$base.tsv" \
    --summary "$log_dir/summary.md" --relay-log "$log_dir/relay.log" "$@" </dev/null \
    >"$log_dir/stdout.txt" 2> >(tee "$log_dir/stderr.txt" >&2)
rc=$?
set -e
ended=$(date -u +"%F %T")

"$PY" "$script_dir/plot-soak.py" "$base.tsv" "$base.png" \
    "relay soak, $SECS s, $commit$dirty ($started UTC, shared 2-core machine)" || true

verdict=$([[ $rc -eq 0 ]] && echo PASS || echo "FAIL (exit $rc)")
{
    echo "# Relay soak, $SECS s ($stamp)"
    echo
    echo "reliability.md §7b B-22 / §7c L-11. Verdict: **$verdict**."
    echo
    echo "- commit \`$commit\`$dirty (branch \`$branch\`), release build"
    echo "- run $started to $ended UTC on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
    echo "  a machine shared with other jobs: the machine's load average is in the TSV (\`load1\`) and the plot"
    echo "- command: \`scripts/soak.sh $SECS${*:+ $*}\` (driver: \`perf/src/bin/relay_soak.rs\`, \`perf/src/soak.rs\`)"
    echo "- data: [\`$(basename "$base.tsv")\`]($(basename "$base.tsv")), plot:"
    echo
    echo "![soak plot]($(basename "$base.png"))"
    echo
    if [[ -s "$log_dir/summary.md" ]]; then
        cat "$log_dir/summary.md"
    else
        echo "(the driver wrote no summary: see its stderr below)"
    fi
    echo
    echo "Pass criteria (checked by the driver, exit status non-zero on failure): RSS growth after"
    echo "warm-up (mean of the last 10 % of samples against the mean of the 10 % just after the first"
    echo "20 %) at most 10 %; open fds at the end at most max(16, 10 %) above post-warm-up; zero replies"
    echo "lost (none within request_timeout + 13 s) or duplicated, none unexpected or malformed; only OK,"
    echo "TIMEOUT and UNAVAILABLE statuses (the last two expected around ingestor kills); every hostile"
    echo "garbage/bad-greeting peer disconnected by the relay; at least one kill; after each kill of the"
    echo "only EX0: ingestor, EX0: served again within 10 s and before its next kill; every subscriber"
    echo "receiving market data in the last 10 %; the relay alive throughout and exiting 0 on SIGTERM."
    if [[ $rc -ne 0 ]]; then
        echo
        echo "Driver stderr (last lines):"
        echo
        echo '```'
        tail -n 20 "$log_dir/stderr.txt"
        echo '```'
    fi
} >"$base.md"
echo "soak: $verdict; wrote $base.{tsv,png,md}" >&2
exit $rc
