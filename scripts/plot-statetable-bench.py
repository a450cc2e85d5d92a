#!/usr/bin/env python3
"""Medians of a scripts/bench-statetable.sh results.jsonl: a markdown table with the ratios, or a
hand-written SVG bar chart of them. No plotting library needed.

usage: scripts/plot-statetable-bench.py --table RESULTS.jsonl
       scripts/plot-statetable-bench.py RESULTS.jsonl OUT.svg ["title"]
"""
import json
import statistics
import sys
from collections import defaultdict

ORDER = ["ours-b1-p1", "py-b1-p1", "ours-b16-p1", "py-b16-p1", "ours-b1-p2", "ours-b16-p2",
         "ours-wt-replace", "py-wt-replace", "ours-wt-merge", "py-wt-merge", "redis-benchmark"]
GOAL_APP = 500_000
GOAL_WT = 0.8


def load(path):
    rows = defaultdict(lambda: defaultdict(list))
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r.get("status") == "SKIPPED":
                rows[r["case"]]["skipped"].append(1)
                continue
            side = "produce" if r.get("mode") == "produce" else "consume"
            for k, v in r.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    rows[r["case"]][f"{side}.{k}"].append(v)
    return rows


def med(rows, case, key):
    v = rows.get(case, {}).get(key)
    return statistics.median(v) if v else None


def fmt(v, unit=""):
    if v is None:
        return "–"
    if v >= 1000:
        return f"{v / 1000:,.0f}k{unit}"
    return f"{v:,.2f}{unit}"


def ratio(a, b):
    return None if a is None or not b else a / b


def table(path):
    rows = load(path)
    cases = [c for c in ORDER if c in rows] + sorted(c for c in rows if c not in ORDER)
    out = ["| case | runs | ops/s at the consumer's application | ops/s into Redis | min–max app ops/s | "
           "ops per consumer CPU-second (to the flush with Redis) | producer ops/s | producer stalls (s stalled) | Redis keys | "
           "ops per redis-server CPU-second |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        r = rows[c]
        if r.get("skipped"):
            out.append(f"| {c} | SKIPPED (redis-py missing) | | | | | | | | |")
            continue
        app = med(rows, c, "consume.ops_per_s")
        runs = len(r.get("consume.ops_per_s", []))
        lo, hi = (min(r["consume.ops_per_s"]), max(r["consume.ops_per_s"])) if runs else (None, None)
        # With a write-through, the consumer's CPU until the flush completed (all of its work).
        cpu = med(rows, c, "consume.redis_cpu_seconds") or med(rows, c, "consume.cpu_seconds")
        ops = med(rows, c, "consume.ops")
        per_cpu = ops / cpu if cpu and ops else None
        redis = med(rows, c, "consume.redis_ops_per_s")
        if c == "redis-benchmark":
            app = None
        prod = med(rows, c, "produce.ops_per_s")
        stalls = med(rows, c, "produce.stalls")
        stalled = med(rows, c, "produce.stalled_seconds")
        keys = med(rows, c, "consume.dbsize")
        rcpu = med(rows, c, "consume.redis_server_cpu_seconds")
        per_rcpu = ops / rcpu if rcpu and ops else None
        out.append(
            f"| {c} | {runs} | {fmt(app)} | {fmt(redis)} | "
            f"{'–' if c == 'redis-benchmark' or lo is None else fmt(lo) + '–' + fmt(hi)} | "
            f"{fmt(per_cpu)} | {fmt(prod)} | "
            f"{'–' if stalls is None else f'{stalls:.0f} ({stalled:.1f} s)'} | {'–' if keys is None else f'{keys:.0f}'} | {fmt(per_rcpu)} |")
    out.append("")
    rb = med(rows, "redis-benchmark", "consume.redis_ops_per_s")
    lines = []
    for b in ("b1-p1", "b16-p1"):
        r = ratio(med(rows, f"ours-{b}", "consume.ops_per_s"), med(rows, f"py-{b}", "consume.ops_per_s"))
        lines.append(f"- ours/pyzmq, {b}: {'–' if r is None else f'{r:.1f}×'}")
    for m in ("replace", "merge"):
        r = ratio(med(rows, f"ours-wt-{m}", "consume.redis_ops_per_s"),
                  med(rows, f"py-wt-{m}", "consume.redis_ops_per_s"))
        lines.append(f"- ours/pyzmq, write-through {m} (ops/s into Redis): {'–' if r is None else f'{r:.1f}×'}")
    for impl in ("ours", "py"):
        for m in ("replace", "merge"):
            r = ratio(med(rows, f"{impl}-wt-{m}", "consume.redis_ops_per_s"), rb)
            mark = "" if r is None else (" (goal ≥ 80 %: met)" if r >= GOAL_WT else " (goal ≥ 80 %: missed)") if impl == "ours" else ""
            lines.append(f"- {impl} write-through {m} / redis-benchmark HSET -P 64: {'–' if r is None else f'{r * 100:.0f} %'}{mark}")
    best = max(((med(rows, c, "consume.ops_per_s") or 0, c) for c in cases if c.startswith("ours-b")), default=(0, ""))
    if best[0]:
        verdict = "met" if best[0] >= GOAL_APP else "missed"
        lines.append(f"- best ours into the application: {fmt(best[0])} ops/s ({best[1]}); goal 500k: {verdict}")
    return "\n".join(out + lines)


def svg(path, out, title):
    rows = load(path)
    cases = [c for c in ORDER if c in rows and not rows[c].get("skipped")]
    groups = [("into the consumer's application (ops/s)", [c for c in cases if "wt" not in c and c != "redis-benchmark"], "consume.ops_per_s"),
              ("into Redis (ops/s)", [c for c in cases if "wt" in c or c == "redis-benchmark"], "consume.redis_ops_per_s")]
    bar, gap, left, top, height = 46, 14, 70, 70, 260
    width = left + sum(len(g[1]) * (bar + gap) + 50 for g in groups) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + 110}" font-family="sans-serif" font-size="11">',
             f'<text x="10" y="22" font-size="15" font-weight="bold">{title}</text>',
             '<rect x="10" y="34" width="12" height="12" fill="#2a7"/><text x="26" y="44">statetable (Rust)</text>',
             '<rect x="140" y="34" width="12" height="12" fill="#999"/><text x="156" y="44">pyzmq + redis-py</text>',
             '<rect x="270" y="34" width="12" height="12" fill="#47c"/><text x="286" y="44">redis-benchmark</text>',
             '<text x="400" y="44">medians; each panel scaled to its own highest bar; dashed: the goal</text>']
    x = left
    for name, cs, key in groups:
        if not cs:
            continue
        vals = [med(rows, c, key) or 0 for c in cs]
        goal = GOAL_APP if "application" in name else GOAL_WT * (med(rows, "redis-benchmark", key) or 0)
        peak = max(vals + [goal]) or 1
        x0 = x
        parts.append(f'<line x1="{x0 - 6}" y1="{top + height}" x2="{x0 + len(cs) * (bar + gap)}" y2="{top + height}" stroke="#333"/>')
        for c, v in zip(cs, vals):
            h = height * v / peak
            color = "#2a7" if c.startswith("ours") else "#47c" if c == "redis-benchmark" else "#999"
            parts.append(f'<rect x="{x}" y="{top + height - h:.1f}" width="{bar}" height="{h:.1f}" fill="{color}"/>')
            parts.append(f'<text x="{x + bar / 2}" y="{top + height - h - 4:.1f}" text-anchor="middle">{v / 1000:.0f}k</text>')
            label = c.replace("ours-", "").replace("py-", "").replace("redis-benchmark", "HSET -P 64")
            parts.append(f'<text x="{x + bar / 2}" y="{top + height + 14}" text-anchor="middle">{label}</text>')
            x += bar + gap
        if goal:
            gy = top + height - height * goal / peak
            parts.append(f'<line x1="{x0 - 6}" y1="{gy:.1f}" x2="{x - gap + 6}" y2="{gy:.1f}" stroke="#c33" stroke-dasharray="5,4"/>')
            parts.append(f'<text x="{x - gap + 8}" y="{gy + 4:.1f}" fill="#c33">goal</text>')
        parts.append(f'<text x="{(x0 + x - gap) / 2}" y="{top + height + 34}" text-anchor="middle" font-weight="bold">{name}</text>')
        x += 50
    parts.append(f'<text x="10" y="{top + height + 60}">bN: N SETs per message; pN: N producers; wt: write-through (B = 16), replace = DEL+HSET, merge = HSET; 10 fields of 16 B per SET</text>')
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        print(table(sys.argv[2]))
    elif len(sys.argv) in (3, 4):
        svg(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "State tables: operations per second")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
