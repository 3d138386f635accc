"""Best-effort pub/sub broadcast fan-out, TandemKV beside Redis pub/sub, in
the same run on the same machine.

    python -m benchmarks.pubsub_fanout [--subscribers 10,1000,10000] [--publishers 1,16]
                                       [--seconds 5] [--in-flight 64] [--systems tandemkv,redis] [--profile]

Publishers keep `--in-flight` publishes unanswered (default
IN_FLIGHT_DEFAULT): TandemKV's through one SDK publish stream each
(`AsyncClient.pubsub.publish_stream`), Redis's as pipelines of that many
`PUBLISH`es; `--in-flight 1` is one call per round trip for both.

A **subscriber** is one subscription to the benchmark's one topic, which
receives every message published to it. They are spread over
SUBSCRIBER_PROCESSES Python processes (`benchmarks/pubsub_fanout_worker.py`):
for TandemKV one process per node of a 3-node cluster (`tandemkv serve`
processes), each an SDK `AsyncClient` with one `Subscribe` stream per
subscriber; for Redis (Debian's `redis-server`, one process) the same number
of processes, each redis-py asyncio with one `PubSub` connection per
subscriber. **Publishers** are loops in this process, publishing
64-byte messages stamped with their send time: TandemKV's spread over the
three nodes (publisher k on node k mod 3, through an `AsyncClient` of its
own node), Redis's `PUBLISH` through one redis-py asyncio client.

Per point: delivered messages/s (received by all subscribers inside the
measured window), p50/p99 delivery latency (send stamp to receipt), the
messages published per second, what was lost (TandemKV's `Lagged` notices;
for both, messages published after the load began that a subscriber never
received once deliveries stopped), and the servers' RSS after the point.
`--profile` samples the busiest TandemKV node with py-spy during the
1,000-subscriber, 1-publisher point. Both servers stay up for the whole
run. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hdrh.histogram import HdrHistogram

from benchmarks import clusters, loadgen, pyspy, workload

TOPIC = "fanout"
MESSAGE_BYTES = 64
SUBSCRIBER_PROCESSES = 3
WARMUP_S = 1.0
# Time the subscriber processes get to acknowledge the measured window.
WINDOW_ACK_S = 0.5
# ... and this much more per subscriber (10,000 busy Redis connections took over 6 s).
WINDOW_ACK_S_PER_SUBSCRIBER = 0.001
# Warm-up messages are published this often until every subscriber saw one ...
WARM_PUBLISH_S = 0.1
# ... for at most this long (10,000 subscriptions take a while to open).
WARM_S_MAX = 180.0
REDIS_START_S_MAX = 20.0
REDIS_MAXCLIENTS = 15_000
PROFILED_POINT = (1_000, 1)
# Publishes each publisher keeps unanswered: TandemKV's publish stream, Redis's pipeline.
IN_FLIGHT_DEFAULT = 64
# Connections the Redis publishers' client may hold (one per pipeline or PUBLISH in flight).
REDIS_PUBLISH_CONNECTIONS_MAX = 64
# The subscriber processes wait at most this long after the run for messages still on their way.
DRAIN_NOTE = "(30 s after the run)"
PROFILE_ATTACH_S = 1.0
MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RedisServer:
    """One `redis-server` on an ephemeral port, no persistence, in a temporary directory."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="redis-fanout-")
        self.process: subprocess.Popen | None = None
        self.endpoint = ""

    def __enter__(self) -> RedisServer:
        port = clusters.free_ports(1)[0]
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--maxclients", str(REDIS_MAXCLIENTS), "--dir", self.root],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + REDIS_START_S_MAX
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.__exit__()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.1)
        self.endpoint = f"127.0.0.1:{port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            clusters.stop_processes([self.process])
        shutil.rmtree(self.root, ignore_errors=True)


class Worker:
    """One subscriber process and its JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process

    @classmethod
    async def start(cls, system: str, endpoint: str, count: int) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.pubsub_fanout_worker", system, endpoint, str(count), TOPIC,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return cls(process)

    async def read(self, timeout_s: float) -> dict:
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        if not line:
            raise RuntimeError(f"a subscriber process exited (code {await self.process.wait()})")
        return json.loads(line)

    def write(self, message: dict) -> None:
        self.process.stdin.write((json.dumps(message) + "\n").encode())

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


def stamped() -> bytes:
    return workload.stamped_value(MESSAGE_BYTES)


class Counts:
    """What the publishers of one point did."""

    def __init__(self):
        self.published = 0
        self.errors: list[str] = []

    def answered(self, answer: asyncio.Future) -> None:
        if answer.cancelled():
            self.errors.append("cancelled")
        elif answer.exception() is not None:
            self.errors.append(repr(answer.exception()))
        else:
            self.published += 1


async def tandem_system(cluster: clusters.TandemCluster, in_flight: int):
    """(subscriber endpoints, publish(k) coroutine maker, publisher loop, server pids, close)."""
    from tandemkv.client import AsyncClient

    configs = cluster.cluster.configs
    endpoints = [configs[name].client_address for name in sorted(configs)]
    clients = [AsyncClient(endpoint) for endpoint in endpoints]

    async def publish(publisher: int) -> None:
        await clients[publisher % len(clients)].pubsub.publish(TOPIC, stamped())

    async def publish_until(publisher: int, end_s: float, counts: Counts) -> None:
        """Publisher k: a publish stream of its node's client with `in_flight`
        unanswered at most (1: unary publishes, one round trip each)."""
        if in_flight == 1:
            return await closed_loop(lambda: publish(publisher), end_s, counts)
        async with clients[publisher % len(clients)].pubsub.publish_stream(in_flight) as stream:
            while time.perf_counter() < end_s:
                (await stream.send(TOPIC, stamped())).add_done_callback(counts.answered)

    async def close() -> None:
        for client in clients:
            await client.close()

    pids = {name: cluster.cluster.processes[name].pid for name in sorted(configs)}
    return endpoints, publish, publish_until, pids, close


async def closed_loop(publish, end_s: float, counts: Counts) -> None:
    while time.perf_counter() < end_s:
        try:
            await publish()
            counts.published += 1
        except Exception as error:  # counted and shown, the run goes on
            counts.errors.append(repr(error))


async def redis_system(server: RedisServer, in_flight: int):
    import redis.asyncio

    host, _, port = server.endpoint.rpartition(":")
    client = redis.asyncio.Redis(host=host, port=int(port), max_connections=REDIS_PUBLISH_CONNECTIONS_MAX)

    async def publish(publisher: int) -> None:
        await client.publish(TOPIC, stamped())

    async def publish_batch() -> None:
        async with client.pipeline(transaction=False) as pipeline:
            for _ in range(in_flight):
                pipeline.publish(TOPIC, stamped())
            await pipeline.execute()

    async def publish_until(publisher: int, end_s: float, counts: Counts) -> None:
        """Publisher k: PUBLISH in a loop, or pipelines of `in_flight` PUBLISHes."""
        if in_flight == 1:
            return await closed_loop(lambda: publish(publisher), end_s, counts)
        while time.perf_counter() < end_s:
            try:
                await publish_batch()
                counts.published += in_flight
            except Exception as error:  # counted and shown, the run goes on
                counts.errors.extend([repr(error)] * in_flight)

    return ([server.endpoint] * SUBSCRIBER_PROCESSES, publish, publish_until, {"redis": server.process.pid},
            client.aclose)


async def run_point(system: str, endpoints: list[str], publish, publish_until, pids: dict, subscribers: int,
                    publishers: int, seconds: float, profile_dir: Path | None) -> dict:
    shares = [subscribers // len(endpoints) + (k < subscribers % len(endpoints)) for k in range(len(endpoints))]
    workers = [await Worker.start(system, e, n) for e, n in zip(endpoints, shares) if n]
    try:
        for worker in workers:
            await worker.read(WARM_S_MAX)  # opened
        warm = asyncio.gather(*(w.read(WARM_S_MAX) for w in workers))
        started_s = time.perf_counter()
        while not warm.done():
            if time.perf_counter() - started_s > WARM_S_MAX:
                raise RuntimeError(f"subscribers not warm within {WARM_S_MAX:.0f} s")
            try:
                await publish(0)
            except Exception:  # noqa: BLE001 - a node still opening 10,000 streams may miss a deadline: next one
                pass
            await asyncio.sleep(WARM_PUBLISH_S)
        await warm
        # The workers' acknowledgements take a moment: the load begins after them.
        published_from = time.perf_counter() + WINDOW_ACK_S + subscribers * WINDOW_ACK_S_PER_SUBSCRIBER
        begin, end = published_from + WARMUP_S, published_from + WARMUP_S + seconds
        for worker in workers:
            worker.write({"begin": begin, "end": end, "published_from": published_from})
        for worker in workers:
            await worker.read(WARM_S_MAX)  # windowed
        late_s = time.perf_counter() - published_from
        if late_s > 0:
            raise RuntimeError(f"the subscribers acknowledged the window {late_s:.1f} s after it began")
        cpu_before = {name: cpu_s(pid) for name, pid in pids.items()}
        counts = Counts()
        await asyncio.sleep(max(0.0, published_from - time.perf_counter()))
        profiling = asyncio.ensure_future(profile(pids, begin, seconds, profile_dir)) if profile_dir else None
        await asyncio.gather(*(publish_until(k, end, counts) for k in range(publishers)))
        published, errors = counts.published, counts.errors
        cpu = {name: round(cpu_s(pid) - cpu_before[name], 2) for name, pid in pids.items()}
        for worker in workers:
            worker.write({"expected": published})
        answers = [await w.read(WARM_S_MAX) for w in workers]
        profiled = await profiling if profiling else None
    finally:
        for worker in workers:
            await worker.stop()
    histogram = loadgen.new_histogram()
    for answer in answers:
        histogram.add(HdrHistogram.decode(answer["histogram"]))
    received = sum(a["received_since_start"] for a in answers)
    lagged = sum(a["lagged"] for a in answers)
    quantile = (lambda p: histogram.get_value_at_percentile(p) / 1000) if histogram.get_total_count() else (
        lambda p: float("nan"))
    return {"system": system, "subscribers": subscribers, "publishers": publishers, "seconds": seconds,
            "published_per_s": published / (end - published_from),
            "delivered_per_s": sum(a["delivered_in_window"] for a in answers) / seconds,
            "p50_ms": quantile(50), "p99_ms": quantile(99), "lagged": lagged,
            # A publish of unknown outcome (a deadline passed) may or may not have gone out.
            "not_delivered": (published + len(errors)) * subscribers - received - lagged,
            "not_delivered_surely": max(0, published * subscribers - received - lagged), "published": published,
            "publish_errors": len(errors), "error_samples": errors[:3] + [e for a in answers for e in a["errors"]][:3],
            "subscriptions_ended": sum(a["subscriptions_ended"] for a in answers),
            "server_cpu_s": cpu, "subscriber_cpu_s": [round(a.get("cpu_s", 0.0), 2) for a in answers],
            "rss_mib": {name: round(rss_mib(pid), 1) for name, pid in pids.items()},
            "profile": profiled}


async def profile(pids: dict, begin: float, seconds: float, out: Path) -> dict:
    """py-spy on the node that used the most CPU in the first second of the window."""
    await asyncio.sleep(max(0.0, begin - time.perf_counter()))
    before = {name: cpu_s(pid) for name, pid in pids.items()}
    await asyncio.sleep(PROFILE_ATTACH_S)
    busiest = max(pids, key=lambda name: cpu_s(pids[name]) - before[name])
    duration = max(1, int(seconds - 2 * PROFILE_ATTACH_S))
    raw = out / f"pubsub-fanout-{busiest}.raw"
    process = await pyspy.record(pids[busiest], duration, raw)
    await process.wait()
    return {"node": busiest, **pyspy.summarise(raw, duration)} if raw.exists() else {"node": busiest}


def undelivered(row: dict) -> str:
    """What never arrived; with publishes of unknown outcome, a range."""
    if not row["publish_errors"]:
        return f"{row['not_delivered']:,}"
    return (f"{row['not_delivered_surely']:,} to {row['not_delivered']:,} ({row['publish_errors']} publishes "
            "of unknown outcome)")


def render(rows: list[dict], load: tuple[list[float], list[float]], command: str) -> str:
    in_flight = rows[0].get("in_flight", 1) if rows else 1
    lines = [f"`{command}`", "", f"load average at start {load[0]}, at end {load[1]} ({os.cpu_count()} cores); "
             f"each publisher keeps {in_flight} publish(es) unanswered", "",
             "| subscribers | publishers | system | published/s | delivered msgs/s | p50 ms | p99 ms | lagged | "
             f"not delivered {DRAIN_NOTE} | server RSS MiB | vs Redis |", "|---" * 11 + "|"]
    redis_rates = {(r["subscribers"], r["publishers"]): r["delivered_per_s"] for r in rows
                   if r["system"] == "redis" and "error" not in r}
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['subscribers']} | {row['publishers']} | {row['system']} | failed: {row['error']} "
                         "| | | | | | | |")
            continue
        baseline = redis_rates.get((row["subscribers"], row["publishers"]))
        ratio = f"{row['delivered_per_s'] / baseline:.2f}x" if baseline and row["system"] != "redis" else ""
        rss = " + ".join(f"{v:.0f}" for v in row["rss_mib"].values())
        lines.append(f"| {row['subscribers']:,} | {row['publishers']} | {row['system']} | "
                     f"{row['published_per_s']:,.0f} | {row['delivered_per_s']:,.0f} | {row['p50_ms']:.1f} | "
                     f"{row['p99_ms']:.1f} | {row['lagged']:,} | {undelivered(row)} | {rss} | {ratio} |")
    for row in rows:
        if row.get("profile") and row["profile"].get("self"):
            p = row["profile"]
            lines += ["", f"py-spy on {p['node']} ({row['subscribers']:,} subscribers, {row['publishers']} "
                          f"publisher(s)): GIL busy {p['gil_busy_percent']:.0f}%", "", "| self % | frame |",
                      "|---|---|"] + [f"| {share:.1f} | `{frame}` |" for frame, share in p["self"][:10]]
            lines += ["", "| inclusive % | frame |", "|---|---|"] + [
                f"| {share:.1f} | `{frame}` |" for frame, share in p["inclusive"][:15]]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> list[dict]:
    rows = []
    with contextlib.ExitStack() as stack:
        systems = {}
        if "tandemkv" in args.systems:
            systems["tandemkv"] = await tandem_system(stack.enter_context(clusters.TandemCluster(3)), args.in_flight)
        if "redis" in args.systems:
            if shutil.which("redis-server") is None or importlib.util.find_spec("redis") is None:
                print("redis-server or redis-py is absent (apt-get install redis-server; pip install -e "
                      "'.[bench]'): TandemKV alone", file=sys.stderr)
            else:
                systems["redis"] = await redis_system(stack.enter_context(RedisServer()), args.in_flight)
        try:
            for subscribers in args.subscribers:
                for publishers in args.publishers:
                    for name, (endpoints, publish, publish_until, pids, _) in systems.items():
                        wanted = args.profile and name == "tandemkv" and (subscribers, publishers) == PROFILED_POINT
                        try:
                            row = await run_point(name, endpoints, publish, publish_until, pids, subscribers,
                                                  publishers, args.seconds, args.out if wanted else None)
                        except (RuntimeError, asyncio.TimeoutError) as error:
                            row = {"system": name, "subscribers": subscribers, "publishers": publishers,
                                   "error": str(error) or type(error).__name__}
                        row["in_flight"] = args.in_flight
                        rows.append(row)
                        print(json.dumps({k: v for k, v in row.items() if k != "profile"}), file=sys.stderr)
        finally:
            for *_, close in systems.values():
                await close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    numbers = lambda text: [int(n) for n in text.split(",")]  # noqa: E731
    parser.add_argument("--subscribers", type=numbers, default=[10, 1_000, 10_000])
    parser.add_argument("--publishers", type=numbers, default=[1, 16])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT_DEFAULT,
                        help="publishes one publisher has unanswered: a publish stream (TandemKV) or a pipeline "
                             "(Redis) of this many; 1: one call per round trip")
    parser.add_argument("--systems", type=lambda t: t.split(","), default=["tandemkv", "redis"])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    load_start = [round(x, 2) for x in os.getloadavg()]
    rows = asyncio.run(run(args))
    document = render(rows, (load_start, [round(x, 2) for x in os.getloadavg()]),
                      "python -m benchmarks.pubsub_fanout " + " ".join(argv if argv is not None else sys.argv[1:]))
    (args.out / "pubsub_fanout.json").write_text(json.dumps(rows, indent=1, default=str))
    (args.out / "pubsub_fanout.md").write_text(document)
    print(document)


if __name__ == "__main__":
    main()
