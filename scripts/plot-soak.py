#!/usr/bin/env python3
"""Plots a relay soak TSV (relay_soak run --tsv): the relay's RSS, open fds, CPU (with the machine's
load average) and the per-second request latency p50/p99, over time, with the warm-up shaded and
the ingestor kills marked. Needs matplotlib (scripts/soak.sh installs it into .venv).

usage: scripts/plot-soak.py SAMPLES.tsv OUT.(png|svg) "title" [WARMUP_FRACTION]
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    tsv, out, title = sys.argv[1], sys.argv[2], sys.argv[3]
    warm_frac = float(sys.argv[4]) if len(sys.argv) > 4 else 0.2
    with open(tsv) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        sys.exit("no samples")
    col = lambda k, conv=float: [conv(r[k]) for r in rows]  # noqa: E731
    t = col("t_s")
    t_min = [x / 60 for x in t]
    kills = col("kills", int)
    kill_at = [t_min[i] for i in range(1, len(rows)) if kills[i] > kills[i - 1]]
    warm_end = t_min[min(len(t_min) - 1, int(len(t_min) * warm_frac + 0.999))]

    fig, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
    fig.suptitle(title, fontsize=12)
    ax = axes[0]
    ax.plot(t_min, [x / 1024 for x in col("rss_kib")], color="tab:blue", lw=1.2)
    ax.set_ylabel("relay RSS (MiB)")
    lo, hi = ax.get_ylim()
    ax.set_ylim(0, max(hi * 1.1, 1))
    ax = axes[1]
    ax.plot(t_min, col("fds"), color="tab:green", lw=0.8)
    ax.set_ylabel("relay open fds")
    ax.set_ylim(0, max(col("fds")) * 1.2)
    ax = axes[2]
    ax.plot(t_min, col("cpu_pct"), color="tab:red", lw=0.8, label="relay CPU (% of one core)")
    ax.set_ylabel("relay CPU %")
    ax.set_ylim(0, max(100, max(col("cpu_pct")) * 1.1))
    ax2 = ax.twinx()
    ax2.plot(t_min, col("load1"), color="gray", lw=1, ls="--", label="machine load avg (1 min, 2 cores)")
    ax2.set_ylabel("load average", color="gray")
    ax2.set_ylim(0, max(col("load1")) * 1.2 + 0.1)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax = axes[3]
    p50 = [x / 1000 if x > 0 else None for x in col("p50_us")]
    p99 = [x / 1000 if x > 0 else None for x in col("p99_us")]
    ax.plot(t_min, p99, color="tab:orange", lw=0.8, label="p99")
    ax.plot(t_min, p50, color="tab:purple", lw=0.8, label="p50")
    ax.set_yscale("log")
    ax.set_ylabel("request latency (ms, per second)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel("minutes since the load started")
    for a in axes:
        a.axvspan(0, warm_end, color="0.92", zorder=0)
        for k in kill_at:
            a.axvline(k, color="0.6", lw=0.5, ls=":", zorder=0)
        a.grid(True, alpha=0.3)
    axes[0].text(warm_end / 2, axes[0].get_ylim()[1] * 0.05, "warm-up", ha="center", fontsize=8, color="0.4")
    axes[0].set_title(f"shaded: warm-up; dotted lines: ingestor kills (SIGKILL + restart, {len(kill_at)} shown)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main()
