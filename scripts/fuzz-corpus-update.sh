#!/usr/bin/env bash
# Merges new fuzzing finds into the committed corpora (fuzz/corpus/<target>/) and re-minimises them
# with `cargo fuzz cmin`, for developers: run it after local fuzzing (scripts/test-all.sh or
# scripts/fuzz-campaign.sh, or `cargo fuzz run` into a directory of your own), review `git status
# fuzz/corpus`, commit.
#
# Usage: scripts/fuzz-corpus-update.sh [--from DIR]... [TARGET...]
#   TARGET      targets to update (default: every target in fuzz/fuzz_targets/)
#   --from DIR  an extra source of inputs: DIR/<target>/ is merged for each target. Always merged
#               when they exist: fuzz/target/ci-corpus/ (test-all.sh's working copies) and
#               fuzz/target/campaign/corpus/ (scripts/fuzz-campaign.sh's).
#
# The result keeps only inputs that add coverage (libFuzzer -merge=1 into an empty directory), at each
# target's -max_len (scripts/fuzz-common.sh). Seeds (fuzz/seeds/<target>/) stay where they are: CI
# fuzzes from the seeds plus the corpus.
set -euo pipefail
exec </dev/null

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=scripts/fuzz-common.sh
source scripts/fuzz-common.sh

sources=(fuzz/target/ci-corpus fuzz/target/campaign/corpus)
targets=()
while (($# > 0)); do
    case "$1" in
        --from)
            sources+=("${2:?--from needs a directory}")
            shift 2
            ;;
        -h | --help)
            sed -n '2,16p' "$0"
            exit 0
            ;;
        *)
            targets+=("$1")
            shift
            ;;
    esac
done
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(fuzz_targets)
fi

ensure_cargo_fuzz
# `cargo fuzz cmin` builds each target first (a no-op when test-all.sh or the campaign built them).

for t in "${targets[@]}"; do
    if [[ ! -f "fuzz/fuzz_targets/$t.rs" ]]; then
        echo "fuzz-corpus-update: no target '$t' in fuzz/fuzz_targets/" >&2
        exit 2
    fi
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus"
    read -r files_before bytes_before < <(corpus_size "$corpus")
    # Everything into the committed directory first (libFuzzer names its inputs by their SHA-1, so
    # the same input from two sources is one file), then cmin keeps the inputs that add coverage.
    for src in "${sources[@]}"; do
        if [[ -d "$src/$t" ]]; then
            find "$src/$t" -maxdepth 1 -type f -exec cp -n -t "$corpus" {} +
        fi
    done
    read -r files_union bytes_union < <(corpus_size "$corpus")
    log="fuzz/target/cmin-$t.log"
    mkdir -p fuzz/target
    if ! cargo +nightly fuzz cmin "${fuzz_flags[@]}" "$t" "$corpus" -- \
        -max_len="$(max_len_for "$t")" -rss_limit_mb=2048 -timeout=20 >"$log" 2>&1 ||
        grep -q 'Failed to minimize corpus' "$log"; then
        echo "fuzz-corpus-update: cmin failed for $t (log: $log); $corpus holds the unminimised union" >&2
        exit 1
    fi
    read -r files_after bytes_after < <(corpus_size "$corpus")
    printf '%-16s committed %5d files %9d B + new -> union %5d files %9d B -> minimised %5d files %9d B\n' \
        "$t" "$files_before" "$bytes_before" "$files_union" "$bytes_union" "$files_after" "$bytes_after"
done
