#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit/golden/property/interop tests, and a short
# fuzzing run of every target in fuzz/fuzz_targets/. Non-interactive; works from any directory.
#
# Environment:
#   FUZZ_SECONDS  seconds of fuzzing per target (default 30; 0 skips fuzzing)
#   ZMTP_PYTHON   python with pyzmq for the interop tests (default: the .venv made by
#                 scripts/ensure-pyzmq.sh)
#
# Installs when missing: pyzmq into .venv, iptables, prometheus, redis-server and redis-tools,
# docker.io and docker-compose (apt-get, as root, with one `apt-get update` for all of them; the last
# two for scripts/check-docker.sh), the rust target x86_64-unknown-linux-musl, cargo-fuzz (cargo
# install; the version pinned in scripts/fuzz-common.sh, replacing another installed version), the
# nightly toolchain (rustup).
set -euo pipefail

export CI=true
exec </dev/null

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export PATH="$HOME/.cargo/bin:$PATH"

FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
if ! [[ "$FUZZ_SECONDS" =~ ^[0-9]+$ ]]; then
    echo "test-all: FUZZ_SECONDS must be a whole number of seconds, got '$FUZZ_SECONDS'" >&2
    exit 2
fi

started=$SECONDS
section() {
    printf '\n==== %s (t+%ss) ====\n' "$*" "$((SECONDS - started))"
}

section "1/4 pyzmq (reference peer for the interop tests)"
ZMTP_PYTHON="$(scripts/ensure-pyzmq.sh)"
export ZMTP_PYTHON
echo "ZMTP_PYTHON=$ZMTP_PYTHON"

# System packages come from apt-get, as root only. `apt-get update` runs once, before the first
# install of this run (and not at all when nothing is missing); scripts/check-docker.sh is told, through
# ZMTP_APT_UPDATED, that it need not run it again.
can_apt() { [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; }
apt_updated=""
apt_install() { # PACKAGE...: installs them; non-zero when it cannot (or when the one update failed)
    can_apt || return 1
    if [[ -z "$apt_updated" ]]; then
        if apt-get update -qq; then
            apt_updated=ok
            export ZMTP_APT_UPDATED=1
        else
            apt_updated=failed
        fi
    fi
    [[ "$apt_updated" == ok ]] || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# The network-fault tests (zmtp/tests/faults_netns.rs) drop packets with iptables inside the network
# namespaces they create (without it they take the link down instead, and say so).
if ! command -v iptables >/dev/null 2>&1 && can_apt; then
    echo "test-all: installing iptables"
    if ! apt_install iptables; then
        echo "test-all: could not install iptables; faults_netns.rs will take links down instead"
    fi
fi

# relay/tests/e2e_ops.rs has a real Prometheus scrape the relay (Debian's package, run directly; without
# it that test installs it itself, or says SKIPPED).
if [[ ! -x /usr/bin/prometheus ]] && can_apt; then
    echo "test-all: installing prometheus"
    if ! apt_install prometheus; then
        echo "test-all: could not install prometheus; e2e_ops.rs will skip its Prometheus test"
    fi
fi

# The statetable tests write through to a real Redis: each starts Debian's redis-server itself on a
# free loopback port (statetable/tests/common/mod.rs); the benchmark compares with redis-benchmark
# (redis-tools, with redis-cli).
if { [[ ! -x /usr/bin/redis-server ]] || [[ ! -x /usr/bin/redis-benchmark ]]; } && can_apt; then
    echo "test-all: installing redis-server and redis-tools"
    if ! apt_install redis-server redis-tools; then
        echo "test-all: could not install redis-server; the statetable tests that need it will fail and say so"
    fi
fi

section "2/4 cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings

section "3/4 cargo test --workspace (unit, golden, property, sockets, examples, interop, relay end to end); static binaries"
# The idle-connections test holds 2 x 1,000 descriptors in one process: raise the soft limit as far as
# the hard limit allows (it says what it needs if that is still too low).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 4096 2>/dev/null || true
cargo test --workspace

# The relay's static binaries (musl), when that target is installed; a skip message otherwise.
scripts/check-static.sh
# The container image built from those binaries and run for real (a request through the published
# port, the health check, docker stop), and deploy/docker-compose.yml validated; SKIPPED with the
# reason where no docker daemon can run.
scripts/check-docker.sh

if [[ "$FUZZ_SECONDS" == 0 ]]; then
    section "4/4 fuzzing skipped (FUZZ_SECONDS=0)"
    echo "test-all: all steps passed (fuzzing skipped)"
    exit 0
fi

section "4/4 fuzzing: ${FUZZ_SECONDS}s per target"
# The pinned cargo-fuzz (scripts/fuzz-common.sh), the build flags, the targets and their -max_len.
# shellcheck source=scripts/fuzz-common.sh
source scripts/fuzz-common.sh
ensure_cargo_fuzz
cargo fuzz --version

mapfile -t targets < <(fuzz_targets)
echo "targets: ${targets[*]}"

# Built once up front (release, debug assertions, AddressSanitizer), so the time below is fuzzing.
cargo +nightly fuzz build "${fuzz_flags[@]}"

# Each target starts from the committed, minimised corpus (fuzz/corpus/<target>/, grown by
# scripts/fuzz-campaign.sh and scripts/fuzz-corpus-update.sh), so the coverage reached by earlier
# campaigns is where every CI run begins. libFuzzer writes its new inputs into the first directory:
# a copy under fuzz/target/, so that a run never changes the repository; the seeds (and
# fuzz/regressions/<target>/) are read in place.
# A crash leaves its input in fuzz/artifacts/<target>/.
log_dir="fuzz/target/test-all-logs"
ci_corpus="fuzz/target/ci-corpus"
mkdir -p "$log_dir"
failed=()
passed=0
summary=()
for t in "${targets[@]}"; do
    echo
    echo "---- fuzz target: $t ----"
    corpus="$ci_corpus/$t"
    rm -rf "$corpus"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    if [[ -d "fuzz/corpus/$t" ]]; then
        find "fuzz/corpus/$t" -maxdepth 1 -type f -exec cp -t "$corpus" {} +
    fi
    read -r committed_files _ < <(corpus_size "$corpus")
    dirs=("$corpus")
    # Seeds, and inputs that once crashed the target (replayed first thing: libFuzzer runs every
    # corpus input before it mutates).
    for d in "fuzz/seeds/$t" "fuzz/regressions/$t"; do
        if [[ -d "$d" ]]; then
            dirs+=("$d")
        fi
    done
    log="$log_dir/$t.log"
    if cargo +nightly fuzz run "${fuzz_flags[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len="$(max_len_for "$t")" \
        -timeout=20 -print_final_stats=1 >"$log" 2>&1; then
        passed=$((passed + 1))
    else
        failed+=("$t")
        echo "FAILED: $t (full log: $log). Crash report:"
        grep -n -m1 -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY' "$log" || true
        awk '/panicked at|==ERROR|ERROR: libFuzzer/{p=1} p{print; if (++n >= 40) exit}' "$log"
        grep -E 'Test unit written to|^Base64:' "$log" || true
        for a in $(grep -oE 'Test unit written to \S+' "$log" | awk '{print $5}'); do
            if [[ -f "$a" ]] && [[ "$(wc -c <"$a")" -le 4096 ]]; then
                echo "input (hex): $(od -An -v -tx1 "$a" | tr -d ' \n')"
            fi
        done
        echo "reproduce: cargo +nightly fuzz run ${fuzz_flags[*]} $t <artifact above>"
    fi
    # libFuzzer's closing lines: '#N DONE cov: ... exec/s: ...' and 'Done N runs in S second(s)'.
    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "$log" || true
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n1 || true)"
    read -r now_files _ < <(corpus_size "$corpus")
    summary+=("$(printf '%-16s %s (corpus %d + %d new)' "$t" "${done_line:-no DONE line (crashed or did not start)}" \
        "$committed_files" "$((now_files - committed_files))")")
done

section "fuzzing summary"
printf '%s\n' "${summary[@]}"
echo "fuzz: ${passed} passed, ${#failed[@]} failed"
echo "fuzz: new inputs are in $ci_corpus/<target>/; scripts/fuzz-corpus-update.sh merges them into fuzz/corpus/"
if ((${#failed[@]} > 0)); then
    echo "test-all: fuzz targets failed: ${failed[*]} (artifacts in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "test-all: all steps passed in $((SECONDS - started))s"
