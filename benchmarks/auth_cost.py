"""What auth costs TandemKV, measured in pairs: a cluster without auth and
one with auth enabled run at once, and each workload's runs alternate
between them (the method of `benchmarks.tls_cost`, which says why pairs).

    python -m benchmarks.auth_cost [--workloads put,get,sdk-put,sdk-get] [--concurrency 1,256]
        [--pairs 5] [--seconds 3] [--warmup 1] [--out benchmarks/results/auth]

Both clusters are 3 `tandemkv serve` members on 127.0.0.1, plaintext. On
the auth one, user "root" is bootstrapped and auth enabled, and the load
runs as user "bench", whose role grants write on every key (so each call
passes the node's gate: its token verified, from the per-revision cache,
and its permission checked). Raw workloads send over one channel to the
leader, the auth one carrying `authorization: Bearer TOKEN` through the
SDK's interceptor; SDK workloads go through one AsyncClient, made with
`user=`/`password=` on the auth cluster. Writes auth_cost.json and
auth_cost.md to --out.

Beside throughput, each run records the CPU time per operation of the
client (this process) and of the leader (from /proc): on a shared machine
throughput mostly measures how long the processes waited for a core, while
CPU per operation still shows what auth adds to each side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks import clusters, loadgen, report
from benchmarks.tandem_workloads import RPC_TIMEOUT_S, TandemWorkloads, _pb, _stub
from benchmarks.workload import Options

SYSTEMS = ("open", "auth")
BENCH_USER, BENCH_PASSWORD, ROOT_PASSWORD = "bench", "bench-password", "root-password"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.auth_cost", description=__doc__.splitlines()[0])
    listed = lambda kind: lambda text: [kind(item) for item in text.split(",") if item]  # noqa: E731
    parser.add_argument("--workloads", type=listed(str), default=["put", "get", "sdk-put", "sdk-get"])
    parser.add_argument("--concurrency", type=listed(int), default=[1, 256], help="operations in flight")
    parser.add_argument("--pairs", type=int, default=5, help="runs on each cluster per point, alternating")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per point and cluster")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/auth"))
    args = parser.parse_args(argv)
    assert args.pairs >= 1 and args.seconds > 0, "--pairs >= 1 and --seconds > 0"
    return args


class AuthWorkloads(TandemWorkloads):
    """The workloads, with the SDK's client signed in as the bench user."""

    async def sdk_client(self):
        if self.sdk is None:
            from tandemkv.client import AsyncClient

            status = await _stub(self.channel, "cluster", "Cluster").Status(
                _pb("cluster").StatusRequest(), timeout=RPC_TIMEOUT_S)
            members = [m.client_address for m in status.members if m.client_address]
            leader = status.leader_client_address
            self.sdk = AsyncClient([leader] + [m for m in members if m != leader] if leader else members,
                                   tls=False, user=BENCH_USER, password=BENCH_PASSWORD)
        return self.sdk


async def enable_auth(cluster: clusters.TandemCluster, options: Options) -> None:
    """Preloads the keys the get workloads read (Txn is root-only under
    auth), bootstraps root and the bench user, and enables auth."""
    from tandemkv.client import AsyncClient

    async with cluster.channel() as channel:
        await TandemWorkloads(channel, options).preload_once()
    async with AsyncClient([cluster.leader_endpoint], tls=False) as admin:
        await admin.auth.user_add("root", ROOT_PASSWORD)
        await admin.auth.user_grant_role("root", "root")
        await admin.auth.role_add("bench")
        await admin.auth.role_grant_permission("bench", "write", "key", b"")
        await admin.auth.user_add(BENCH_USER, BENCH_PASSWORD)
        await admin.auth.user_grant_role(BENCH_USER, "bench")
        await admin.auth.enable()


def token_channel(endpoint: str):
    """A channel to `endpoint` whose calls carry the bench user's token, put
    on (and renewed) by the SDK's interceptors, as every SDK call gets it;
    returns (the channel, the client that keeps its token)."""
    from tandemkv.client import AsyncClient

    keeper = AsyncClient([endpoint], tls=False, user=BENCH_USER, password=BENCH_PASSWORD)
    return keeper._channel_factory.open_aio(endpoint, ()), keeper


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured_run(op, concurrency: int, seconds: float, leader_pid: int) -> dict:
    """One closed-loop run, with the CPU time per operation of this
    process (the client) and of the leader: figures a loaded machine
    disturbs far less than throughput, which waits for the CPU."""
    client_start, leader_start = time.process_time(), process_cpu_s(leader_pid)
    result = await loadgen.run(op, concurrency, seconds, "closed", None)
    record = report.run_record(result)
    operations = max(1, result.operations)
    record["client_cpu_us_per_op"] = (time.process_time() - client_start) / operations * 1e6
    record["leader_cpu_us_per_op"] = (process_cpu_s(leader_pid) - leader_start) / operations * 1e6
    return record


async def measure(args: argparse.Namespace, open_cluster, auth_cluster) -> list[dict]:
    rows = []
    leaders = {"open": open_cluster.leader_pid, "auth": auth_cluster.leader_pid}
    await enable_auth(auth_cluster, Options())
    auth_channel, keeper = token_channel(auth_cluster.leader_endpoint)
    async with open_cluster.channel() as open_channel, auth_channel, keeper:
        builders = {"open": TandemWorkloads(open_channel, Options()),
                    "auth": AuthWorkloads(auth_channel, Options())}
        builders["auth"].preloaded = True  # by enable_auth
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
                        runs[system].append(await measured_run(built[system].op, concurrency, args.seconds,
                                                               leaders[system]))
                rows.append(summarise(name, concurrency, runs))
                print_row(rows[-1])
        for builder in builders.values():
            if builder.sdk is not None:
                await builder.sdk.close()
    return rows


def summarise(name: str, concurrency: int, runs: dict[str, list[dict]]) -> dict:
    ratios = [a["ops_per_s"] / o["ops_per_s"] for o, a in zip(runs["open"], runs["auth"]) if o["ops_per_s"]]
    row = {"workload": name, "concurrency": concurrency, "runs": runs,
           "ratio_median": statistics.median(ratios) if ratios else float("nan"),
           "ratio_min": min(ratios, default=float("nan")), "ratio_max": max(ratios, default=float("nan")),
           "errors": sum(run["errors"] for system in SYSTEMS for run in runs[system])}
    for system in SYSTEMS:
        for measure_name in ("ops_per_s", "p50_ms", "p99_ms", "client_cpu_us_per_op", "leader_cpu_us_per_op"):
            row[f"{system}_{measure_name}"] = statistics.median(run[measure_name] for run in runs[system])
    return row


def print_row(row: dict) -> None:
    print(f"{row['workload']:8} {row['concurrency']:4} in flight: no auth {row['open_ops_per_s']:9,.0f} ops/s, "
          f"auth {row['auth_ops_per_s']:9,.0f} ops/s, auth/no auth {row['ratio_median']:.2f}x "
          f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f}), CPU us/op client {row['open_client_cpu_us_per_op']:.0f} -> "
          f"{row['auth_client_cpu_us_per_op']:.0f}, leader {row['open_leader_cpu_us_per_op']:.0f} -> "
          f"{row['auth_leader_cpu_us_per_op']:.0f}, errors {row['errors']}", flush=True)


def render(document: dict) -> str:
    args, machine = document["args"], document["machine"]
    load = lambda values: "/".join(f"{v:.2f}" for v in values)  # noqa: E731
    lines = ["## The cost of auth: clusters without and with auth measured in alternating pairs", "",
             f"`{document['command']}` — {machine['date']}", "",
             f"- Machine: {machine['cores']} cores, Python {machine['python']}; load average (1/5/15 min) at start "
             f"{load(machine['load_average_start'])}, at end {load(document['load_average_end'])}.",
             f"- Method: {args['pairs']} pairs of {args['seconds']} s closed-loop runs per point after "
             f"{args['warmup']} s warm-up on each cluster; figures are medians of the runs; the ratio is the "
             "median (min–max) of the pairs' auth/no-auth throughput ratios.", "",
             "| workload | in flight | no auth ops/s | auth ops/s | auth / no auth (pairs' min–max) | "
             "p50 ms → with auth | client CPU µs/op → with auth | leader CPU µs/op → with auth | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in document["rows"]:
        lines.append(f"| {row['workload']} | {row['concurrency']} | {row['open_ops_per_s']:,.0f} | "
                     f"{row['auth_ops_per_s']:,.0f} | {row['ratio_median']:.2f}x ({row['ratio_min']:.2f}–"
                     f"{row['ratio_max']:.2f}) | {row['open_p50_ms']:.2f} → {row['auth_p50_ms']:.2f} | "
                     f"{row['open_client_cpu_us_per_op']:.0f} → {row['auth_client_cpu_us_per_op']:.0f} | "
                     f"{row['open_leader_cpu_us_per_op']:.0f} → {row['auth_leader_cpu_us_per_op']:.0f} | "
                     f"{row['errors']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    document = {"command": "python -m benchmarks.auth_cost " + " ".join(sys.argv[1:] if argv is None else argv),
                "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "machine": report.machine_info(None)}
    with clusters.TandemCluster(nodes=3) as open_cluster, clusters.TandemCluster(nodes=3) as auth_cluster:
        document["rows"] = asyncio.run(measure(args, open_cluster, auth_cluster))
    document["load_average_end"] = os.getloadavg()
    report.write_json(args.out / "auth_cost.json", document)
    (args.out / "auth_cost.md").write_text(render(document))
    print(render(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
