"""How fast the best-effort relay moves messages between two pub/sub planes
in one process (one event loop does both ends' work, so this is a floor for
two nodes on two processes): messages published on node a, received by one
subscriber on node b.

    python benchmarks/pubsub_relay.py [--messages 100000] [--payload-bytes 64]

Prints delivered messages/s, frames used (batching) and what was lost (the
publisher runs ahead of the relay, so with a small queue the oldest go and
are counted). Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import grpc

from tandemkv.server.available.pubsub import GapCounter
from tandemkv.server.available.pubsub_plane import PubSubPlane
from tandemkv.v1 import pubsub_pb2_grpc

SECRET = b"benchmark"
# Messages published between two yields to the loop (so the relay runs too).
PUBLISH_BURST = 1_000


async def measure(messages: int, payload_bytes: int) -> dict[str, float]:
    servers, addresses = {}, {}
    for name in ("a", "b"):
        servers[name] = grpc.aio.server()
        addresses[name] = f"127.0.0.1:{servers[name].add_insecure_port('127.0.0.1:0')}"
    planes = {name: PubSubPlane(name, {other: addresses[other] for other in addresses if other != name}, SECRET)
              for name in addresses}
    for name, server in servers.items():
        pubsub_pb2_grpc.add_PubSubServicer_to_server(planes[name].receiver, server)
        await server.start()
        planes[name].start()
    subscription = planes["b"].subscribe(topics=(b"bench",))
    # One message first, so the stream is open before the clock starts.
    planes["a"].publish(b"bench", b"warm-up")
    counter = GapCounter(from_start=True)
    warm_up = await subscription.next_events(timeout_s=10.0)
    assert warm_up, "the relay did not open in 10 s"
    for event in warm_up:
        counter.observe(event)
    payload = bytes(payload_bytes)
    started = time.perf_counter()

    async def publish():
        for i in range(messages):
            planes["a"].publish(b"bench", payload)
            if i % PUBLISH_BURST == PUBLISH_BURST - 1:
                await asyncio.sleep(0)

    publishing = asyncio.ensure_future(publish())
    # Lag notices stand in for what the subscriber's buffer dropped; the
    # numbers' jumps count those and what the relay's queue dropped.
    while counter.received + counter.missing < messages + 1:
        events = await subscription.next_events(timeout_s=10.0)
        if not events:
            break
        for event in events:
            counter.observe(event)
    elapsed = time.perf_counter() - started
    await publishing
    sender = planes["a"].senders["b"]
    result = {"messages": messages, "received": counter.received, "lagged": counter.lagged,
              "missing_by_numbers": counter.missing, "queue_overflowed": sender.queue.overflowed_total,
              "frames": sender.frames_sent, "seconds": round(elapsed, 3),
              "received_per_s": round(counter.received / elapsed)}
    for plane in planes.values():
        await plane.stop()
    for server in servers.values():
        await server.stop(None)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--payload-bytes", type=int, default=64)
    arguments = parser.parse_args()
    print(asyncio.run(measure(arguments.messages, arguments.payload_bytes)))


if __name__ == "__main__":
    main()
