"""The suite's markdown report (suite.md) from the JSON document that
`benchmarks.suite` writes: machine, method, one table of every point, the
TandemKV/etcd ratios, the goal checks, skipped workloads, the many-clients
points, growth series and the leader's profile summary."""

from __future__ import annotations

import math

from benchmarks import report
from benchmarks.pyspy import SAMPLE_RATE_PER_S
from benchmarks.workload import DESCRIPTIONS

LOAD_PER_CORE_SHARED = 0.5


def _number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _ms(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"


def _header(document: dict) -> list[str]:
    machine, args = document["machine"], document["args"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    load_start, load_end = machine["load_average_start"], document.get("load_average_end", [0, 0, 0])
    shared = max(load_start[0], load_end[0]) > LOAD_PER_CORE_SHARED * machine["cores"]
    lines = [
        "## Benchmark suite: TandemKV and etcd side by side", "",
        f"`{document['command']}` — {machine['date']}", "",
        f"- Machine: {machine['cores']} cores, Python {machine['python']}, {machine['platform']}",
        f"- Packages: {packages}; etcd: {machine['etcd']}",
        f"- Method: {args['mode']}-loop{' at ' + str(args['rate']) + ' ops/s' if args['mode'] == 'open' else ''}, "
        f"{args['warmup']} s warm-up then {args['repeats']} runs of {args['seconds']} s per point; "
        "figures are the median run (spread: min–max of the runs); latency percentiles from an "
        "HdrHistogram of the median run. Load from one Python asyncio process over raw grpc.aio stubs, "
        "one channel to the leader, on the same cores as the servers; 3 members each, fsync on.",
        f"- Load average (1/5/15 min) at start {_load(load_start)}, at end {_load(load_end)}.",
    ]
    if shared:
        lines.append("- **The machine was shared**: other processes (test suites) ran during the "
                     "measurement, so absolute figures are low and noisy; ratios from the same run hold better.")
    return lines + [""]


def _load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _points(summaries: list[dict]) -> list[str]:
    lines = ["| workload | system | in flight | throughput median (min–max) | p50 ms | p99 ms | p99.9 ms | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        if s["series"] != "suite":
            continue
        lines.append(f"| {s['workload']} | {s['system']} | {s['concurrency']} | "
                     f"{_number(s['ops_per_s'])} {s['unit']} ({_number(s['ops_per_s_min'])}–"
                     f"{_number(s['ops_per_s_max'])}) | {_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} | "
                     f"{_ms(s['p999_ms'])} | {s['errors']}{_abandoned(s)} |")
    return lines + [""]


def _abandoned(summary: dict) -> str:
    count = summary.get("abandoned", 0)
    return f" ({count} abandoned)" if count else ""


def _ratios(table: dict, concurrencies: list[int]) -> list[str]:
    if not table:
        return ["No TandemKV/etcd ratios: etcd was not measured in this run.", ""]
    lines = ["### TandemKV / etcd throughput ratio (same run)", "",
             "| workload | " + " | ".join(f"{c} in flight" for c in concurrencies) + " |",
             "|---|" + "---|" * len(concurrencies)]
    for name, row in table.items():
        cells = [f"{row[c]:.2f}x" if c in row else "–" for c in concurrencies]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def _goals(checks: list[dict]) -> list[str]:
    lines = ["### Goals", "", "| goal | TandemKV | etcd | ratio | met |", "|---|---|---|---|---|"]
    for c in checks:
        if "status" in c:
            lines.append(f"| {c['goal']} | – | – | – | {c['status']} |")
            continue
        verdict = "yes" if c["met"] else f"no (off by {c['shortfall']:.1f}x)"
        lines.append(f"| {c['goal']} | {_number(c['tandemkv'])} | {_number(c['etcd'])} | "
                     f"{c['ratio']:.2f}x (need {'≥' if c['goal'].count('>=') else '≤'} {c['needed']}x) | {verdict} |")
    return lines + [""]


# Which etcd workload a TandemKV many-clients workload is read beside.
MANY_CLIENTS_PAIRS = {"sdk-put": "put", "sdk-get": "get"}


def _many_clients(summaries: list[dict]) -> list[str]:
    rows = [s for s in summaries if s["series"] == "processes"]
    if not rows:
        return []
    lines = ["### Many clients: load-generator processes at once", "",
             "Each process has its own channel (TandemKV: its own pipelining `AsyncClient`); throughput is "
             "their sum, latency percentiles from their merged histograms.", "",
             "| workload | system | processes x in flight | ops/s (min–max) | p50 ms | p99 ms | errors | "
             "TandemKV / etcd |", "|---|---|---|---|---|---|---|---|"]
    by_key = {(s["system"], s["workload"], s["parameter"], s["concurrency"]): s for s in rows}
    for s in rows:
        etcd = by_key.get(("etcd", MANY_CLIENTS_PAIRS.get(s["workload"]), s["parameter"], s["concurrency"]))
        ratio = f"{s['ops_per_s'] / etcd['ops_per_s']:.2f}x" if s["system"] == "tandemkv" and etcd and \
            etcd["ops_per_s"] else "–"
        lines.append(f"| {s['workload']} | {s['system']} | {s['parameter']} x {s['concurrency']} | "
                     f"{_number(s['ops_per_s'])} ({_number(s['ops_per_s_min'])}–{_number(s['ops_per_s_max'])}) | "
                     f"{_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} | {s['errors']}{_abandoned(s)} | {ratio} |")
    return lines + [""]


def _growth(summaries: list[dict]) -> list[str]:
    rows = [s for s in summaries if s["series"] not in ("suite", "processes")]
    if not rows:
        return []
    lines = ["### Cost growth", "", "| series | value | workload | system | in flight | ops/s (min–max) | p50 ms | p99 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for s in rows:
        lines.append(f"| {s['series']} | {s['parameter']:,} | {s['workload']} | {s['system']} | {s['concurrency']} | "
                     f"{_number(s['ops_per_s'])} ({_number(s['ops_per_s_min'])}–{_number(s['ops_per_s_max'])}) | "
                     f"{_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} |")
    return lines + [""]


def _skips(skipped: list[dict]) -> list[str]:
    if not skipped:
        return []
    return ["### Skipped", ""] + [f"- {s['system']} {s['workload']}: {s['reason']}" for s in skipped] + [""]


def _profile(profile: dict | None) -> list[str]:
    if not profile:
        return []
    lines = [f"### Profile of the TandemKV leader during `{profile.get('workload', 'put')}` at "
             f"{profile['concurrency']} in flight", "",
             f"py-spy `--gil` at {SAMPLE_RATE_PER_S}/s for {profile['seconds']} s: {profile['samples']} samples "
             f"had a thread holding the GIL, i.e. the leader's Python was busy "
             f"{profile['gil_busy_percent']:.0f}% of the time (raw stacks in `{profile['raw_file']}`).", "",
             "| self % | function (file) | | inclusive % | function (file) |", "|---|---|---|---|---|"]
    for own, inclusive in zip(profile["self"], profile["inclusive"]):
        lines.append(f"| {own[1]:.1f} | `{own[0]}` | | {inclusive[1]:.1f} | `{inclusive[0]}` |")
    return lines + [""]


def _tls_costs(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["### The cost of TLS (tandemkv-tls: mTLS on the client ports, same run)", "",
             "| workload | in flight | plaintext ops/s | mTLS ops/s | mTLS / plaintext | p50 ms plain → mTLS | "
             "p99 ms plain → mTLS |", "|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (r["workload"], r["concurrency"])):
        lines.append(f"| {row['workload']} | {row['concurrency']} | {_number(row['plain_ops_per_s'])} | "
                     f"{_number(row['tls_ops_per_s'])} | {row['throughput_ratio']:.2f}x | "
                     f"{_ms(row['plain_p50_ms'])} → {_ms(row['tls_p50_ms'])} | "
                     f"{_ms(row['plain_p99_ms'])} → {_ms(row['tls_p99_ms'])} |")
    return lines + [""]


def render(document: dict) -> str:
    lines = _header(document)
    lines += ["### Workloads", ""] + [f"- `{k}`: {v}" for k, v in DESCRIPTIONS.items()] + [""]
    lines += ["### Every point", ""] + _points(document["points"])
    lines += _ratios(document["ratios"], document["args"]["concurrency"]) + _goals(document["goals"])
    lines += _tls_costs(report.tls_costs(document["points"]))
    lines += _skips(document["skipped"]) + _many_clients(document["points"]) + _growth(document["points"]) + [line for profile in document.get("profiles", {}).values() for line in _profile(profile)]
    lines += [f"Plots: {', '.join('`' + p + '`' for p in document.get('plots', []))}.", ""]
    return "\n".join(lines)
