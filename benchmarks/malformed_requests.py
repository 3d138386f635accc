"""Malformed requests against one node of a real 3-node cluster: what they
cost the node in memory and log, and what status they get.

    python -m benchmarks.malformed_requests [--requests 100000] [--senders 8]

Sends bytes that are never a valid encoding (a length past the end, a
wire type that does not exist, invalid UTF-8 in a string field;
tests/support/fuzz.py) round-robin over every RPC of proto/tandemkv/v1,
all to node n1; samples n1's RSS before, every tenth of the run and after,
counts the status codes and n1's log growth, checks the cluster still
takes a write, and prints a Markdown table (for benchmarks/RESULTS.md).
The node must stay within RSS_GROWTH_BYTES_MAX of where it started.
"""

from __future__ import annotations

import argparse
import collections
import random
import tempfile
import time
from concurrent import futures
from pathlib import Path

import grpc

from tandemkv.client import NO_RETRY, Client
from tests.support.cluster import ServeCluster, rss_bytes
from tests.support.fuzz import invalid_utf8_cases, random_bytes, rpc_methods, send

RSS_GROWTH_BYTES_MAX = 20 << 20
SAMPLES = 10
SEED = 11



def malformed_cases(rng: random.Random, count: int) -> list:
    rpcs = [rpc for rpc in rpc_methods() if not rpc.streaming]
    utf8 = [(rpc, raw) for rpc in rpcs for raw in invalid_utf8_cases(rpc.method.input_type)]
    cases = []
    for k in range(count):
        rpc = rpcs[k % len(rpcs)]
        kind = k % 3
        if kind == 0:  # field 1 declares more bytes than follow
            tail = random_bytes(rng)
            raw = b"\x0a" + bytes([len(tail) + 5]) + tail
        elif kind == 1:  # wire type 7 (none such), then anything
            raw = b"\x0f" + random_bytes(rng)
        else:
            rpc, raw = utf8[k % len(utf8)]
        cases.append((rpc, raw))
    return cases


def run(requests: int, senders: int) -> int:
    rng = random.Random(SEED)
    cases = malformed_cases(rng, requests)
    with tempfile.TemporaryDirectory() as root, ServeCluster(Path(root)) as cluster:
        cluster.wait_for_leader(timeout_s=60)
        pid = cluster.processes["n1"].pid
        log_path = cluster.log_path("n1")
        with grpc.insecure_channel(cluster.endpoint("n1")) as channel:
            for rpc, raw in cases[:2000]:  # warm up: first-call allocations are not a leak
                send(channel, rpc, raw)
            rss_start, log_start = rss_bytes(pid), log_path.stat().st_size
            codes: collections.Counter = collections.Counter()
            samples = [rss_start]
            began = time.monotonic()
            step = max(1, requests // SAMPLES)
            with futures.ThreadPoolExecutor(senders) as pool:
                for start in range(0, requests, step):
                    chunk = cases[start:start + step]
                    codes.update(pool.map(lambda case: send(channel, *case), chunk))
                    samples.append(rss_bytes(pid))
            elapsed_s = time.monotonic() - began
        rss_end, log_end = rss_bytes(pid), log_path.stat().st_size
        with Client(cluster.endpoints, retry=NO_RETRY) as client:
            client.put(b"after-malformed", b"ok")
            wrote = client.get(b"after-malformed") == b"ok"
        alive = all(p.poll() is None for p in cluster.processes.values())
    grown = rss_end - rss_start
    mib = 1 << 20
    print(f"| requests | {requests} malformed, {senders} senders, {elapsed_s:.1f} s "
          f"({requests / elapsed_s:.0f}/s) |")
    print(f"| n1 RSS | {rss_start / mib:.1f} MiB → {rss_end / mib:.1f} MiB "
          f"({grown / mib:+.1f} MiB; max during run {max(samples) / mib:.1f} MiB) |")
    print(f"| n1 log growth | {log_end - log_start} bytes |")
    print("| statuses | " + ", ".join(f"{c.name} {n}" for c, n in codes.most_common()) + " |")
    print(f"| after | nodes alive: {alive}; a write committed: {wrote} |")
    ok = grown < RSS_GROWTH_BYTES_MAX and alive and wrote and set(codes) == {grpc.StatusCode.INVALID_ARGUMENT}
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=8)
    args = parser.parse_args()
    return run(args.requests, args.senders)


if __name__ == "__main__":
    raise SystemExit(main())
