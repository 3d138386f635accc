"""One subscriber process of the pub/sub fan-out benchmark
(`benchmarks/pubsub_fanout.py` starts several): it opens N subscriptions to
one topic, each a "subscriber" that receives every message, on one
TandemKV node (SDK `AsyncClient`, one `Subscribe` stream per subscription,
all on the client's one channel) or on Redis (redis-py asyncio, one `PubSub`
and so one connection per subscription), and counts what they receive.

It talks to its parent in JSON lines: it says `opened`, then `warm` once
every subscription has received a message; it reads the measured window
(`begin`, `end`, `published_from`, perf_counter seconds, which every
process on the machine shares), says `windowed`, and later `expected` (messages surely
published), and answers with its
counts and its latency histogram once deliveries have stopped.

    python -m benchmarks.pubsub_fanout_worker SYSTEM ENDPOINT SUBSCRIBERS TOPIC
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from benchmarks import loadgen, workload

# Subscriptions opened at once while starting.
OPEN_IN_FLIGHT = 64
# After `report`: deliveries are over once every message the parent knows
# was published has been received or announced lagged, and none came for
# this long (a publish of unknown outcome may still arrive) ...
QUIET_S = 0.5
# ... or this long has passed, whatever is still queued somewhere.
DRAIN_S_MAX = 30.0
POLL_S = 0.05


class Tally:
    """Counts over all of this process's subscriptions."""

    def __init__(self, subscribers: int):
        self.histogram = loadgen.new_histogram()
        self.begin_s = self.end_s = float("inf")
        self.published_from_s = float("inf")
        self.warm = [False] * subscribers
        self.delivered_in_window = 0
        self.received_since_start = 0  # messages published after the load began
        self.lagged = 0
        self.errors: list[str] = []
        self.last_receipt_s = time.perf_counter()

    def message(self, subscriber: int, stamped: bytes) -> None:
        now_s = time.perf_counter()
        self.warm[subscriber] = True
        self.last_receipt_s = now_s
        sent_s = workload.STAMP.unpack_from(stamped)[0]
        if sent_s >= self.published_from_s:
            self.received_since_start += 1
        if self.begin_s <= now_s < self.end_s:
            self.delivered_in_window += 1
            latency_us = int((now_s - sent_s) * 1e6)
            self.histogram.record_value(max(loadgen.LATENCY_US_MIN, min(loadgen.LATENCY_US_MAX, latency_us)))


async def tandem_subscribers(endpoint: str, count: int, topic: str, tally: Tally) -> tuple[list, object]:
    from tandemkv.client import AsyncClient
    from tandemkv.client._pubsub_core import Lagged

    client = AsyncClient(endpoint)
    gate = asyncio.Semaphore(OPEN_IN_FLIGHT)

    async def open_one():
        async with gate:
            return await client.pubsub.subscribe(topic)

    subscriptions = await asyncio.gather(*(open_one() for _ in range(count)))

    async def consume(index: int, subscription) -> None:
        async for event in subscription:
            if isinstance(event, Lagged):
                tally.lagged += event.missed
            else:
                tally.message(index, event.payload)

    tasks = [asyncio.create_task(consume(i, s)) for i, s in enumerate(subscriptions)]

    async def close() -> None:
        for subscription in subscriptions:
            subscription.close()
        await client.close()

    return tasks, close


async def redis_subscribers(endpoint: str, count: int, topic: str, tally: Tally) -> tuple[list, object]:
    import redis.asyncio

    host, _, port = endpoint.rpartition(":")
    # One connection per PubSub: the pool must hold them all.
    client = redis.asyncio.Redis(host=host, port=int(port), max_connections=count + 1)
    gate = asyncio.Semaphore(OPEN_IN_FLIGHT)

    async def open_one():
        async with gate:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(topic)
            return pubsub

    subscriptions = await asyncio.gather(*(open_one() for _ in range(count)))

    async def consume(index: int, pubsub) -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                tally.message(index, message["data"])

    tasks = [asyncio.create_task(consume(i, s)) for i, s in enumerate(subscriptions)]

    async def close() -> None:
        for pubsub in subscriptions:
            await pubsub.aclose()
        await client.aclose()

    return tasks, close


def say(answer: dict) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


async def main(system: str, endpoint: str, count: int, topic: str) -> None:
    tally = Tally(count)
    opener = tandem_subscribers if system == "tandemkv" else redis_subscribers
    tasks, close = await opener(endpoint, count, topic, tally)
    say({"opened": count})
    loop = asyncio.get_running_loop()
    while not all(tally.warm):
        failed = [t for t in tasks if t.done()]
        if failed:
            raise SystemExit(f"a subscription ended while warming up: {failed[0].exception()!r}")
        await asyncio.sleep(POLL_S)
    say({"warm": True})
    # The parent's lines are read on a thread, so the loop keeps receiving.
    window = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    tally.begin_s, tally.end_s, tally.published_from_s = window["begin"], window["end"], window["published_from"]
    say({"windowed": True})  # the parent publishes only once every subscriber counts from the start
    expected = json.loads(await loop.run_in_executor(None, sys.stdin.readline))["expected"] * count
    started_s = time.perf_counter()
    while time.perf_counter() - started_s < DRAIN_S_MAX and (
            tally.received_since_start + tally.lagged < expected
            or time.perf_counter() - tally.last_receipt_s < QUIET_S):
        await asyncio.sleep(POLL_S)
    ended = sum(t.done() for t in tasks)
    for task in tasks:
        if task.done() and task.exception() is not None and len(tally.errors) < loadgen.ERROR_SAMPLES_MAX:
            tally.errors.append(repr(task.exception()))
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await close()
    say({"delivered_in_window": tally.delivered_in_window, "received_since_start": tally.received_since_start,
         "lagged": tally.lagged, "subscriptions_ended": ended, "errors": tally.errors, "cpu_s": time.process_time(),
         "histogram": tally.histogram.encode().decode("ascii")})


if __name__ == "__main__":
    system_name, address, subscribers, topic_name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    asyncio.run(main(system_name, address, subscribers, topic_name))
