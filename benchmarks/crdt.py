"""Benchmark of the available plane (CRDT tables).

1. Updates/s on one node: an `AvailablePlane` in this process (no gRPC, no
   peers), N threads incrementing one PN counter; each update returns only
   once the LMDB transaction holding it is committed (fsynced when
   durable), so this is local apply + persistence, group-committed.
2. Convergence after heal, 3 real nodes: the partition scenario of
   tests/support/crdt_partition.py (iptables in a private namespace; one
   node cut off, writes on both sides, heal), seconds until every node
   reads the same values. Skipped where no namespace can be made.
3. Convergence after heal, 10/50/100 simulated nodes: `GossipNode`s on a
   virtual clock (1 s rounds, 1-50 ms latency, no loss), split in two
   halves for 20 rounds with writes on every node, then healed; rounds
   until every node holds equal tables.
4. One keyed table of 1,000,000 keys through the node (`--keyed-keys N`,
   not run in CI): an embedded one-member `Node`, writers putting one
   field per user key through `node.crdt.update(..., key=...)` (each
   write acknowledged after its group commit); then reads of one key, a
   scan page of 100, the node's resident memory per key, the store's
   bytes on disk, and how long a restart takes to load every key.

    timeout 300 python -m benchmarks.crdt [--seconds 3] [--threads 1,16] [--sizes 10,50,100]
    timeout 3600 python -m benchmarks.crdt --keyed-only --keyed-keys 1000000 [--keyed-threads 64] [--relaxed]

Prints markdown rows.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tandemkv import limits
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.crdt.mutations import Increment
from tandemkv.server.available.gossip.protocol import GossipNode
from tandemkv.server.available.crdt.hlc import HybridClock, MemoryHighWaterMark
from tandemkv.server.available.runtime import AvailablePlane, CatalogTable
from tandemkv.server.available.crdt.mutations import Put

PARTITION_ROUNDS = 20
ROUND_MS = 1_000
LATENCY_MS = (1, 50)
SIM_ROUNDS_MAX = 60
SCENARIO_TIMEOUT_S = 150.0


# -- 1. updates/s on one node -------------------------------------------
def updates_per_second(threads: int, seconds: float, durable: bool) -> tuple[float, float]:
    """(updates/s, p99 latency ms) of `threads` writers for `seconds`."""
    catalog = lambda: (2, [CatalogTable("hits", TableKind.PN_COUNTER, 2)])  # noqa: E731
    with tempfile.TemporaryDirectory() as root:
        plane = AvailablePlane("n1", Path(root), {"n1": ""}, b"key", catalog, durable=durable)
        plane.start()
        latencies: list[list[float]] = [[] for _ in range(threads)]
        stop = time.monotonic() + seconds

        def work(mine: list[float]) -> None:
            while (start := time.monotonic()) < stop:
                plane.update("hits", Increment(1), timeout_s=10)
                mine.append(time.monotonic() - start)

        workers = [threading.Thread(target=work, args=(lat,)) for lat in latencies]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        total = plane.read("hits")[1]
        plane.stop()
    every = sorted(x for lat in latencies for x in lat)
    assert total == len(every), "every acknowledged update is counted"
    return len(every) / seconds, every[int(0.99 * (len(every) - 1))] * 1000


# -- 2. three real nodes --------------------------------------------------
def real_convergence_s() -> str:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-m", "tests.support.crdt_partition", "--out", out],
                              capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S)
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else {"error": done.stderr[-300:]}
    if not summary.get("ok"):
        return f"not measured: {summary.get('skipped') or summary.get('error')}"
    return f"{summary['converged_s']:.2f} s (bound {summary['bound_s']:.0f} s)"


# -- 3. simulated nodes ---------------------------------------------------
class Simulation:
    def __init__(self, size: int, seed: int):
        self.rng = random.Random(seed)
        self.now_ms = 0
        self.names = [f"n{k}" for k in range(size)]
        self.nodes = {}
        for name in self.names:
            node = GossipNode(name, b"sim", random.Random(self.rng.random()),
                              HybridClock(MemoryHighWaterMark()), 0)
            node.set_members(self.names)
            node.create_table("views", TableKind.PN_COUNTER)
            node.create_table("online", TableKind.OR_SET)
            self.nodes[name] = node
        half = set(self.names[: size // 2])
        self.side = {name: name in half for name in self.names}
        self.cut = True
        self.queue: list[tuple[int, int, str, bytes]] = []
        self.sequence = 0
        self.ticks = [(self.rng.randrange(ROUND_MS), name) for name in self.names]
        heapq.heapify(self.ticks)

    def send(self, source: str, outgoing) -> None:
        for peer, frame in outgoing:
            if self.cut and self.side[source] != self.side[peer]:
                continue
            self.sequence += 1
            heapq.heappush(self.queue, (self.now_ms + self.rng.randint(*LATENCY_MS), self.sequence, peer, frame))

    def run_until(self, end_ms: int) -> None:
        while True:
            next_tick = self.ticks[0][0]
            next_frame = self.queue[0][0] if self.queue else end_ms + 1
            at = min(next_tick, next_frame)
            if at > end_ms:
                self.now_ms = end_ms
                return
            self.now_ms = at
            if next_frame <= next_tick:
                _, _, peer, frame = heapq.heappop(self.queue)
                self.send(peer, self.nodes[peer].receive(at, frame))
            else:
                _, name = heapq.heappop(self.ticks)
                self.send(name, self.nodes[name].tick(at))
                heapq.heappush(self.ticks, (self.nodes[name].next_round_ms(), name))

    def converged(self) -> bool:
        digests = {tuple(sorted((t, s.digest) for t, s in node.status().tables.items()))
                   for node in self.nodes.values()}
        return len(digests) == 1


def simulated_rounds(size: int, seed: int) -> float:
    # A deployment holds at most GOSSIP_MEMBERS_MAX (64) nodes; the
    # simulation lifts that limit to see how the protocol scales past it.
    limits.GOSSIP_MEMBERS_MAX = max(limits.GOSSIP_MEMBERS_MAX, size)
    simulation = Simulation(size, seed)
    simulation.run_until(ROUND_MS)
    for name, node in simulation.nodes.items():
        node.mutate(simulation.now_ms, "views", "increment", 1)
        node.mutate(simulation.now_ms, "online", "add", name.encode())
    simulation.run_until(PARTITION_ROUNDS * ROUND_MS)
    assert not simulation.converged(), "the halves diverge while cut"
    simulation.cut = False
    healed_ms = simulation.now_ms
    step_ms = ROUND_MS // 10
    while simulation.now_ms - healed_ms < SIM_ROUNDS_MAX * ROUND_MS:
        simulation.run_until(simulation.now_ms + step_ms)
        if simulation.converged():
            views = {node.read("views").value() for node in simulation.nodes.values()}
            assert views == {size}, views
            return (simulation.now_ms - healed_ms) / ROUND_MS
    return float("inf")


# -- 4. one keyed table of many keys, through an embedded node -----------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def _node(root: Path, port_raft: int, port_client: int, durability: str):
    from tandemkv.server import Member, Node, NodeConfig
    member = Member("n1", f"127.0.0.1:{port_raft}", f"127.0.0.1:{port_client}")
    node = Node(NodeConfig(name="n1", data_dir=root, raft_address=member.raft_address,
                           client_address=member.client_address, peers=(member,), durability=durability,
                           map_size_bytes=1 << 30))
    node.start()
    node.wait_ready(60)
    return node


def keyed_rows(keys: int, threads: int, durability: str) -> list[str]:
    from tests.support.ports import free_ports
    rows = []
    with tempfile.TemporaryDirectory() as root:
        ports = free_ports(2)
        rss_before = _rss_bytes()
        node = _node(Path(root), *ports, durability)
        try:
            node.crdt.create_table("profiles", TableKind.AW_LWW_MAP, keyed=True)
            started = time.monotonic()

            def write(worker: int) -> None:
                for index in range(worker, keys, threads):
                    node.crdt.update("profiles", Put(b"name", b"user %d" % index), key=b"user:%08d" % index)

            workers = [threading.Thread(target=write, args=(w,)) for w in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.monotonic() - started
            rows.append(f"new keys/s through node.crdt.update | {threads} writers, {durability} | "
                        f"{keys / elapsed:,.0f}/s ({elapsed:.0f} s for {keys:,})")
            rss = _rss_bytes() - rss_before
            rows.append(f"resident memory per key (node process) | {keys:,} keys | {rss / keys:,.0f} bytes")
            probes = [b"user:%08d" % random.randrange(keys) for _ in range(2_000)]
            started = time.monotonic()
            for key in probes:
                assert node.crdt.read("profiles", key).value is not None
            rows.append(f"read one key | {keys:,} keys | {(time.monotonic() - started) / len(probes) * 1e6:,.0f} µs")
            started = time.monotonic()
            for _ in range(50):
                page = node.crdt.scan_keys("profiles", b"user:0", after=random.choice(probes), limit=100)
            rows.append(f"scan a prefix, one page of 100 | {keys:,} keys | "
                        f"{(time.monotonic() - started) / 50 * 1e3:,.1f} ms ({len(page.values)} values)")
        finally:
            node.stop()
        disk = sum(f.stat().st_size for f in (Path(root) / "crdt").iterdir())
        rows.append(f"store on disk (LMDB, one record per key) | {keys:,} keys | {disk / 2**20:,.0f} MiB")
        started = time.monotonic()
        node = _node(Path(root), *ports, durability)
        try:
            loaded_s = time.monotonic() - started
            assert node.crdt.status().keyed.tables["profiles"].keys == keys
        finally:
            node.stop()
        rows.append(f"restart: node ready with every key loaded | {keys:,} keys | {loaded_s:.1f} s")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", default="1,16")
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument("--seeds", type=int, default=3, help="simulation runs per size")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--keyed-keys", type=int, default=0, help="keys for the keyed-table point (0: skip)")
    parser.add_argument("--keyed-threads", type=int, default=64)
    parser.add_argument("--keyed-only", action="store_true")
    parser.add_argument("--relaxed", action="store_true", help="the keyed point without fsync")
    args = parser.parse_args(argv)
    print("| measurement | setting | result |\n|---|---|---|")
    if args.keyed_keys:
        for row in keyed_rows(args.keyed_keys, args.keyed_threads, "relaxed" if args.relaxed else "durable"):
            print(f"| {row} |", flush=True)
    if args.keyed_only:
        return 0
    for durable in (True, False):
        for threads in map(int, args.threads.split(",")):
            rate, p99_ms = updates_per_second(threads, args.seconds, durable)
            mode = "durable (fsync)" if durable else "relaxed (no fsync)"
            print(f"| CRDT updates/s, one node, in process | {threads} threads, {mode} | "
                  f"{rate:,.0f}/s (p99 {p99_ms:.2f} ms) |", flush=True)
    if not args.skip_real:
        print(f"| convergence after heal, 3 real nodes | one node cut off, 1 s rounds | "
              f"{real_convergence_s()} |", flush=True)
    for size in map(int, args.sizes.split(",")):
        rounds = sorted(simulated_rounds(size, seed) for seed in range(args.seeds))
        print(f"| convergence after heal, {size} simulated nodes | halves cut {PARTITION_ROUNDS} rounds, "
              f"fanout 2 | median {rounds[len(rounds) // 2]:.1f} rounds (max {rounds[-1]:.1f}, "
              f"{args.seeds} seeds) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
