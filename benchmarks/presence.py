"""Presence on three `tandemkv serve` processes, over gRPC (the Presence
service, no SDK in the way):

- N entries tracked over the three nodes (one session per node, calls
  pipelined), and how long until every node lists all of them;
- `list` latency of that N-key topic and of a 100-key topic, on a node
  that owns none of the 100;
- churn: one client tracking and untracking one key after another on one
  node, joins + leaves per second;
- how long after a SIGKILL a node's entries have left the two others
  (bounded by PRESENCE_NODE_DOWN_MS + PRESENCE_CLOCK_SKEW_MS_MAX after its
  last frame).

    python -m benchmarks.presence [--entries 10000] [--churn-s 3]

Prints one line per figure. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import grpc

from tandemkv.v1 import presence_pb2 as pb, presence_pb2_grpc

NODES = ("n1", "n2", "n3")
START_TIMEOUT_S = 120.0
CONVERGE_TIMEOUT_S = 300.0
POLL_S = 0.05
LIST_SAMPLES = 200
SMALL_TOPIC_KEYS = 100
SESSION_TTL_MS = 600_000


def wait_for(condition, timeout_s: float, what: str) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout_s:
            raise SystemExit(f"{what}: not within {timeout_s} s")
        time.sleep(POLL_S)
    return time.perf_counter() - started


def list_latencies_ms(stub, topic: bytes, samples: int) -> list[float]:
    latencies = []
    for _ in range(samples):
        started = time.perf_counter()
        stub.List(pb.PresenceListRequest(topic=topic))
        latencies.append((time.perf_counter() - started) * 1000)
    return sorted(latencies)


def run(entries: int, churn_s: float) -> None:
    from tests.support.cluster import ServeCluster  # the repository's harness: run from its root

    with ServeCluster(tempfile.mkdtemp(prefix="presence-bench-"), nodes=3) as cluster:
        stubs = {}
        for name in NODES:
            channel = grpc.insecure_channel(cluster.endpoint(name))
            grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_S)
            stubs[name] = presence_pb2_grpc.PresenceStub(channel)
        sessions = {name: stubs[name].Open(pb.PresenceOpenRequest(ttl_ms=SESSION_TTL_MS)).session for name in NODES}

        def listed(name: str, topic: bytes = b"big") -> int:
            return len(stubs[name].List(pb.PresenceListRequest(topic=topic)).keys)

        started = time.perf_counter()
        calls = [stubs[name].Track.future(pb.PresenceTrackRequest(session=sessions[name], topic=b"big",
                                                                  key=b"user:%07d" % k, meta=b'{"s":1}'))
                 for k, name in ((k, NODES[k % 3]) for k in range(entries))]
        for call in calls:
            call.result()
        tracked_s = time.perf_counter() - started
        wait_for(lambda: all(listed(name) == entries for name in NODES), CONVERGE_TIMEOUT_S, "converged")
        converged_s = time.perf_counter() - started
        print(f"{entries} entries tracked over 3 nodes in {tracked_s:.2f} s ({entries / tracked_s:.0f}/s); "
              f"listed on every node after {converged_s:.2f} s")
        big = list_latencies_ms(stubs["n2"], b"big", 20)
        print(f"list of the {entries}-key topic on n2: median {statistics.median(big):.1f} ms")
        for k in range(SMALL_TOPIC_KEYS):
            stubs["n1"].Track(pb.PresenceTrackRequest(session=sessions["n1"], topic=b"small", key=b"k%d" % k))
        wait_for(lambda: listed("n2", b"small") == SMALL_TOPIC_KEYS, CONVERGE_TIMEOUT_S, "small topic")
        small = list_latencies_ms(stubs["n2"], b"small", LIST_SAMPLES)
        print(f"list of a {SMALL_TOPIC_KEYS}-key topic on n2: median {statistics.median(small):.2f} ms, "
              f"p99 {small[int(len(small) * 0.99) - 1]:.2f} ms")
        operations, started = 0, time.perf_counter()
        while time.perf_counter() - started < churn_s:
            request = pb.PresenceTrackRequest(session=sessions["n1"], topic=b"churn", key=b"c%d" % operations)
            stubs["n1"].Track(request)
            stubs["n1"].Untrack(request)
            operations += 2
        print(f"churn, one client, one call at a time: {operations / (time.perf_counter() - started):.0f} "
              "joins + leaves/s")
        owned_by_n3 = len(range(2, entries, 3))
        killed_at = time.perf_counter()
        cluster.kill("n3")
        wait_for(lambda: all(listed(name) == entries - owned_by_n3 for name in ("n1", "n2")), CONVERGE_TIMEOUT_S,
                 "n3's entries gone")
        print(f"n3 killed: its {owned_by_n3} entries left n1 and n2 {time.perf_counter() - killed_at:.1f} s "
              "after the SIGKILL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--churn-s", type=float, default=3.0)
    args = parser.parse_args()
    run(args.entries, args.churn_s)


if __name__ == "__main__":
    main()
