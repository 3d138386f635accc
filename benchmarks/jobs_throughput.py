"""Job queues, enqueue to completion: TandemKV's (3 `tandemkv serve` nodes,
the SDK's `client.jobs.worker`) beside RQ and arq on one local
`redis-server` (Debian's), the same no-op job, same run, same machine.

    python -m benchmarks.jobs_throughput [--workers 1,8,64] [--jobs 2000] [--redis shipped,everysec]
                                         [--systems tandemkv,rq,arq] [--prefetch 0,16] [--profile] [--profile-worker]

For each system and worker count N (N jobs may run at once):
- TandemKV: ceil(N / 16) worker processes sharing N handler threads
  (the SDK worker claims as many jobs as it has free threads; the jobs
  that finish together settle in one Settle request, which claims the
  next ones for their threads in the same Raft entry; with `--prefetch P`,
  P more per process, claimed ahead);
- arq: ceil(N / 16) worker processes sharing N as `max_jobs`
  (poll_delay 0.05 s, ten times quicker than arq's default 0.5 s);
- RQ: N `SimpleWorker` processes forked by one `WorkerPool` (RQ runs one
  job at a time per worker process).
Workers start, a warm-up batch runs, then the driver enqueues `--jobs`
jobs, ENQUEUES_IN_FLIGHT at a time (TandemKV: EnqueueMany requests of that
many, one Raft entry each, one after another; RQ: `enqueue_many`
pipelines of that many; arq, which has no batch enqueue: that many
enqueues at once from its asyncio pool) and waits until all completed. jobs/s: jobs / (last completion - first
enqueue); latency: each job's completion minus its enqueue, by the
systems' own stamps (TandemKV's log clock ms, RQ's enqueued_at/ended_at,
arq's enqueue_time/finish_time), so it includes the wait behind the batch.

Redis runs in a temporary directory on 127.0.0.1, `shipped` (redis-server's
defaults: RDB snapshots, no AOF) and `everysec` (appendonly yes,
appendfsync everysec: up to a second of acknowledged jobs lost on a
crash); TandemKV fsyncs every Raft entry on a majority before it answers.
`--profile`: py-spy records the TandemKV leader through its last point;
`--profile-worker`: the first TandemKV worker process of its last point,
from the end of the warm-up (give it jobs enough to outlast --profile-s).
Needs `pip install rq arq` (the bench extra has them) and redis-server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import clusters, pyspy
from benchmarks.jobs_throughput_queues import POLL_S, REDIS_MODES, ArqQueue, Redis, RqQueue, TandemQueue
from benchmarks.pubsub_fanout import cpu_s

WARM_UP_JOBS = 50
# Handler slots one worker process holds at most (TandemKV threads, arq max_jobs).
SLOTS_PER_PROCESS_MAX = 16
# How long a point may take to finish its jobs, and how often it looks.
POINT_TIMEOUT_S = 300.0
WORKER_STOP_S = 15.0


def layout(system: str, workers: int) -> list[int]:
    """Handler slots of each worker process started for N = `workers` (RQ:
    one pool process, which forks N single-job workers)."""
    if system == "rq":
        return [workers]
    processes = math.ceil(workers / SLOTS_PER_PROCESS_MAX)
    return [workers // processes + (1 if k < workers % processes else 0) for k in range(processes)]


def start_workers(system: str, where: str, queue: str, workers: int, prefetch: int = 0) -> list[subprocess.Popen]:
    """The worker processes of a point; TandemKV's claim `prefetch` jobs
    ahead each (`--prefetch`)."""
    extra = [str(prefetch)] if system == "tandemkv" and prefetch else []
    return [subprocess.Popen([sys.executable, "-m", "benchmarks.jobs_throughput_worker", system, where, queue,
                              str(slots), *extra], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for slots in layout(system, workers)]


# -- a point -----------------------------------------------------------------

async def wait_completed(queue: Any, target: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        done = await asyncio.to_thread(queue.completed)
        if done >= target:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_S)


async def run_point(system: str, queue: Any, where: str, queue_name: str, workers: int, jobs: int,
                    redis_mode: str, profile_worker_s: int = 0, prefetch: int = 0) -> dict[str, Any]:
    processes = start_workers(system, where, queue_name, workers, prefetch)
    row: dict[str, Any] = {"system": system if not prefetch else f"{system} prefetch={prefetch}",
                           "redis": redis_mode, "workers": workers,
                           "processes": workers if system == "rq" else len(processes), "jobs": jobs}
    try:
        await queue.enqueue(WARM_UP_JOBS)
        if not await wait_completed(queue, WARM_UP_JOBS, POINT_TIMEOUT_S):
            return {**row, "error": "the warm-up did not complete"}
        warm = len(queue.ids)
        profiling = None
        if profile_worker_s and pyspy.available():
            raw = Path(tempfile.mkdtemp(prefix="jobs-worker-pyspy-")) / "worker.raw"
            profiling = (await pyspy.record(processes[0].pid, profile_worker_s, raw), raw)
        started = time.time()
        await queue.enqueue(jobs)
        row["enqueue_s"] = round(time.time() - started, 2)
        if not await wait_completed(queue, warm + jobs, POINT_TIMEOUT_S):
            return {**row, "error": f"not all {jobs} jobs completed within {POINT_TIMEOUT_S:g} s"}
        if profiling is not None:
            await profiling[0].wait()
            row["worker_profile"] = pyspy.summarise(profiling[1], profile_worker_s)
        ids = queue.ids[warm:]
        stamps = await queue.stamps_async(ids) if hasattr(queue, "stamps_async") else \
            await asyncio.to_thread(queue.stamps, ids)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=WORKER_STOP_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    latencies = sorted(finish - enqueued for enqueued, finish in stamps)
    span_s = max(finish for _, finish in stamps) - min(enqueued for enqueued, _ in stamps)
    return {**row, "measured": len(stamps), "jobs_per_s": round(len(stamps) / span_s, 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)}


async def run_tandemkv(args: argparse.Namespace, rows: list[dict[str, Any]], report: dict[str, Any]) -> None:
    with clusters.TandemCluster(nodes=3) as cluster:
        endpoints = [config.client_address for config in cluster.cluster.configs.values()]
        leader_cpu_before = cpu_s(cluster.leader_pid)
        points = [(workers, prefetch) for workers in args.workers for prefetch in args.prefetch]
        for index, (workers, prefetch) in enumerate(points):
            queue_name = f"bench-{workers}-{prefetch}"
            queue = TandemQueue(endpoints, queue_name)
            profiling = None
            last = index == len(points) - 1
            if args.profile and last and pyspy.available():
                raw = Path(tempfile.mkdtemp(prefix="jobs-pyspy-")) / "leader.raw"
                profiling = (await pyspy.record(cluster.leader_pid, args.profile_s, raw), raw)
            try:
                rows.append(await run_point("tandemkv", queue, ",".join(endpoints), queue_name, workers, args.jobs,
                                            "-", args.profile_s if args.profile_worker and last else 0, prefetch))
            finally:
                await queue.close()
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "worker_profile"}), flush=True)
            if "worker_profile" in rows[-1]:
                report["worker_profile"] = rows[-1].pop("worker_profile")
            if profiling is not None:
                await profiling[0].wait()
                report["leader_profile"] = pyspy.summarise(profiling[1], args.profile_s)
        report["leader_cpu_s"] = round(cpu_s(cluster.leader_pid) - leader_cpu_before, 1)


async def run_redis_systems(args: argparse.Namespace, rows: list[dict[str, Any]], report: dict[str, Any]) -> None:
    for mode in args.redis:
        with Redis(mode) as server:
            report.setdefault("redis_settings", {})[mode] = server.settings()
            for system in [s for s in args.systems if s in ("rq", "arq")]:
                for workers in args.workers:
                    queue_name = f"bench-{system}-{workers}"
                    queue = RqQueue(server.url, queue_name) if system == "rq" else ArqQueue(server.url, queue_name)
                    try:
                        rows.append(await run_point(system, queue, server.url, queue_name, workers, args.jobs, mode))
                    finally:
                        await queue.close()
                    print(json.dumps(rows[-1]), flush=True)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| system | Redis | workers (processes) | jobs/s | p50 / p99 ms | enqueue s |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['system']} | {row['redis']} | {row['workers']} ({row['processes']}) | "
                         f"error: {row['error']} | | |")
            continue
        lines.append(f"| {row['system']} | {row['redis']} | {row['workers']} ({row['processes']}) | "
                     f"{row['jobs_per_s']:,.0f} | {row['p50_ms']:,.0f} / {row['p99_ms']:,.0f} | {row['enqueue_s']} |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"load_average_start": os.getloadavg(), "jobs": args.jobs,
                              "command": " ".join(["python -m benchmarks.jobs_throughput", *sys.argv[1:]])}
    if "tandemkv" in args.systems:
        await run_tandemkv(args, rows, report)
    if {"rq", "arq"} & set(args.systems):
        missing = [name for name in ("rq", "arq") if name in args.systems and not _importable(name)]
        if shutil.which("redis-server") is None or missing:
            report["skipped"] = (f"redis-server {'absent' if shutil.which('redis-server') is None else 'present'}, "
                                 f"missing Python packages {missing}: apt-get install redis-server; pip install rq arq")
        else:
            await run_redis_systems(args, rows, report)
    report["load_average_end"] = os.getloadavg()
    report["rows"] = rows
    return report


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jobs_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=lambda t: [int(n) for n in t.split(",")], default=[1, 8, 64])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs measured per point")
    parser.add_argument("--systems", type=lambda t: t.split(","), default=["tandemkv", "rq", "arq"])
    parser.add_argument("--redis", type=lambda t: t.split(","), default=list(REDIS_MODES),
                        help="Redis settings: shipped, everysec")
    parser.add_argument("--profile", action="store_true", help="py-spy the TandemKV leader through the last point")
    parser.add_argument("--prefetch", type=lambda t: [int(n) for n in t.split(",")], default=[0],
                        help="TandemKV: jobs each worker process claims ahead of free slots (one point each)")
    parser.add_argument("--profile-worker", action="store_true",
                        help="py-spy the first TandemKV worker process through the last point's batch")
    parser.add_argument("--profile-s", type=int, default=20, help="seconds the profile records")
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    args = parser.parse_args(argv)
    unknown = [mode for mode in args.redis if mode not in REDIS_MODES]
    if unknown:
        parser.error(f"unknown --redis {unknown}; use {', '.join(REDIS_MODES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(main_async(args))
    print(markdown(report["rows"]))
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2))
    return 0 if report["rows"] and all("error" not in row for row in report["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
