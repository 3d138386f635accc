"""How long a new member takes to join and catch up, and what the catch-up
costs the clients, at 10^5 and 10^6 keys stored (docs/membership.md).

    python -m benchmarks.join_catchup [--keys 100000,1000000] [--value-bytes 100] [--snapshot-entries 0]
                                      [--profile] [--out benchmarks/results]

Per key count, on a 3-node cluster of `tandemkv serve` processes on
127.0.0.1 (fsync on, default settings unless --snapshot-entries is given):

1. load: the keys written through Txn calls (as benchmarks/snapshot_bench.py);
2. before: a client puts 100-byte values to keys of their own with
   PUTS_IN_FLIGHT calls in flight for BEFORE_S seconds (puts/s);
3. join: with that client still putting, a fourth node is started with
   `serve --join` through a member; timed from the process start to the
   moment the committed member set lists it ("added"), and from then to the
   first time its applied index reaches the commit index the leader had
   when the addition was seen ("caught up"); the client's puts/s between
   the start and "caught up" is the throughput during the catch-up;
4. after: the puts/s for AFTER_S seconds once the new member caught up.

`--snapshot-entries N` makes every node snapshot its state after N log
entries, so the new member is sent a snapshot instead of the log (the
default, 50,000 entries, is more than the load makes, so it replays the
log). `--profile` samples the leader and the new node with py-spy during
the join. The machine's load average is printed with the results. Not a
test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import pyspy
from benchmarks.clusters import free_ports
from benchmarks.snapshot_bench import LOAD_IN_FLIGHT, key
from tandemkv import limits
from tandemkv.client import NO_RETRY, AsyncClient, Client, Retry
from tandemkv.errors import OutcomeUnknown, TandemKVError, Unavailable

KEY_COUNTS_DEFAULT = (100_000, 1_000_000)
VALUE_BYTES_DEFAULT = 100
# The measuring client's puts in flight, and the seconds measured before and after the join.
PUTS_IN_FLIGHT = 16
BEFORE_S = 10.0
AFTER_S = 10.0
# A loaded machine (load average 50-80 seen) can take minutes to start three nodes.
START_TIMEOUT_S = 180.0
# A join and its catch-up must end within this, or the point fails saying so.
JOIN_TIMEOUT_S = 1800.0
POLL_S = 0.05
STOP_TIMEOUT_S = 20.0
RPC_RETRY = Retry(deadline_s=30.0)
# Sends of one loading transaction (same request id) before the load fails: a
# loaded machine can miss a deadline, and the retry applies it once.
LOAD_SENDS_MAX = 20


async def load(endpoints: list[str], count: int, value_bytes: int) -> float:
    """Writes `count` keys through Txn calls of TXN_OPS_MAX puts; a call
    whose outcome is unknown is sent again with its request id. Keys/s."""
    from tandemkv.client import Op

    value = os.urandom(value_bytes)
    batches = iter(range(0, count, limits.TXN_OPS_MAX))
    began = time.perf_counter()
    async with AsyncClient(endpoints, retry=Retry(deadline_s=60.0)) as client:

        async def worker() -> None:
            for first in batches:
                puts = [Op.put(key(i), value) for i in range(first, min(first + limits.TXN_OPS_MAX, count))]
                request_id = os.urandom(limits.REQUEST_ID_BYTES)
                for send in range(LOAD_SENDS_MAX):
                    try:
                        await client.txn().on_success(*puts).commit(request_id=request_id)
                        break
                    except (OutcomeUnknown, Unavailable):
                        if send == LOAD_SENDS_MAX - 1:
                            raise
        await asyncio.gather(*(worker() for _ in range(LOAD_IN_FLIGHT)))
    return count / (time.perf_counter() - began)


@dataclasses.dataclass
class BenchNode:
    name: str
    raft_address: str
    client_address: str
    process: subprocess.Popen | None = None


class JoinCluster:
    """Three `tandemkv serve` processes under a temporary directory, and
    room for a fourth that joins; every process stopped on exit."""

    def __init__(self, snapshot_entries: int):
        from tandemkv.server.node.config import RaftTimings

        self.root = Path(tempfile.mkdtemp(prefix="tkv-join-bench-"))
        self.timings = RaftTimings() if not snapshot_entries else dataclasses.replace(
            RaftTimings(), snapshot_entries_min=snapshot_entries)
        ports = free_ports(8)
        self.nodes = [BenchNode(f"n{k + 1}", f"127.0.0.1:{ports[2 * k]}", f"127.0.0.1:{ports[2 * k + 1]}")
                      for k in range(4)]
        for node in self.nodes[:3]:
            self._write_config(node, peers=[n for n in self.nodes[:3] if n is not node])
        self._write_config(self.nodes[3], peers=[], join=self.nodes[0].client_address)

    def _write_config(self, node: BenchNode, peers: list[BenchNode], join: str = "") -> None:
        from tandemkv.server.node.config import Member, NodeConfig
        from tandemkv.server.process import settings

        config = NodeConfig(name=node.name, data_dir=Path(node.name), raft_address=node.raft_address,
                            client_address=node.client_address, timings=self.timings,
                            peers=tuple(Member(p.name, p.raft_address, p.client_address) for p in peers))
        text = settings.to_toml(config, None)
        (self.root / f"{node.name}.toml").write_text((f'join = "{join}"\n' if join else "") + text)

    @property
    def endpoints(self) -> list[str]:
        return [n.client_address for n in self.nodes[:3]]

    def start(self, node: BenchNode) -> None:
        with open(self.root / f"{node.name}.log", "ab") as log:
            node.process = subprocess.Popen(
                [sys.executable, "-m", "tandemkv.server.cli", "serve", "--config", str(self.root / f"{node.name}.toml")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def __enter__(self) -> JoinCluster:
        for node in self.nodes[:3]:
            self.start(node)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait(timeout=STOP_TIMEOUT_S)
        shutil.rmtree(self.root, ignore_errors=True)

    def leader(self, timeout_s: float) -> BenchNode:
        deadline = time.monotonic() + timeout_s
        with Client(self.endpoints, retry=NO_RETRY) as client:
            while time.monotonic() < deadline:
                status = client.status()
                if status.leader and all(n.ready and not n.error for n in status.nodes):
                    return next(n for n in self.nodes if n.name == status.leader)
                time.sleep(POLL_S * 4)
        raise TimeoutError(f"no leader within {timeout_s} s; logs in {self.root}")


class PutMeter:
    """A thread putting values to keys of its own with PUTS_IN_FLIGHT calls
    in flight; `rate(start, end)` is its completed puts/s in that window."""

    def __init__(self, endpoints: list[str], value_bytes: int):
        self.endpoints = endpoints
        self.value = os.urandom(value_bytes)
        self.done_at: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="put-meter")

    async def _run(self) -> None:
        async with AsyncClient(self.endpoints, retry=RPC_RETRY) as client:
            async def putter(lane: int) -> None:
                for number in range(10**9):
                    if self._stop.is_set():
                        return
                    try:
                        await client.put(b"meter/%02d/%09d" % (lane, number), self.value)
                    except TandemKVError:
                        self.errors += 1
                        continue
                    self.done_at.append(time.monotonic())
            await asyncio.gather(*(putter(lane) for lane in range(PUTS_IN_FLIGHT)))

    def __enter__(self) -> PutMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=RPC_RETRY.deadline_s * 2)

    def rate(self, start: float, end: float) -> float:
        done = sum(1 for at in list(self.done_at) if start <= at < end)
        return round(done / max(end - start, 1e-9), 1)


def status_of(endpoint: str):
    """The node's own status line, or None if it does not answer yet."""
    try:
        with Client([endpoint], retry=NO_RETRY) as client:
            # status() asks every member it learns of too: pick the one asked.
            node = next(n for n in client.status().nodes if n.endpoint == endpoint)
    except TandemKVError:
        return None
    return None if node.error else node


def members_of(endpoint: str) -> list[str]:
    try:
        with Client([endpoint], retry=NO_RETRY) as client:
            return client.members.list().names
    except TandemKVError:
        return []


class Profiles:
    """py-spy on the leader and the new node while they run (off: nothing)."""

    def __init__(self, enabled: bool, root: Path):
        self.enabled = enabled and pyspy.available()
        self.root = root
        self.running: dict[str, tuple[subprocess.Popen, Path, float]] = {}

    def start(self, role: str, pid: int) -> None:
        if not self.enabled:
            return
        raw = self.root / f"{role}.raw"
        process = subprocess.Popen([pyspy.PYSPY_BINARY, "record", "-p", str(pid), "-d", str(int(JOIN_TIMEOUT_S)),
                                    "-r", str(pyspy.SAMPLE_RATE_PER_S), "-f", "raw", "-o", str(raw),
                                    "--nonblocking", "--gil"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.running[role] = (process, raw, time.monotonic())

    def stop(self) -> dict:
        summaries = {}
        for role, (process, raw, began) in self.running.items():
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
            if raw.exists():
                summaries[role] = pyspy.summarise(raw, time.monotonic() - began)
        return summaries


def measure(count: int, value_bytes: int, snapshot_entries: int, profile: bool) -> dict:
    point: dict = {"keys": count, "value_bytes": value_bytes, "snapshot_entries": snapshot_entries}
    with JoinCluster(snapshot_entries) as cluster:
        leader = cluster.leader(START_TIMEOUT_S)
        point["load_keys_per_s"] = round(asyncio.run(load(cluster.endpoints, count, value_bytes)))
        newcomer = cluster.nodes[3]
        profiles = Profiles(profile, cluster.root)
        with PutMeter(cluster.endpoints, value_bytes) as meter:
            before_start = time.monotonic()
            time.sleep(BEFORE_S)  # the measured window itself, not a wait for a condition
            before_end = time.monotonic()
            leader = cluster.leader(START_TIMEOUT_S)
            profiles.start("leader", leader.process.pid)
            join_start = time.monotonic()
            cluster.start(newcomer)
            profiles.start("newcomer", newcomer.process.pid)
            added_at, target = wait_added(cluster, leader, newcomer)
            caught_up_at = wait_applied(newcomer, target, cluster)
            point["profiles"] = profiles.stop()
            time.sleep(AFTER_S)  # the measured window after the catch-up
            after_end = time.monotonic()
        point.update(
            added_s=round(added_at - join_start, 3), catch_up_s=round(caught_up_at - added_at, 3),
            join_to_caught_up_s=round(caught_up_at - join_start, 3), target_index=target,
            puts_per_s_before=meter.rate(before_start, before_end),
            puts_per_s_during=meter.rate(join_start, caught_up_at),
            puts_per_s_after=meter.rate(caught_up_at, after_end), put_errors=meter.errors,
            leader=leader.name)
    # The leader snapshots (and so sends a snapshot) only once its log held that many entries.
    point["catch_up_by"] = "snapshot" if snapshot_entries and target > snapshot_entries else "log"
    return point


def wait_added(cluster: JoinCluster, leader: BenchNode, newcomer: BenchNode) -> tuple[float, int]:
    """(when the committed set first lists the newcomer, the leader's commit index then)."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while time.monotonic() < deadline:
        assert newcomer.process.poll() is None, f"{newcomer.name} exited; see {cluster.root}/{newcomer.name}.log"
        if newcomer.name in members_of(leader.client_address):
            added_at = time.monotonic()
            status = status_of(leader.client_address)
            assert status is not None, "the leader stopped answering"
            return added_at, status.commit_index
        time.sleep(POLL_S)
    raise TimeoutError(f"{newcomer.name} was not added within {JOIN_TIMEOUT_S} s")


def wait_applied(newcomer: BenchNode, target: int, cluster: JoinCluster) -> float:
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while time.monotonic() < deadline:
        assert newcomer.process.poll() is None, f"{newcomer.name} exited; see {cluster.root}/{newcomer.name}.log"
        status = status_of(newcomer.client_address)
        if status is not None and status.applied_index >= target:
            return time.monotonic()
        time.sleep(POLL_S)
    raise TimeoutError(f"{newcomer.name} did not apply index {target} within {JOIN_TIMEOUT_S} s")


def table(points: list[dict], load_average: str) -> str:
    lines = [f"machine load average: {load_average}", "",
             "| keys | catch-up by | start to added | added to caught up | puts/s before | during catch-up | "
             "after | load keys/s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for p in points:
        lines.append(f"| {p['keys']:,} | {p['catch_up_by']} | {p['added_s']} s | {p['catch_up_s']} s | "
                     f"{p['puts_per_s_before']:,} | {p['puts_per_s_during']:,} | {p['puts_per_s_after']:,} | "
                     f"{p['load_keys_per_s']:,} |")
    for p in points:
        for role, summary in p.get("profiles", {}).items():
            lines.append(f"\n{p['keys']:,} keys, {role} ({summary['samples']} samples, GIL busy "
                         f"{summary['gil_busy_percent']:.0f}%), self time:")
            lines += [f"  {share:5.1f}%  {frame}" for frame, share in summary["self"][:8]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", default=",".join(map(str, KEY_COUNTS_DEFAULT)))
    parser.add_argument("--value-bytes", type=int, default=VALUE_BYTES_DEFAULT)
    parser.add_argument("--snapshot-entries", type=int, default=0,
                        help="snapshot after this many log entries (0: the default settings)")
    parser.add_argument("--profile", action="store_true", help="py-spy the leader and the new node during the join")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    points = []
    for count in (int(word) for word in args.keys.split(",")):
        points.append(measure(count, args.value_bytes, args.snapshot_entries, args.profile))
        print(json.dumps({k: v for k, v in points[-1].items() if k != "profiles"}), flush=True)
    load_after = " ".join(f"{v:.2f}" for v in os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = f"-snapshot{args.snapshot_entries}" if args.snapshot_entries else ""
    document = {"load_average_before": load_before, "load_average_after": load_after, "cpus": os.cpu_count(),
                "command": " ".join(sys.argv), "points": points}
    (args.out / f"join_catchup{suffix}.json").write_text(json.dumps(document, indent=2) + "\n")
    print(table(points, f"{load_before} before, {load_after} after ({os.cpu_count()} CPUs)"))


if __name__ == "__main__":
    main()
