"""Benchmark of the strong plane without gRPC: an embedded 3-node cluster.

Two members run as separate processes; the third runs in this process and
is made leader (shorter election timeouts), and the load is driven against
it through the embedded `Node` API with N operations in flight (asyncio).
Measures durable counter increments/s and linearizable reads/s, with p50 and
p99 latency, at each concurrency.

    python -m benchmarks.embedded_strong [--seconds 4] [--warmup 1] [--repeats 3] \
        [--concurrency 1,16,64,256] [--workloads incr,read] \
        [--durability durable|relaxed] [--json out.json]

Each figure is the median of `--repeats` runs (the spread is printed);
latency percentiles are exact, from every operation of the median run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.clusters import free_ports
from tandemkv.server import Member, Node, NodeConfig, RaftTimings
from tandemkv.v1 import counter_pb2

LEADER_TIMINGS = RaftTimings(election_timeout_min_s=0.3, election_timeout_max_s=0.5)
FOLLOWER_TIMINGS = RaftTimings(election_timeout_min_s=3.0, election_timeout_max_s=5.0)
READY_S = 30.0
WORKLOAD_FLAGS = {"durable increments": "incr", "linearizable reads": "read"}


def _config(member, members, base, timings, durability):
    return NodeConfig(name=member.name, data_dir=Path(base) / member.name,
                      raft_address=member.raft_address, peers=members, timings=timings,
                      durability=durability)


def run_follower(args) -> None:
    members = [Member(n, a) for n, a in json.loads(args.members)]
    me = next(m for m in members if m.name == args.name)
    node = Node(_config(me, members, args.base, FOLLOWER_TIMINGS, args.durability))
    node.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    node.stop()


async def _drive(node: Node, make_request, concurrency: int, seconds: float, write: bool):
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds

    async def worker():
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            if write:
                await node.propose_async(make_request())
            else:
                await node.query_async(make_request())
            latencies.append(time.perf_counter() - started)

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - began
    return len(latencies) / elapsed, latencies


def _percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


async def _measure(node, args):
    # Unique ids as a client library would make them, without a system call
    # each: the load generator shares the leader's process and its GIL.
    prefix, serial = os.urandom(8), itertools.count()
    incr = lambda: counter_pb2.CounterIncrRequest(
        name=b"bench", delta=1, request_id=prefix + next(serial).to_bytes(8, "big"))
    read = lambda: counter_pb2.CounterGetRequest(name=b"bench")
    rows = []
    chosen = [w for w in (("durable increments", incr, True), ("linearizable reads", read, False))
              if WORKLOAD_FLAGS[w[0]] in args.workloads]
    for workload, make, write in chosen:
        for concurrency in args.concurrency:
            await _drive(node, make, concurrency, args.warmup, write)
            runs = [await _drive(node, make, concurrency, args.seconds, write)
                    for _ in range(args.repeats)]
            runs.sort(key=lambda run: run[0])
            rate, latencies = runs[len(runs) // 2]
            latencies.sort()
            rows.append({"workload": workload, "in_flight": concurrency, "ops_per_s": rate,
                         "ops_per_s_min": runs[0][0], "ops_per_s_max": runs[-1][0],
                         "p50_ms": 1000 * _percentile(latencies, 0.5),
                         "p99_ms": 1000 * _percentile(latencies, 0.99)})
            print(f"| {workload} | {concurrency} | {rate:,.0f} ({runs[0][0]:,.0f}–{runs[-1][0]:,.0f}) "
                  f"| {rows[-1]['p50_ms']:.2f} | {rows[-1]['p99_ms']:.2f} |", flush=True)
    return rows


def _machine() -> str:
    import platform
    from importlib.metadata import version

    return (f"{os.cpu_count()} cores, Python {platform.python_version()}, "
            f"pysyncobj {version('pysyncobj')}, lmdb {version('lmdb')}, "
            f"protobuf {version('protobuf')}")


def run_leader(args) -> None:
    ports = free_ports(3)
    members = [Member(f"n{i}", f"127.0.0.1:{ports[i]}") for i in range(3)]
    base = tempfile.mkdtemp(prefix="tkv-bench-")
    followers = [subprocess.Popen([sys.executable, "-m", "benchmarks.embedded_strong",
                                   "--role", "follower", "--name", m.name, "--base", base,
                                   "--durability", args.durability, "--members",
                                   json.dumps([(x.name, x.raft_address) for x in members])])
                 for m in members[1:]]
    node = Node(_config(members[0], members, base, LEADER_TIMINGS, args.durability))
    try:
        node.start()
        node.wait_ready(READY_S)
        if node.status().role != "leader":
            raise SystemExit("the in-process member did not become leader; run again")
        print(f"machine: {_machine()}; durability={args.durability}; {args.repeats} runs of "
              f"{args.seconds} s after {args.warmup} s warm-up")
        print("| workload | in flight | ops/s median (min–max) | p50 ms | p99 ms |")
        print("|---|---|---|---|---|")
        rows = asyncio.run(_measure(node, args))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
    finally:
        node.stop()
        for follower in followers:
            follower.send_signal(signal.SIGTERM)
        for follower in followers:
            follower.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["leader", "follower"], default="leader")
    parser.add_argument("--name")
    parser.add_argument("--base")
    parser.add_argument("--members")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 16, 64, 256])
    parser.add_argument("--workloads", type=lambda s: s.split(","), default=["incr", "read"],
                        help="comma-separated: incr, read")
    parser.add_argument("--durability", choices=["durable", "relaxed"], default="durable")
    parser.add_argument("--json")
    args = parser.parse_args()
    (run_follower if args.role == "follower" else run_leader)(args)


if __name__ == "__main__":
    main()
