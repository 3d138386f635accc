"""What TLS costs TandemKV, measured in pairs: a plaintext cluster and an
mTLS one run at once, and each workload's runs alternate between them.

    python -m benchmarks.tls_cost [--workloads put,get,sdk-put,sdk-get] [--concurrency 1,256]
        [--pairs 5] [--seconds 3] [--warmup 1] [--out benchmarks/results/tls]

Why pairs and not `benchmarks.suite --tls` (which measures one cluster
after the other): on a shared machine the load of other processes drifts
by more than TLS costs within minutes, so two figures taken minutes apart
compare the load, not TLS. Here run k of the mTLS cluster follows or
precedes run k of the plaintext one within seconds (the order alternates),
and the cost is the median of the pairs' ratios. Both clusters are 3
`tandemkv serve` members on 127.0.0.1 (the mTLS one set up as `tandemkv up
--tls` sets one up: a local CA, client certificates required), both idle
while the other is measured; the load comes from this one asyncio process,
over one channel to each leader (raw workloads) or one AsyncClient (SDK
workloads). Writes tls_cost.json and tls_cost.md to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path

from benchmarks import clusters, loadgen, report
from benchmarks.tandem_workloads import TandemWorkloads
from benchmarks.workload import Options

SYSTEMS = ("plaintext", "mtls")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tls_cost", description=__doc__.splitlines()[0])
    listed = lambda kind: lambda text: [kind(item) for item in text.split(",") if item]  # noqa: E731
    parser.add_argument("--workloads", type=listed(str), default=["put", "get", "sdk-put", "sdk-get"])
    parser.add_argument("--concurrency", type=listed(int), default=[1, 256], help="operations in flight")
    parser.add_argument("--pairs", type=int, default=5, help="runs on each cluster per point, alternating")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per point and cluster")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tls"))
    args = parser.parse_args(argv)
    assert args.pairs >= 1 and args.seconds > 0, "--pairs >= 1 and --seconds > 0"
    return args


async def measure(args: argparse.Namespace, plain, mtls) -> list[dict]:
    rows = []
    async with plain.channel() as plain_channel, mtls.channel() as mtls_channel:
        builders = {"plaintext": TandemWorkloads(plain_channel, Options()),
                    "mtls": TandemWorkloads(mtls_channel, Options(tls=mtls.client_tls))}
        for name in args.workloads:
            built = {system: await builder.build(name) for system, builder in builders.items()}
            for concurrency in args.concurrency:
                runs: dict[str, list[dict]] = {system: [] for system in SYSTEMS}
                for system in SYSTEMS:
                    if built[system].prepare is not None:
                        await built[system].prepare(concurrency)
                    await loadgen.run(built[system].op, concurrency, args.warmup, "closed", None)
                for pair in range(args.pairs):
                    for system in SYSTEMS if pair % 2 == 0 else reversed(SYSTEMS):
                        result = await loadgen.run(built[system].op, concurrency, args.seconds, "closed", None)
                        runs[system].append(report.run_record(result))
                rows.append(summarise(name, concurrency, runs))
                print_row(rows[-1])
        for builder in builders.values():
            if builder.sdk is not None:
                await builder.sdk.close()
    return rows


def summarise(name: str, concurrency: int, runs: dict[str, list[dict]]) -> dict:
    ratios = [m["ops_per_s"] / p["ops_per_s"] for p, m in zip(runs["plaintext"], runs["mtls"]) if p["ops_per_s"]]
    row = {"workload": name, "concurrency": concurrency, "runs": runs,
           "ratio_median": statistics.median(ratios) if ratios else float("nan"),
           "ratio_min": min(ratios, default=float("nan")), "ratio_max": max(ratios, default=float("nan")),
           "errors": sum(run["errors"] for system in SYSTEMS for run in runs[system])}
    for system in SYSTEMS:
        for measure_name in ("ops_per_s", "p50_ms", "p99_ms"):
            row[f"{system}_{measure_name}"] = statistics.median(run[measure_name] for run in runs[system])
    return row


def print_row(row: dict) -> None:
    print(f"{row['workload']:8} {row['concurrency']:4} in flight: plaintext {row['plaintext_ops_per_s']:9,.0f} "
          f"ops/s, mTLS {row['mtls_ops_per_s']:9,.0f} ops/s, mTLS/plaintext {row['ratio_median']:.2f}x "
          f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f}), errors {row['errors']}", flush=True)


def render(document: dict) -> str:
    args, machine = document["args"], document["machine"]
    load = lambda values: "/".join(f"{v:.2f}" for v in values)  # noqa: E731
    lines = ["## The cost of TLS: plaintext and mTLS clusters measured in alternating pairs", "",
             f"`{document['command']}` — {machine['date']}", "",
             f"- Machine: {machine['cores']} cores, Python {machine['python']}; load average (1/5/15 min) at start "
             f"{load(machine['load_average_start'])}, at end {load(document['load_average_end'])}.",
             f"- Method: {args['pairs']} pairs of {args['seconds']} s closed-loop runs per point after "
             f"{args['warmup']} s warm-up on each cluster; figures are medians of the runs; the ratio is the "
             "median (min–max) of the pairs' mTLS/plaintext throughput ratios.", "",
             "| workload | in flight | plaintext ops/s | mTLS ops/s | mTLS / plaintext (pairs' min–max) | "
             "p50 ms plain → mTLS | p99 ms plain → mTLS | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for row in document["rows"]:
        lines.append(f"| {row['workload']} | {row['concurrency']} | {row['plaintext_ops_per_s']:,.0f} | "
                     f"{row['mtls_ops_per_s']:,.0f} | {row['ratio_median']:.2f}x ({row['ratio_min']:.2f}–"
                     f"{row['ratio_max']:.2f}) | {row['plaintext_p50_ms']:.2f} → {row['mtls_p50_ms']:.2f} | "
                     f"{row['plaintext_p99_ms']:.2f} → {row['mtls_p99_ms']:.2f} | {row['errors']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    document = {"command": "python -m benchmarks.tls_cost " + " ".join(sys.argv[1:] if argv is None else argv),
                "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "machine": report.machine_info(None)}
    with clusters.TandemCluster(nodes=3) as plain, clusters.TandemCluster(nodes=3, tls=True) as mtls:
        document["rows"] = asyncio.run(measure(args, plain, mtls))
    document["load_average_end"] = os.getloadavg()
    report.write_json(args.out / "tls_cost.json", document)
    (args.out / "tls_cost.md").write_text(render(document))
    print(render(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
