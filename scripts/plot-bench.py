#!/usr/bin/env python3
"""Draws one SVG of a bench/run.sh results.tsv: median msg/s (or µs) per cell, libzmq→libzmq against
zmtp→zmtp, side by side, with the ratio written over each pair. No plotting library needed.

usage: scripts/plot-bench.py RESULTS.tsv OUT.svg "title"
"""
import csv
import statistics
import sys
from collections import defaultdict


def main():
    tsv, out, title = sys.argv[1], sys.argv[2], sys.argv[3]
    values = defaultdict(list)
    with open(tsv) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["status"] != "ok" or row["a"] != row["b"]:
                continue
            key = (row["suite"], int(row["size"]), row["a"])
            values[key].append(float(row["value"]))
    cells = sorted({(s, z) for (s, z, _) in values}, key=lambda c: (c[0] != "thr", c[1]))
    width, bar, gap, top, height = 120, 36, 8, 60, 260
    svg_w = 80 + width * len(cells)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{svg_w}" height="{top + height + 70}" font-family="sans-serif" font-size="12">',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{title}</text>',
        '<rect x="10" y="34" width="12" height="12" fill="#999"/><text x="26" y="44">libzmq 4.3</text>',
        '<rect x="110" y="34" width="12" height="12" fill="#2a7"/><text x="126" y="44">zmtp</text>',
        '<text x="200" y="44">bars scaled per cell; throughput: higher is better, latency: lower is better</text>',
    ]
    for i, (suite, size) in enumerate(cells):
        lib = statistics.median(values.get((suite, size, "libzmq"), [0]))
        ours = statistics.median(values.get((suite, size, "zmtp"), [0]))
        peak = max(lib, ours) or 1
        x = 60 + i * width
        for j, (v, color) in enumerate(((lib, "#999"), (ours, "#2a7"))):
            h = height * v / peak
            parts.append(f'<rect x="{x + j * (bar + gap)}" y="{top + height - h:.1f}" width="{bar}" height="{h:.1f}" fill="{color}"/>')
            label = f"{v / 1000:.0f}k" if suite == "thr" else f"{v:.0f}µs"
            if suite == "thr" and v >= 1e6:
                label = f"{v / 1e6:.2f}M"
            parts.append(f'<text x="{x + j * (bar + gap) + bar / 2}" y="{top + height - h - 4:.1f}" text-anchor="middle" font-size="10">{label}</text>')
        ratio = ours / lib if lib else 0
        name = f"{'PUSH→PULL' if suite == 'thr' else 'REQ/REP'} {size} B"
        parts.append(f'<text x="{x + bar + gap / 2}" y="{top + height + 18}" text-anchor="middle">{name}</text>')
        parts.append(f'<text x="{x + bar + gap / 2}" y="{top + height + 34}" text-anchor="middle" font-weight="bold">{ratio:.2f}×</text>')
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
