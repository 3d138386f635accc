"""How fast durable topics go on three embedded nodes in one process (no
gRPC): publishes on the leader, one at a time and with many in flight, and
how long a published message takes to reach an asyncio subscriber on a
follower.

    python -m benchmarks.durable_topics [--messages 2000] [--in-flight 64] \
        [--topics 16] [--payload-bytes 100]

All three members share this process's interpreter (and its GIL), so the
figures are a floor for three processes. Not a test: nothing here asserts a
speed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.clusters import free_ports
from tandemkv.server import Member, Node, NodeConfig, RaftTimings
from tandemkv.server.node.topics import TopicGap

TIMINGS = RaftTimings(election_timeout_min_s=0.4, election_timeout_max_s=0.8, leader_fallback_timeout_s=1.5)
READY_S = 30.0


def start_cluster(base: Path) -> list[Node]:
    ports = free_ports(3)
    members = [Member(f"n{i}", f"127.0.0.1:{port}") for i, port in enumerate(ports)]
    nodes = [Node(NodeConfig(name=m.name, data_dir=base / m.name, raft_address=m.raft_address,
                             peers=members, timings=TIMINGS)) for m in members]
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_ready(READY_S)
    return nodes


def leader_of(nodes: list[Node]) -> Node:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        leaders = [n for n in nodes if n.status().role == "leader"]
        if len(leaders) == 1:
            return leaders[0]
        time.sleep(0.02)
    raise RuntimeError("no single leader")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def one_at_a_time(leader: Node, messages: int, payload: bytes) -> dict[str, float]:
    latencies = []
    started = time.perf_counter()
    for _ in range(messages):
        sent = time.perf_counter()
        leader.topics.publish(b"sequential", payload)
        latencies.append(time.perf_counter() - sent)
    elapsed = time.perf_counter() - started
    return {"publishes/s": messages / elapsed, "p50 ms": statistics.median(latencies) * 1e3,
            "p99 ms": percentile(latencies, 0.99) * 1e3}


async def in_flight(leader: Node, messages: int, concurrency: int, topics: int, payload: bytes) -> dict[str, float]:
    slots = asyncio.Semaphore(concurrency)

    async def publish(i: int) -> None:
        async with slots:
            await leader.topics.publish_async(b"parallel/%d" % (i % topics), payload)

    started = time.perf_counter()
    await asyncio.gather(*(publish(i) for i in range(messages)))
    return {"publishes/s": messages / (time.perf_counter() - started)}


async def delivery(leader: Node, follower: Node, messages: int, payload: bytes) -> dict[str, float]:
    """Publish -> an asyncio subscriber on a follower, one message at a time."""
    received: dict[int, float] = {}
    sent: dict[int, float] = {}
    placed = asyncio.Event()

    async def subscribe() -> None:
        first = leader.topics.read(b"latency").next_offset
        placed.set()
        async for event in follower.topics.subscribe_async(b"latency", first):
            assert not isinstance(event, TopicGap)
            received[event.offset] = time.perf_counter()
            if len(received) == messages:
                return

    subscriber = asyncio.create_task(subscribe())
    await placed.wait()
    for _ in range(messages):
        at = time.perf_counter()
        sent[(await leader.topics.publish_async(b"latency", payload)).offset] = at
    await asyncio.wait_for(subscriber, READY_S)
    delays = [received[offset] - at for offset, at in sent.items()]
    return {"p50 ms": statistics.median(delays) * 1e3, "p99 ms": percentile(delays, 0.99) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--topics", type=int, default=16)
    parser.add_argument("--payload-bytes", type=int, default=100)
    args = parser.parse_args()
    payload = b"x" * args.payload_bytes
    with tempfile.TemporaryDirectory() as base:
        nodes = start_cluster(Path(base))
        try:
            leader = leader_of(nodes)
            follower = next(n for n in nodes if n is not leader)
            rows = {
                "one publish at a time": one_at_a_time(leader, min(args.messages, 500), payload),
                f"{args.in_flight} in flight over {args.topics} topics":
                    asyncio.run(in_flight(leader, args.messages, args.in_flight, args.topics, payload)),
                "publish -> subscriber on a follower": asyncio.run(
                    delivery(leader, follower, min(args.messages, 500), payload)),
            }
        finally:
            for node in nodes:
                node.stop()
    for name, figures in rows.items():
        print(f"{name:45s} " + "  ".join(f"{key} {value:,.1f}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
