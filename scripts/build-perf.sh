#!/usr/bin/env bash
# Builds zmtp's perf tools (perf/, crate zmtp-perf) in release mode and prints the directory that
# holds the nine executables (local_thr remote_thr router_thr dealer_thr local_lat remote_lat proxy
# pub_thr sub_thr) on stdout, and nothing else, so the bench runner can take it as an implementation:
#
#     bench/run.sh libzmq zmtp=$(/path/to/repo/scripts/build-perf.sh)
#
# Build progress goes to stderr. Non-interactive; works from any directory. Honours
# CARGO_TARGET_DIR (and any target-dir cargo is configured with).
#
# BUILD_PROFILE=profiling builds the same optimised code with line tables (the `profiling` profile:
# release builds carry no debug info) and prints target/profiling, for perf record and the like.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

profile=${BUILD_PROFILE:-release}
cargo build --profile "$profile" -p zmtp-perf </dev/null >&2

target_dir="$(cargo metadata --format-version 1 --no-deps </dev/null |
    grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d'"' -f4)"
dir="${target_dir:-$repo_root/target}/$profile"

for tool in local_thr remote_thr router_thr dealer_thr local_lat remote_lat proxy pub_thr sub_thr; do
    if [[ ! -x "$dir/$tool" ]]; then
        echo "build-perf: $dir/$tool was not built" >&2
        exit 1
    fi
done
printf '%s\n' "$dir"
