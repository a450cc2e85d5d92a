#!/usr/bin/env bash
# A fuzzing campaign: every target in fuzz/fuzz_targets/ fuzzed from its committed corpus
# (fuzz/corpus/<target>/) plus its seeds (fuzz/seeds/<target>/), in round-robin slices, the finds merged
# back into the committed corpus and re-minimised after each slice (scripts/fuzz-corpus-update.sh).
# Meant to run for hours at low priority (nice 19) on an otherwise idle machine, across several
# sessions: every slice appends a row to docs/fuzz/campaign.tsv, each round goes to the targets with
# the fewest CPU-seconds so far, and a target stops getting slices once it has CAMPAIGN_GOAL
# CPU-seconds in total. The summary (docs/fuzz/campaign-<date>.md) is rewritten after every slice.
#
# Usage: scripts/fuzz-campaign.sh [SECONDS_PER_TARGET] [JOBS]
#   SECONDS_PER_TARGET  wall-clock seconds of one slice (default 600)
#   JOBS                targets fuzzed at the same time, one process each (default 1)
# Environment:
#   CAMPAIGN_UNTIL    stop time, anything `date -d` reads ("19:10 UTC"); slices are shortened so that
#                     a round fits and none runs past it; no new slice starts after it
#   CAMPAIGN_GOAL     CPU-seconds per target to reach (default 3600, one CPU-hour)
#   CAMPAIGN_ROUNDS   at most this many rounds (default: until the goal or CAMPAIGN_UNTIL)
#   CAMPAIGN_TARGETS  targets to fuzz, space-separated (default: all)
#   CAMPAIGN_NICE     niceness of the fuzzers (default 19)
# Stopping early: `touch fuzz/target/campaign/STOP` (no new slice starts; the running ones finish), or
# `kill -INT <pid in fuzz/target/campaign/running/<target>.pid>` to end a slice now (libFuzzer prints
# its final statistics on SIGINT; the slice is recorded and merged as "interrupted").
# Crashes: the input is in fuzz/artifacts/<target>/ (its path is in the TSV and the summary); the
# campaign carries on with the other targets and the next rounds.
set -euo pipefail
exec </dev/null

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=scripts/fuzz-common.sh
source scripts/fuzz-common.sh

slice_max="${1:-600}"
jobs_max="${2:-1}"
goal="${CAMPAIGN_GOAL:-3600}"
rounds_max="${CAMPAIGN_ROUNDS:-0}"
niceness="${CAMPAIGN_NICE:-19}"
for v in "$slice_max" "$jobs_max" "$goal" "$rounds_max" "$niceness"; do
    if ! [[ "$v" =~ ^[0-9]+$ ]]; then
        echo "fuzz-campaign: whole numbers expected, got '$v'" >&2
        exit 2
    fi
done
((jobs_max >= 1)) || jobs_max=1
deadline=0
if [[ -n "${CAMPAIGN_UNTIL:-}" ]]; then
    deadline="$(date -d "$CAMPAIGN_UNTIL" +%s)"
fi
if [[ -n "${CAMPAIGN_TARGETS:-}" ]]; then
    read -r -a all_targets <<<"$CAMPAIGN_TARGETS"
else
    mapfile -t all_targets < <(fuzz_targets)
fi

work="fuzz/target/campaign"
tsv="docs/fuzz/campaign.tsv"
session="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
mkdir -p "$work/corpus" "$work/logs" "$work/running" docs/fuzz
rm -f "$work/STOP"
tsv_header="session	finished_utc	target	slice_s	fuzz_s	user_s	sys_s	execs	exec_per_s	cov_start	ft_start	cov	ft	new_units	peak_rss_mb	corpus_files_before	corpus_bytes_before	corpus_files_after	corpus_bytes_after	result	artifact"
if [[ ! -s "$tsv" ]]; then
    echo "$tsv_header" >"$tsv"
fi

# Per-slice seconds set aside for the merge and minimisation after it (measured: a few seconds for
# the small targets, up to about a minute for the CURVE ones on a loaded machine).
merge_allowance=60
min_slice=60

# CPU-seconds (user + system) each target has had so far, over every session in the TSV.
cpu_so_far() {
    awk -F'\t' -v t="$1" 'NR > 1 && $3 == t {s += $6 + $7} END {printf "%d\n", s}' "$tsv"
}

# The report: per target totals over every session, then every slice.
write_report() {
    local report
    report="docs/fuzz/campaign-$(date -u +%F).md"
    {
        echo "# Fuzzing campaign: $(date -u +%F)"
        echo
        echo "Written by scripts/fuzz-campaign.sh from docs/fuzz/campaign.tsv (every slice of every"
        echo "session; last update $(date -u +%FT%TZ)). Goal: ${goal} CPU-seconds per target. CPU-s is"
        echo "user + system time of the fuzzer process (/usr/bin/time); fuzz-s is the time libFuzzer"
        echo "reports ('Done N runs in S second(s)', wall clock at nice ${niceness} on a shared 2-core"
        echo "machine, so it exceeds CPU-s when other work had the CPU). Execs and exec/s are libFuzzer's"
        echo "(stat::number_of_executed_units; exec/s = execs / fuzz-s). cov and ft are those of the last"
        echo "slice (libFuzzer's final status line: edges and features covered by the corpus and that"
        echo "slice's finds). Corpus: the committed, minimised fuzz/corpus/<target>/ now."
        echo
        echo "| target | slices | CPU-s | of goal | fuzz-s | execs | exec/s | cov | ft | corpus files | corpus bytes | findings |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        local t files bytes
        for t in $(fuzz_targets); do
            read -r files bytes < <(corpus_size "fuzz/corpus/$t")
            awk -F'\t' -v t="$t" -v goal="$goal" -v files="$files" -v bytes="$bytes" '
                NR > 1 && $3 == t {
                    n++; cpu += $6 + $7; fz += $5; ex += $8; cov = $12; ft = $13
                    if ($20 != "ok" && $20 != "interrupted") { bad++; f = f sprintf("%s%s: %s", (bad > 1 ? "; " : ""), $20, $21) }
                }
                END {
                    if (n == 0) { printf "| %s | 0 | 0 | 0%% | 0 | 0 | - | - | - | %d | %d | not fuzzed yet |\n", t, files, bytes; exit }
                    printf "| %s | %d | %d | %d%% | %d | %d | %d | %s | %s | %d | %d | %s |\n",
                        t, n, cpu, 100 * cpu / goal, fz, ex, (fz > 0 ? ex / fz : 0), cov, ft, files, bytes,
                        (bad ? f : "none")
                }' "$tsv"
        done
        echo
        echo "## Slices"
        echo
        echo "| session | finished | target | slice-s | fuzz-s | CPU-s | execs | exec/s | cov start -> end | ft start -> end | new units | corpus files before -> after | corpus bytes before -> after | result |"
        echo "|---|---|---|---:|---:|---:|---:|---:|---|---|---:|---|---|---|"
        awk -F'\t' 'NR > 1 {
            printf "| %s | %s | %s | %s | %s | %.0f | %s | %s | %s -> %s | %s -> %s | %s | %s -> %s | %s -> %s | %s%s |\n",
                $1, $2, $3, $4, $5, $6 + $7, $8, $9, $10, $12, $11, $13, $14, $16, $18, $17, $19, $20,
                ($21 != "-" ? " (" $21 ")" : "")
        }' "$tsv"
    } >"$report.tmp"
    mv "$report.tmp" "$report"
}

# One slice of one target: fuzz from a fresh copy of the committed corpus (new inputs land in the copy;
# the seeds are read from their own directory), merge the copy back, append the TSV row.
run_slice() {
    local t="$1" secs="$2"
    local bin="$fuzz_bin_dir/$t" corpus="fuzz/corpus/$t" wc="$work/corpus/$t"
    local stamp log timef
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    log="$work/logs/$t-$stamp.log"
    timef="$work/logs/$t-$stamp.time"
    rm -rf "$wc"
    mkdir -p "$wc" "$corpus" "fuzz/artifacts/$t"
    find "$corpus" -maxdepth 1 -type f -exec cp -t "$wc" {} +
    local dirs=("$wc")
    [[ -d "fuzz/seeds/$t" ]] && dirs+=("fuzz/seeds/$t")
    local files_before bytes_before
    read -r files_before bytes_before < <(corpus_size "$corpus")

    local rc=0
    /usr/bin/time -f '%U %S %e' -o "$timef" nice -n "$niceness" "$bin" \
        -artifact_prefix="fuzz/artifacts/$t/" -max_total_time="$secs" -max_len="$(max_len_for "$t")" \
        -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 "${dirs[@]}" >"$log" 2>&1 &
    local pid=$!
    # The fuzzer's pid (the child of nice/time), for `kill -INT`.
    sleep 1
    pgrep -P "$pid" >"$work/running/$t.pid" 2>/dev/null || echo "$pid" >"$work/running/$t.pid"
    wait "$pid" || rc=$?
    rm -f "$work/running/$t.pid"

    local user_s sys_s
    read -r user_s sys_s _ < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+$' "$timef" | tail -n1 || echo "0 0 0")
    user_s="${user_s:-0}"
    sys_s="${sys_s:-0}"
    local fuzz_s execs eps new_units rss cov ft cov0 ft0 status_line inited
    fuzz_s="$(grep -oE '^Done [0-9]+ runs in [0-9]+ second' "$log" | awk '{print $5}' | tail -n1 || true)"
    execs="$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log" | tail -n1)"
    new_units="$(awk '/^stat::new_units_added:/ {print $2}' "$log" | tail -n1)"
    rss="$(awk '/^stat::peak_rss_mb:/ {print $2}' "$log" | tail -n1)"
    # The last status line ('#N DONE cov: X ft: Y corp: ...', or the last '#N NEW/REDUCE/pulse ...'
    # before a crash) and the one after loading the corpus ('#N INITED cov: ...').
    status_line="$(grep -E '^#[0-9]+[[:space:]].*cov: [0-9]+' "$log" | tail -n1 || true)"
    inited="$(grep -E '^#[0-9]+[[:space:]]+INITED.*cov: [0-9]+' "$log" | tail -n1 || true)"
    cov="$(grep -oE 'cov: [0-9]+' <<<"$status_line" | awk '{print $2}' || true)"
    ft="$(grep -oE 'ft: [0-9]+' <<<"$status_line" | awk '{print $2}' || true)"
    cov0="$(grep -oE 'cov: [0-9]+' <<<"$inited" | awk '{print $2}' || true)"
    ft0="$(grep -oE 'ft: [0-9]+' <<<"$inited" | awk '{print $2}' || true)"
    if [[ -z "$fuzz_s" ]]; then
        # No 'Done' line (a crash): libFuzzer's own clock is not printed; the elapsed time is.
        fuzz_s="$(awk '{printf "%d\n", $3}' <<<"$(tail -n1 "$timef")" 2>/dev/null || echo 0)"
    fi
    execs="${execs:-0}"
    eps=0
    if [[ "${fuzz_s:-0}" -gt 0 ]]; then
        eps=$((execs / fuzz_s))
    fi

    local result="ok" artifact="-"
    if ((rc != 0)); then
        if grep -q 'run interrupted' "$log"; then
            result="interrupted"
        elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then
            result="timeout"
        elif grep -q 'out-of-memory' "$log"; then
            result="oom"
        elif grep -q 'ERROR: LeakSanitizer' "$log"; then
            result="leak"
        else
            result="crash"
        fi
        if [[ "$result" != "interrupted" ]]; then
            artifact="$(grep -oE 'Test unit written to \S+' "$log" | awk '{print $5}' | tail -n1 || true)"
            artifact="${artifact:-none written (log: $log)}"
            echo "fuzz-campaign: $t: $result, input $artifact, log $log" >&2
        fi
    fi

    # Merge the finds back and re-minimise (only this target's working copy is a source here).
    nice -n "$niceness" scripts/fuzz-corpus-update.sh "$t" >>"$work/logs/merge.log" 2>&1 ||
        echo "fuzz-campaign: $t: merging the corpus failed (see $work/logs/merge.log)" >&2
    local files_after bytes_after
    read -r files_after bytes_after < <(corpus_size "$corpus")

    local row
    row="$(printf '%s\t' "$session" "$(date -u +%FT%TZ)" "$t" "$secs" "${fuzz_s:-0}" "$user_s" "$sys_s" \
        "$execs" "$eps" "${cov0:--}" "${ft0:--}" "${cov:--}" "${ft:--}" "${new_units:-0}" "${rss:-0}" \
        "$files_before" "$bytes_before" "$files_after" "$bytes_after" "$result")$artifact"
    (
        flock 9
        echo "$row" >>"$tsv"
        write_report
    ) 9>"$work/tsv.lock"
    printf 'fuzz-campaign: %-16s %4ss slice: %s execs, cov %s ft %s, CPU %s+%s s, corpus %s -> %s files, %s\n' \
        "$t" "$secs" "$execs" "${cov:--}" "${ft:--}" "$user_s" "$sys_s" "$files_before" "$files_after" "$result"
}

# All of the run in one function, parsed whole before it starts: editing this file while a campaign
# runs (it runs for hours) cannot change the running one.
main() {
    ensure_cargo_fuzz
    echo "fuzz-campaign: building the targets"
    cargo +nightly fuzz build "${fuzz_flags[@]}"

    echo "fuzz-campaign: session $session, slices of up to ${slice_max}s, ${jobs_max} at a time, goal ${goal} CPU-s per target${CAMPAIGN_UNTIL:+, until $(date -u -d "@$deadline" +%FT%TZ)}"
    round=0
    while :; do
        round=$((round + 1))
        if ((rounds_max > 0 && round > rounds_max)); then
            echo "fuzz-campaign: ${rounds_max} round(s) done"
            break
        fi
        # This round: the targets still short of the goal, fewest CPU-seconds first.
        mapfile -t todo < <(for t in "${all_targets[@]}"; do
            c="$(cpu_so_far "$t")"
            ((c < goal)) && echo "$c $t"
        done | sort -n -k1,1 | awk '{print $2}')
        if ((${#todo[@]} == 0)); then
            echo "fuzz-campaign: every target has ${goal} CPU-seconds"
            break
        fi
        # Equal slices for every target of the round; shorter ones when the deadline would cut the round.
        slice="$slice_max"
        if ((deadline > 0)); then
            waves=$(((${#todo[@]} + jobs_max - 1) / jobs_max))
            fit=$(((deadline - $(date +%s)) / waves - merge_allowance))
            ((fit < slice)) && slice="$fit"
            if ((slice < min_slice)); then
                echo "fuzz-campaign: no time for another round of ${#todo[@]} target(s) before the deadline"
                break
            fi
        fi
        echo "fuzz-campaign: round $round: ${#todo[@]} target(s), ${slice}s each: ${todo[*]}"
        for t in "${todo[@]}"; do
            if [[ -e "$work/STOP" ]]; then
                break 2
            fi
            while (($(jobs -rp | wc -l) >= jobs_max)); do
                wait -n || true
            done
            # A late round (a slower machine than planned) gets shorter slices, never one past the deadline.
            secs="$slice"
            if ((deadline > 0)); then
                left=$((deadline - $(date +%s) - merge_allowance))
                ((left < secs)) && secs="$left"
                if ((secs < min_slice)); then
                    break 2
                fi
            fi
            run_slice "$t" "$secs" &
        done
        wait || true
    done
    wait || true
    echo "fuzz-campaign: done; report docs/fuzz/campaign-$(date -u +%F).md, totals:"
    for t in "${all_targets[@]}"; do
        printf '  %-16s %6s CPU-s\n' "$t" "$(cpu_so_far "$t")"
    done
}

main
exit
