"""The benchmark suite: TandemKV and etcd side by side on this machine.

    python -m benchmarks.suite [--quick] [--systems tandemkv,etcd] [--workloads put,get,...]
        [--concurrency 1,16,64,256] [--repeats 3] [--seconds 4] [--warmup 1]
        [--mode closed|open --rate N] [--growth [--million-keys]] [--profile] [--out benchmarks/results]
        [--processes 4 [--process-concurrency 64]]

For each system it starts a 3-member cluster on 127.0.0.1 ephemeral ports in
a temporary directory, runs every workload at every concurrency (warm-up,
then repeated runs; the median run and the spread are kept), stops every
process it started, and writes suite.json, suite.md and PNG plots to --out.
With --processes N it also measures put and get from N load-generator
processes at once (TandemKV through one SDK client per process, etcd raw;
`benchmarks/many_clients.py`).
etcd runs when Debian's `etcd` binary and the `aetcd` package are present
(`apt-get install -y etcd-server etcd-client`, `pip install -e '.[bench]'`);
otherwise the suite says so and measures TandemKV alone. See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import sys
from pathlib import Path

import grpc.aio
from tqdm import tqdm

from benchmarks import clusters, loadgen, many_clients, markdown, pyspy, report, workload
from benchmarks.report import Point
from benchmarks.workload import Options, Workload

QUICK = {"repeats": 1, "seconds": 1.0, "warmup": 0.5, "concurrency": [1, 16]}
GROWTH_CONCURRENCY = 64
GROWTH_VALUE_BYTES = (100, 1024, 4096, 16384, 32768)
GROWTH_KEY_COUNTS = (1_000, 10_000, 100_000)
GROWTH_KEY_COUNT_MILLION = 1_000_000
GROWTH_NODES = (3, 5)
PROFILE_S = 5
# Seconds of load before py-spy's samples start counting (it needs a moment to attach).
PROFILE_LEAD_S = 1.0
# Workloads whose leader is profiled with --profile (raw calls and the SDK's batches).
PROFILED_WORKLOADS = ("put", "sdk-put")


def _list(kind):
    return lambda text: [kind(item) for item in text.split(",") if item]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 run of 1 s after 0.5 s warm-up at 1 and 16 in flight")
    parser.add_argument("--systems", type=_list(str), default=["tandemkv", "etcd"])
    parser.add_argument("--workloads", type=_list(str), default=list(workload.WORKLOADS),
                        help="comma-separated, of: " + ",".join(workload.WORKLOADS))
    parser.add_argument("--concurrency", type=_list(int), default=[1, 16, 64, 256], help="operations in flight")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per point")
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--rate", type=float, help="open loop: target operations/s per point")
    parser.add_argument("--growth", action="store_true", help="also measure cost vs value size, key count, nodes")
    parser.add_argument("--million-keys", action="store_true", help="with --growth: add 10^6 keys")
    parser.add_argument("--profile", action="store_true", help="py-spy the TandemKV leader during put and sdk-put")
    parser.add_argument("--processes", type=int, default=0,
                        help="also measure put and get from this many load-generator processes at once "
                             "(TandemKV: sdk-put, sdk-get, one AsyncClient per process; etcd: put, get)")
    parser.add_argument("--process-concurrency", type=_list(int), default=[64],
                        help="with --processes: operations in flight in each process")
    parser.add_argument("--tls", action="store_true",
                        help="also measure TandemKV with mTLS on its client ports (system tandemkv-tls: a local "
                             "CA, client certificates required, as `tandemkv up --tls`), beside plaintext")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--replot", type=Path, metavar="SUITE_JSON",
                        help="measure nothing: rewrite suite.md and the PNGs in --out from a suite.json")
    args = parser.parse_args(argv)
    if args.quick:
        for name, quick_value in QUICK.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, quick_value)
    if args.tls and "tandemkv-tls" not in args.systems:
        args.systems.insert(args.systems.index("tandemkv") + 1 if "tandemkv" in args.systems else 0, "tandemkv-tls")
    unknown = set(args.workloads) - set(workload.WORKLOADS) or set(args.systems) - {"tandemkv", "tandemkv-tls", "etcd"}
    if unknown:
        parser.error(f"unknown names: {', '.join(sorted(unknown))}")
    if args.mode == "open" and not args.rate:
        parser.error("--mode open needs --rate N (operations/s)")
    assert args.repeats >= 1 and args.seconds > 0, "--repeats >= 1 and --seconds > 0"
    if not 0 <= args.processes <= many_clients.PROCESSES_MAX:
        parser.error(f"--processes must be 0..{many_clients.PROCESSES_MAX}")
    return args


def etcd_absence() -> str | None:
    """Why etcd cannot be measured here, or None."""
    if clusters.etcd_version() is None:
        return "etcd is absent (no `etcd` binary; apt-get install -y etcd-server etcd-client)"
    try:
        import aetcd  # noqa: F401 (the etcd v3 messages and stubs)
    except ImportError:
        return "etcd is absent for the suite: the aetcd package is missing (pip install -e '.[bench]')"
    return None


def system_parts(system: str):
    """(cluster class, workload builder class) of a system."""
    if system in ("tandemkv", "tandemkv-tls"):
        from benchmarks.tandem_workloads import TandemWorkloads
        if system == "tandemkv-tls":
            return functools.partial(clusters.TandemCluster, tls=True), TandemWorkloads
        return clusters.TandemCluster, TandemWorkloads
    from benchmarks.etcd_workloads import EtcdWorkloads
    return clusters.EtcdCluster, EtcdWorkloads


class Session:
    """The state of one suite run: arguments, progress bar, the document being built."""

    def __init__(self, args: argparse.Namespace, bar: tqdm, document: dict):
        self.args, self.bar, self.document = args, bar, document

    def skip(self, system: str, name: str, reason: str, points: int) -> None:
        tqdm.write(f"skip {system} {name}: {reason}")
        self.document["skipped"].append({"system": system, "workload": name, "reason": reason})
        self.bar.update(points)

    def add(self, point: Point) -> None:
        summary = point.summary()
        self.document["points"].append(summary)
        self.bar.update(1)
        label = "" if point.series == "suite" else f"{point.series}={point.parameter:,}"
        tqdm.write(f"{point.system:8} {point.workload:13} {label:18} {point.concurrency:4} in flight: {summary['ops_per_s']:10,.0f} {point.unit}  "
                   f"p50 {summary['p50_ms']:.2f} ms  p99 {summary['p99_ms']:.2f} ms  errors {summary['errors']}")

    async def drive(self, built: Workload, concurrency: int, seconds: float) -> loadgen.RunResult:
        if built.driver is not None:
            return await built.driver(concurrency, seconds, self.args.mode, self.args.rate)
        return await loadgen.run(built.op, concurrency, seconds, self.args.mode, self.args.rate)

    async def measure(self, system: str, built: Workload, concurrency: int,
                      series: str = "suite", parameter: int = 0) -> Point:
        self.bar.set_description(f"{system} {built.name} {series if series != 'suite' else ''} {concurrency}")
        if built.prepare is not None:
            await built.prepare(concurrency)
        if self.args.warmup > 0:
            await self.drive(built, concurrency, self.args.warmup)
        runs = [report.run_record(await self.drive(built, concurrency, self.args.seconds))
                for _ in range(self.args.repeats)]
        return Point(system, built.name, concurrency, built.unit, runs, series, parameter)

    async def measure_or_skip(self, system: str, built: Workload, concurrency: int,
                              series: str = "suite", parameter: int = 0) -> None:
        try:
            self.add(await self.measure(system, built, concurrency, series, parameter))
        except (grpc.RpcError, AssertionError, RuntimeError, asyncio.TimeoutError) as error:
            self.skip(system, f"{built.name}@{concurrency}", f"failed: {type(error).__name__}: {error}"[:300], 1)


async def suite_points(session: Session, system: str, cluster, builder_class) -> None:
    args = session.args
    async with cluster.channel() as channel:
        builder = builder_class(channel, Options(tls=getattr(cluster, "client_tls", None)))
        for name in args.workloads:
            built = await builder.build(name)
            if isinstance(built, str):
                session.skip(system, name, built, len(args.concurrency))
                continue
            for concurrency in args.concurrency:
                await session.measure_or_skip(system, built, concurrency)
            if name in PROFILED_WORKLOADS and args.profile and system == "tandemkv":
                session.document.setdefault("profiles", {})[name] = await profile_put(
                    session, built, cluster.leader_pid)


async def profile_put(session: Session, built: Workload, pid: int) -> dict | None:
    if not pyspy.available():
        tqdm.write("no profile: py-spy is absent (pip install py-spy)")
        return None
    concurrency = max(session.args.concurrency)
    raw_path = session.args.out / f"profile-tandemkv-{built.name}.txt"
    process = await pyspy.record(pid, PROFILE_S, raw_path)
    await session.drive(built, concurrency, PROFILE_S + PROFILE_LEAD_S)
    _, stderr = await process.communicate()
    if process.returncode != 0 or not raw_path.exists():
        tqdm.write(f"no profile: py-spy failed: {stderr.decode(errors='replace')[-300:]}")
        return None
    return {"workload": built.name, "concurrency": concurrency, "seconds": PROFILE_S, "raw_file": raw_path.name,
            **pyspy.summarise(raw_path, PROFILE_S)}


async def growth_points(session: Session, system: str, cluster, builder_class) -> None:
    """Value size and key count series on the running 3-member cluster."""
    key_counts = GROWTH_KEY_COUNTS + ((GROWTH_KEY_COUNT_MILLION,) if session.args.million_keys else ())
    async with cluster.channel() as channel:
        for size in GROWTH_VALUE_BYTES:
            built = await builder_class(channel, Options(value_bytes=size)).build("put")
            await session.measure_or_skip(system, built, GROWTH_CONCURRENCY, "value_bytes", size)
        for count in key_counts:
            builder = builder_class(channel, Options(key_count=count))
            for name in ("get", "put"):
                await session.measure_or_skip(system, await builder.build(name), GROWTH_CONCURRENCY,
                                              "key_count", count)


async def node_points(session: Session, system: str, cluster, builder_class, nodes: int) -> None:
    async with cluster.channel() as channel:
        builder = builder_class(channel, Options())
        for name in ("put", "get"):
            await session.measure_or_skip(system, await builder.build(name), GROWTH_CONCURRENCY, "nodes", nodes)


async def process_points(session: Session, system: str, cluster) -> None:
    """Each many-clients workload of `system` from --processes processes,
    at each --process-concurrency (in flight per process)."""
    args = session.args
    for name in many_clients.WORKLOADS[system]:
        for concurrency in args.process_concurrency:
            async with many_clients.ProcessGroup(system, cluster.leader_endpoint, name, args.processes) as group:
                built = Workload(name, prepare=group.start, driver=group.run)
                await session.measure_or_skip(system, built, concurrency, "processes", args.processes)


def process_point_count(args: argparse.Namespace, system: str) -> int:
    if not args.processes or system not in many_clients.WORKLOADS:
        return 0
    return len(many_clients.WORKLOADS[system]) * len(args.process_concurrency)


def growth_point_count(args: argparse.Namespace) -> int:
    key_counts = len(GROWTH_KEY_COUNTS) + (1 if args.million_keys else 0)
    return len(GROWTH_VALUE_BYTES) + 2 * key_counts + 2 * len(GROWTH_NODES)


def run_system(session: Session, system: str) -> None:
    """Starts the system's cluster(s), measures, and always stops them."""
    cluster_class, builder_class = system_parts(system)
    with cluster_class(nodes=3) as cluster:
        tqdm.write(f"{system}: 3 members up, leader {cluster.leader_endpoint} (pid {cluster.leader_pid})")
        asyncio.run(suite_points(session, system, cluster, builder_class))
        if session.args.processes and system in many_clients.WORKLOADS:  # plaintext only
            asyncio.run(process_points(session, system, cluster))
        if session.args.growth:
            asyncio.run(growth_points(session, system, cluster, builder_class))
    for nodes in GROWTH_NODES if session.args.growth else ():
        with cluster_class(nodes=nodes) as cluster:
            asyncio.run(node_points(session, system, cluster, builder_class, nodes))


def finish(args: argparse.Namespace, document: dict) -> None:
    document.setdefault("load_average_end", os.getloadavg())
    document["ratios"] = report.ratios(document["points"])
    document["goals"] = report.goals(document["points"])
    try:
        from benchmarks import plots
    except ImportError:  # matplotlib comes with the bench extra, not with dev
        print("no plots: matplotlib is absent (pip install -e '.[bench]')")
        made = []
    else:
        made = [plots.throughput(document["points"], args.out / "suite-throughput.png"),
                plots.latency(document["points"], args.out / "suite-latency.png"),
                plots.growth(document["points"], args.out / "suite-growth.png")]
    document["plots"] = [path.name for path in made if path is not None]
    report.write_json(args.out / "suite.json", document)
    (args.out / "suite.md").write_text(markdown.render(document))
    print(markdown.render(document))
    print(f"wrote {args.out}/suite.json, suite.md, {', '.join(document['plots'])}")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.replot:
        args.out.mkdir(parents=True, exist_ok=True)
        finish(args, report.read_json(args.replot))
        return 0
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so every cluster is stopped.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args.out.mkdir(parents=True, exist_ok=True)
    absent = etcd_absence() if "etcd" in args.systems else None
    systems = [s for s in args.systems if not (s == "etcd" and absent)]
    document = {"command": "python -m benchmarks.suite " + " ".join(sys.argv[1:] if argv is None else argv),
                "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "machine": report.machine_info(clusters.etcd_version()), "points": [], "skipped": []}
    if absent:
        print(absent)
        document["skipped"].append({"system": "etcd", "workload": "all", "reason": absent})
    per_system = len(args.workloads) * len(args.concurrency) + (growth_point_count(args) if args.growth else 0)
    total = sum(per_system + process_point_count(args, system) for system in systems)
    with tqdm(total=total, unit="point", file=sys.stderr) as bar:
        session = Session(args, bar, document)
        try:
            for system in systems:
                run_system(session, system)
        finally:
            finish(args, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
