#!/usr/bin/env python3
"""Renders scripts/capacity.sh's raw output: the RESULT lines of conn_capacity (idle, storm) and the
storm's samples, zmtp beside libzmq. No plotting library needed (the SVG is written by hand, as
scripts/plot-bench.py does).

usage: scripts/capacity_report.py RAW_DIR OUT_PREFIX
writes OUT_PREFIX.md, OUT_PREFIX.tsv (metric, zmtp, libzmq), OUT_PREFIX-samples.tsv, OUT_PREFIX-storm.svg
"""
import glob
import os
import sys

SERVERS = ["zmtp", "libzmq"]

IDLE = [
    ("n", "idle connections", ""),
    ("handshake_s", "time to handshake all", "s"),
    ("handshakes_per_s", "accept + handshake rate", "/s"),
    ("rss_before_kib", "server RSS before (16 warm-up conns)", "KiB"),
    ("rss_after_kib", "server RSS with all idle", "KiB"),
    ("per_conn_kib", "RSS per idle connection", "KiB"),
    ("fds_after", "server descriptors with all idle", ""),
    ("idle_cpu_pct", "server CPU while idle (5 s)", "%"),
    ("probe_p50_us_before", "active client p50, before", "µs"),
    ("probe_p99_us_before", "active client p99, before", "µs"),
    ("probe_p50_us_loaded", "active client p50, with all idle", "µs"),
    ("probe_p99_us_loaded", "active client p99, with all idle", "µs"),
    ("fds_back_ms", "descriptors back to baseline after closing all", "ms"),
    ("rss_closed_5s_kib", "server RSS 5 s after closing all", "KiB"),
]
STORM = [
    ("clients", "clients", ""),
    ("period_ms", "cycle period per client", "ms"),
    ("secs", "storm length", "s"),
    ("rounds", "storms in a row (each followed by a 5 s watch)", ""),
    ("target_per_s", "offered reconnects/s", "/s"),
    ("reconnects", "reconnects done", ""),
    ("reconnects_per_s", "sustained reconnects/s", "/s"),
    ("errors", "failed cycles (handshake not done within 5 s)", ""),
    ("listen_overflows", "listen backlog overflows (TcpExt ListenOverflows, whole machine)", ""),
    ("rss_baseline_kib", "server RSS before", "KiB"),
    ("rss_peak_kib", "server RSS peak during", "KiB"),
    ("rss_after5s_kib", "server RSS 5 s after (last storm)", "KiB"),
    ("rss_after5s_rounds_kib", "server RSS 5 s after each storm", "KiB"),
    ("fds_baseline", "server descriptors before", ""),
    ("fds_peak", "server descriptors peak during", ""),
    ("fds_after5s", "server descriptors 5 s after", ""),
    ("close_wait_peak", "CLOSE_WAIT peak during (250 ms samples)", ""),
    ("close_wait_after5s", "CLOSE_WAIT 5 s after", ""),
    ("back_to_baseline_ms", "descriptors and CLOSE_WAIT back to baseline after", "ms"),
    ("legit_p50_us_before", "legitimate client p50, before", "µs"),
    ("legit_p99_us_before", "legitimate client p99, before", "µs"),
    ("legit_p50_us_during", "legitimate client p50, during", "µs"),
    ("legit_p99_us_during", "legitimate client p99, during", "µs"),
]


def parse(raw):
    res = {}
    with open(os.path.join(raw, "results.txt")) as f:
        for line in f:
            if not line.startswith("RESULT conn_capacity"):
                continue
            kv = dict(p.split("=", 1) for p in line.split()[2:] if "=" in p)
            res[(kv["mode"], kv["server"])] = kv
    return res


def samples(raw):
    rows = []
    header = None
    for path in sorted(glob.glob(os.path.join(raw, "samples-*.tsv"))):
        with open(path) as f:
            lines = f.read().splitlines()
        header = lines[0]
        rows += [l.split("\t") for l in lines[1:]]
    return header, rows


def svg(rows, title):
    """RSS (MiB) and descriptors over time, one line per server."""
    colors = {"zmtp": "#2a7", "libzmq": "#999"}
    w, h, left, top, ph = 760, 440, 70, 50, 150
    series = {}
    for r in rows:
        series.setdefault(r[0], []).append((float(r[1]), int(r[3]) / 1024, int(r[4]), r[2]))
    if not series:
        return ""
    tmax = max(p[0] for s in series.values() for p in s) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{title}</text>',
    ]
    x = 10
    for name in SERVERS:
        if name in series:
            parts.append(f'<rect x="{x}" y="30" width="12" height="12" fill="{colors[name]}"/>')
            parts.append(f'<text x="{x + 16}" y="40">{name}</text>')
            x += 90
    for i, (idx, label) in enumerate([(1, "server RSS (MiB)"), (2, "server descriptors")]):
        y0 = top + i * (ph + 50)
        vmax = max(p[idx] for s in series.values() for p in s) * 1.1 or 1
        parts.append(f'<text x="{left}" y="{y0 - 6}">{label}</text>')
        parts.append(f'<rect x="{left}" y="{y0}" width="{w - left - 20}" height="{ph}" fill="none" stroke="#ccc"/>')
        for frac in (0, 0.5, 1):
            yy = y0 + ph - frac * ph
            parts.append(f'<text x="{left - 6}" y="{yy + 4}" text-anchor="end">{vmax * frac:.0f}</text>')
        # Shade the storms (the "during" runs of the first series).
        first = next(iter(series.values()))
        runs, start, prev = [], None, None
        for p in first:
            if p[3] == "during" and start is None:
                start = p[0]
            if p[3] != "during" and start is not None:
                runs.append((start, prev))
                start = None
            prev = p[0]
        if start is not None:
            runs.append((start, prev))
        for a, b in runs:
            sx = left + a / tmax * (w - left - 20)
            ex = left + b / tmax * (w - left - 20)
            parts.append(f'<rect x="{sx:.1f}" y="{y0}" width="{ex - sx:.1f}" height="{ph}" fill="#f4eedd"/>')
        for name, pts in series.items():
            path = " ".join(
                f"{left + t / tmax * (w - left - 20):.1f},{y0 + ph - v[idx - 1] / vmax * ph:.1f}"
                for (t, *v) in [(p[0], p[1], p[2]) for p in pts]
            )
            parts.append(f'<polyline fill="none" stroke="{colors.get(name, "#36c")}" stroke-width="1.5" points="{path}"/>')
        parts.append(f'<text x="{left}" y="{y0 + ph + 16}">0 s</text>')
        parts.append(f'<text x="{w - 20}" y="{y0 + ph + 16}" text-anchor="end">{tmax:.0f} s (shaded: the storms)</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    raw, prefix = sys.argv[1], sys.argv[2]
    res = parse(raw)
    machine = {}
    mpath = os.path.join(raw, "machine.txt")
    if os.path.exists(mpath):
        for line in open(mpath):
            k, _, v = line.rstrip("\n").partition("\t")
            machine[k] = v
    tsv = ["mode\tmetric\tunit\t" + "\t".join(SERVERS)]
    md = [f"# Connection capacity and reconnect storm: zmtp vs libzmq ({os.path.basename(prefix)})", ""]
    md += [
        "Produced by `scripts/capacity.sh` (reliability.md §7c L-5, L-8; §7b B-12, B-13). One raw-socket",
        "client (`perf/src/bin/conn_capacity.rs`, tokio, one thread) against a zmtp ROUTER (`conn_capacity serve`,",
        "current-thread runtime) and a pyzmq ROUTER on libzmq 4.3.5 (`scripts/capacity_server.py`, one I/O thread),",
        "NULL mechanism, tcp over loopback, each in a fresh process; the server is measured from outside",
        "(`/proc/<pid>`, `/proc/net/tcp`). The client does the ZMTP 3.1 greeting + READY (DEALER) and checks the",
        "server's READY (ROUTER); the probe and legitimate clients send 64-byte messages that the server echoes.",
        "",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, kernel {machine.get('kernel', '?')},"
        f" commit {machine.get('commit', '?')}; load average before {machine.get('load_before', '?')},"
        f" after {machine.get('load_after', '?')} (the machine is shared: latency figures are noisy).",
        "",
    ]
    for mode, rows, heading in [
        ("idle", IDLE, "Idle connections (L-5, B-13)"),
        ("storm", STORM, "Reconnect storm (L-8, B-12)"),
    ]:
        md += [f"## {heading}", "", "| figure | zmtp | libzmq |", "|---|---:|---:|"]
        for key, label, unit in rows:
            vals = [res.get((mode, s), {}).get(key, "n/a") for s in SERVERS]
            tsv.append(f"{mode}\t{key}\t{unit}\t" + "\t".join(vals))
            u = f" ({unit})" if unit else ""
            md.append(f"| {label}{u} | " + " | ".join(vals) + " |")
        md.append("")
    z = res.get(("idle", "zmtp"), {})
    l = res.get(("idle", "libzmq"), {})
    md += ["## Reading", ""]
    if z and l:
        md.append(
            f"- RSS per idle NULL connection: zmtp {z['per_conn_kib']} KiB, libzmq {l['per_conn_kib']} KiB"
            " (reliability.md's libzmq reference: 23.3 KiB at 5 000 connections)."
        )
    zs = res.get(("storm", "zmtp"), {})
    ls = res.get(("storm", "libzmq"), {})
    if zs and ls:
        md.append(
            f"- Storm: zmtp sustained {zs['reconnects_per_s']}/s, libzmq {ls['reconnects_per_s']}/s of"
            f" {zs['target_per_s']}/s offered; descriptors and CLOSE_WAIT back to baseline after"
            f" {zs['back_to_baseline_ms']} ms (zmtp) and {ls['back_to_baseline_ms']} ms (libzmq)"
            " (B-12 bar: within 5 000 ms)."
        )
        md.append(
            f"- Legitimate client p99 during/before: zmtp {zs['legit_p99_us_during']}/{zs['legit_p99_us_before']} µs,"
            f" libzmq {ls['legit_p99_us_during']}/{ls['legit_p99_us_before']} µs. The client process and the"
            " storm share the machine's two cores with the server, so this measures the machine as much as the server."
        )
    md += [
        "- `bench/run.sh` (../shared/bench) has no tool for this: its suites are throughput (thr, dr), latency",
        "  (lat) and the proxy fan-out; none opens many connections or cycles them, hence `conn_capacity`.",
        "",
    ]
    header, rows = samples(raw)
    if rows:
        name = os.path.basename(prefix)
        md += [f"![server RSS and descriptors during the storm]({name}-storm.svg)", ""]
        md += [f"Samples every 250 ms: `{name}-samples.tsv`.", ""]
        with open(prefix + "-samples.tsv", "w") as f:
            f.write(header + "\n" + "\n".join("\t".join(r) for r in rows) + "\n")
        with open(prefix + "-storm.svg", "w") as f:
            f.write(svg(rows, "Reconnect storm: server RSS and descriptors over time"))
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(md))
    with open(prefix + ".tsv", "w") as f:
        f.write("\n".join(tsv) + "\n")


if __name__ == "__main__":
    main()
