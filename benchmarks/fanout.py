"""The watch fan-out driver, shared by both systems: N watchers on a fresh
prefix, WATCH_WRITERS_IN_FLIGHT writers putting stamped values into it.
Counts the events delivered to all watchers inside the measured window;
latency is delivery time minus the writer's send time (from the stamp).

A system supplies three coroutines: `revision()` (the store's current
revision), `watch(prefix, start_revision)` (an async iterator of event
values; started at a revision, so no event is missed while it connects),
and `put(key, value)`.

`python -m benchmarks.fanout --watches 10000` measures a node's memory
instead: its RSS idle and with that many watches of one SDK client open.
"""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Awaitable, Callable

from benchmarks import loadgen, workload

Watch = Callable[[bytes, int], AsyncIterator[bytes]]
# Seconds a run waits for every watcher to see the first event before measuring.
WATCH_SETTLE_S_MAX = 10.0


class _Tally:
    def __init__(self, stop_s: float):
        self.stop_s = stop_s
        self.measure_from_s = float("inf")
        self.histogram = loadgen.new_histogram()
        self.delivered = 0

    def event(self, stamped: bytes) -> None:
        now_s = time.perf_counter()
        if self.measure_from_s <= now_s < self.stop_s:
            self.delivered += 1
            latency_us = int(workload.stamp_age_s(stamped) * 1e6)
            self.histogram.record_value(max(loadgen.LATENCY_US_MIN, min(loadgen.LATENCY_US_MAX, latency_us)))


async def _watch_one(watch: Watch, prefix: bytes, start: int, tally: _Tally, ready: asyncio.Event) -> None:
    async for stamped in watch(prefix, start):
        ready.set()
        tally.event(stamped)
        if time.perf_counter() >= tally.stop_s:
            return


async def _settle(ready: list[asyncio.Event]) -> None:
    """Waits until every watcher has seen the first event."""
    try:
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), WATCH_SETTLE_S_MAX)
    except asyncio.TimeoutError:
        seen = sum(r.is_set() for r in ready)
        raise RuntimeError(f"only {seen} of {len(ready)} watchers saw the first event within "
                           f"{WATCH_SETTLE_S_MAX:.0f} s") from None


def make_driver(revision: Callable[[], Awaitable[int]], watch: Watch,
                put: Callable[[bytes, bytes], Awaitable[None]], value_bytes: int) -> workload.Driver:
    async def driver(watchers: int, seconds: float, mode: str, rate_per_s: float | None) -> loadgen.RunResult:
        prefix = b"w%07d/" % workload.unique_suffix()
        start = await revision() + 1
        tally = _Tally(stop_s=float("inf"))
        ready = [asyncio.Event() for _ in range(watchers)]
        tasks = [asyncio.create_task(_watch_one(watch, prefix, start, tally, r)) for r in ready]

        async def write(worker: int) -> None:
            await put(prefix + b"%08d" % worker, workload.stamped_value(value_bytes))

        try:
            await write(0)
            await _settle(ready)
            began_s = time.perf_counter()
            tally.measure_from_s, tally.stop_s = began_s, began_s + seconds
            writers = await loadgen.run(write, workload.WATCH_WRITERS_IN_FLIGHT, seconds, mode, rate_per_s)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return loadgen.RunResult(tally.delivered, seconds, tally.histogram, writers.errors, writers.error_samples)

    return driver


# Single puts timed for the put-latency figures beside the watch memory.
PUT_SAMPLES = 1_000


def _put_p50_p99_ms(writer) -> tuple[float, float]:
    """p50 and p99 (ms) of PUT_SAMPLES single puts, one at a time, to keys
    no watch follows."""
    import time

    latencies = []
    for i in range(PUT_SAMPLES):
        started = time.perf_counter()
        writer.put(f"unwatched/{i % 100}", "v")
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]


def measure_watch_memory(watches: int, root: str) -> dict[str, float]:
    """A node's RSS (MiB) idle, with `watches` watches of one SDK client
    open on it (one multiplexed stream), and after one write each of them
    receives; and the p50/p99 of a single put to keys no watch follows,
    without the watches and with them open; a fresh 3-node cluster under
    `root`."""
    from tandemkv.client import Client
    from tests.support.cluster import ServeCluster, rss_bytes

    mib = 1024 * 1024
    with ServeCluster(root, nodes=3) as cluster:
        leader = cluster.wait_for_leader(60.0)
        pid = cluster.processes[leader].pid
        with Client(cluster.endpoint(leader)) as client, Client(cluster.endpoints) as writer:
            start = writer.put("rss/start", "x").revision + 1
            idle = rss_bytes(pid) / mib
            put_p50_without, put_p99_without = _put_p50_p99_ms(writer)
            watchers = [client.watch("rss/", prefix=True, start_revision=start) for _ in range(watches)]
            events = [iter(w) for w in watchers]
            writer.put("rss/first", "y")
            next(events[-1])  # the last watch created is open on the node, and so are all before it
            opened = rss_bytes(pid) / mib
            for each in events[:-1]:
                next(each)
            delivered = rss_bytes(pid) / mib
            put_p50_with, put_p99_with = _put_p50_p99_ms(writer)
            streams = client._watch_streams().streams_open
            for watcher in watchers:
                watcher.close()
    return {"watches": watches, "streams": streams, "idle_mib": idle, "open_mib": opened,
            "after_one_event_each_mib": delivered, "put_p50_ms_without": put_p50_without,
            "put_p99_ms_without": put_p99_without, "put_p50_ms_with": put_p50_with,
            "put_p99_ms_with": put_p99_with}


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="a node's RSS, and a single put's latency, with N watches "
                                                 "of one SDK client open")
    parser.add_argument("--watches", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        figures = measure_watch_memory(args.watches, root)
    print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
