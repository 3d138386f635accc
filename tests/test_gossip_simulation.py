"""Seeded simulation: gossip replicas converge once faults heal.

Method: five GossipNode instances on a virtual clock (each with its own
clock skew), joined by a simulated network that drops, duplicates and
delays (so reorders) frames and cuts partitions, all drawn from one seed.
While partitions come and go and nodes crash and restart from their saved
tables, random writes hit every table type on random nodes. Then the
partitions heal, every node is up, writes stop; drops, duplicates and
reordering go on. Within ROUNDS_AFTER_HEAL_MAX rounds all replicas must
hold equal tables (equal digests), and the values must be what the writes
imply, computed from the deltas alone: counters sum every increment, the
LWW register holds the largest write, and the set, map and MV register
keep exactly the adds/puts/writes that no remove, clear or later write had
seen (no acknowledged add lost, nothing removed returns).

A failure prints its seed; `SEED=<n> pytest tests/test_gossip_simulation.py`
replays exactly that run."""

from __future__ import annotations

import heapq
import os
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.protocol import GossipConfig, GossipNode, Outgoing
from tandemkv.server.available.crdt.hlc import HybridClock, MemoryHighWaterMark

SECRET = b"simulation-secret"
NODES = ("n1", "n2", "n3", "n4", "n5")
TABLES = {"g": TableKind.G_COUNTER, "pn": TableKind.PN_COUNTER, "lww": TableKind.LWW_REGISTER,
          "mv": TableKind.MV_REGISTER, "set": TableKind.OR_SET, "map": TableKind.AW_LWW_MAP}
ROUND_MS = 1_000
WRITE_PHASE_MS = 30_000
ROUNDS_AFTER_HEAL_MAX = 15


def _seeds(default: range) -> list[int]:
    replay = os.environ.get("SEED")
    return [int(replay)] if replay else list(default)


@dataclass(frozen=True)
class Faults:
    drop: float = 0.1
    duplicate: float = 0.05
    latency_ms_max: int = 1_500   # above a round, so frames overtake each other
    skew_ms_max: int = 800


@dataclass(frozen=True)
class Workload:
    keys: int = 12
    value_bytes: int = 3   # large values make states that need chunking


def _context_dots(plain: list) -> set[tuple[str, int]]:
    vector, cloud = plain
    dots = {(replica, counter) for replica, top in vector.items() for counter in range(1, top + 1)}
    return dots | {tuple(dot) for dot in cloud}


@dataclass
class Oracle:
    """What the writes imply, worked out from the deltas the writes
    returned, never from replica states."""

    sums: dict[str, int] = field(default_factory=lambda: {"g": 0, "pn": 0})
    lww: list[tuple] = field(default_factory=list)
    added: dict[str, dict[tuple, Any]] = field(default_factory=lambda: {"mv": {}, "set": {}, "map": {}})
    covered: dict[str, set] = field(default_factory=lambda: {"mv": set(), "set": set(), "map": set()})

    def record(self, table: str, operation: str, args: tuple, delta: Any) -> None:
        if table in self.sums:
            self.sums[table] += -args[0] if operation == "decrement" else args[0]
        elif table == "lww":
            stamp, replica, value = delta.to_plain()
            self.lww.append((stamp, replica, value is not None, value or b""))
        else:
            self._record_dots(table, delta.to_plain())

    def _record_dots(self, table: str, plain: list) -> None:
        stored, context = plain
        new: dict[tuple, Any] = {}
        if table == "mv":
            new = {tuple(dot): value for dot, value in stored}
        else:
            for key, items in stored.items():
                for item in items:
                    dot = tuple(item[0]) if table == "map" else tuple(item)
                    new[dot] = (key, item[1], item[2]) if table == "map" else key
        self.added[table].update(new)
        self.covered[table] |= _context_dots(context) - set(new)

    def expected(self, table: str) -> Any:
        if table in self.sums:
            return self.sums[table]
        if table == "lww":
            return max(self.lww)[3] if self.lww and max(self.lww)[2] else None
        alive = {dot: item for dot, item in self.added[table].items()
                 if dot not in self.covered[table]}
        if table == "mv":
            return sorted(set(alive.values()))
        if table == "set":
            return sorted(set(alive.values()))
        winners: dict[bytes, tuple] = {}
        for (replica, _), (key, stamp, value) in alive.items():
            candidate = (tuple(stamp), replica, value)
            winners[key] = max(winners.get(key, candidate), candidate)
        return {key: winner[2] for key, winner in winners.items()}


class Simulation:
    def __init__(self, seed: int, config: GossipConfig, faults: Faults,
                 workload: Workload) -> None:
        self.seed = seed
        self.keys = [b"k%d" % number for number in range(workload.keys)]
        self.value_bytes = workload.value_bytes
        self.rng = random.Random(seed)
        self.config = config
        self.faults = faults
        self.now_ms = 0
        self.queue: list[tuple[int, int, str, Any]] = []
        self.sequence = 0
        self.skew = {name: self.rng.randint(-faults.skew_ms_max, faults.skew_ms_max)
                     for name in NODES}
        self.high_water = {name: MemoryHighWaterMark() for name in NODES}
        self.saved: dict[str, dict[str, bytes]] = {name: {} for name in NODES}
        self.nodes = {name: self._start(name) for name in NODES}
        self.groups: list[set[str]] = []
        self.down: set[str] = set()
        self.oracle = Oracle()
        self.largest_frame = 0
        for name in NODES:
            self._schedule(self.rng.randint(0, ROUND_MS), "tick", name)

    def physical(self, name: str) -> int:
        return max(0, self.now_ms + self.skew[name])

    def _start(self, name: str) -> GossipNode:
        node = GossipNode(name, SECRET, random.Random(self.rng.random()),
                          HybridClock(self.high_water[name]), self.physical(name), self.config)
        node.set_members(NODES)
        for table, kind in TABLES.items():
            node.create_table(table, kind, self.saved[name].get(table))
        return node

    def _schedule(self, at_ms: int, kind: str, payload: Any) -> None:
        self.sequence += 1
        heapq.heappush(self.queue, (at_ms, self.sequence, kind, payload))

    def _save(self, name: str) -> None:
        """Persists what changed, as the storage layer will after each step."""
        node = self.nodes[name]
        for table in node.take_changed():
            self.saved[name][table] = node.encoded_table(table)

    def _cut(self, source: str, target: str) -> bool:
        if source in self.down or target in self.down:
            return True
        return any((source in group) != (target in group) for group in self.groups)

    def _send(self, source: str, frames: list[Outgoing]) -> None:
        for out in frames:
            self.largest_frame = max(self.largest_frame, len(out.frame))
            if self._cut(source, out.peer) or self.rng.random() < self.faults.drop:
                continue
            copies = 2 if self.rng.random() < self.faults.duplicate else 1
            for _ in range(copies):
                delay = self.rng.randint(1, self.faults.latency_ms_max)
                self._schedule(self.now_ms + delay, "deliver", (source, out))

    def run_until(self, end_ms: int, writes: bool) -> None:
        while self.queue and self.queue[0][0] <= end_ms:
            self.now_ms, _, kind, payload = heapq.heappop(self.queue)
            getattr(self, f"_on_{kind}")(payload, writes)
        self.now_ms = end_ms

    def _on_tick(self, name: str, writes: bool) -> None:
        self._schedule(self.now_ms + ROUND_MS, "tick", name)
        if name not in self.down:
            self._send(name, self.nodes[name].tick(self.physical(name)))
        for _ in range(self.rng.randint(0, 3) if writes else 0):
            self._write(name)

    def _on_deliver(self, item: tuple[str, Outgoing], writes: bool) -> None:
        source, out = item
        if self._cut(source, out.peer):
            return
        replies = self.nodes[out.peer].receive(self.physical(out.peer), out.frame)
        self._save(out.peer)
        self._send(out.peer, replies)

    def _write(self, name: str) -> None:
        if name in self.down:
            return
        table = self.rng.choice(sorted(TABLES))
        operation, args = self._operation(table)
        delta = self.nodes[name].mutate(self.physical(name), table, operation, *args)
        self._save(name)
        self.oracle.record(table, operation, args, delta)

    def _operation(self, table: str) -> tuple[str, tuple]:
        key = self.rng.choice(self.keys)
        value = (b"v%d" % self.rng.randint(0, 99)).ljust(self.value_bytes, b".")
        number = self.rng.randint(1, 9)
        choices = {
            "g": [("increment", (number,))],
            "pn": [("increment", (number,)), ("decrement", (number,))],
            "lww": [("assign", (value,)), ("assign", (None,))],
            "mv": [("assign", (value,)), ("assign", (value,)), ("clear", ())],
            "set": [("add", (key,)), ("add", (key,)), ("remove", (key,)), ("clear", ())],
            "map": [("put", (key, value)), ("put", (key, value)), ("remove", (key,))],
        }[table]
        weights = [1] * len(choices)
        if table in ("set", "map"):
            weights[-1] = 1 if table == "map" else 0.1
        return self.rng.choices(choices, weights)[0]

    def shake(self) -> None:
        """A new fault picture: a partition or none, maybe a crash or a
        restart."""
        if self.rng.random() < 0.7:
            side = set(self.rng.sample(NODES, self.rng.randint(1, len(NODES) - 1)))
            self.groups = [side, set(NODES) - side]
        else:
            self.groups = []
        if self.down and self.rng.random() < 0.6:
            self.restart(self.down.pop())
        elif self.rng.random() < 0.3:
            self.down.add(self.rng.choice(NODES))

    def restart(self, name: str) -> None:
        self.down.discard(name)
        self.nodes[name] = self._start(name)

    def heal(self) -> None:
        self.groups = []
        for name in sorted(self.down):
            self.restart(name)

    def converged(self) -> bool:
        digests = {tuple(table.digest for table in node.status().tables.values())
                   for node in self.nodes.values()}
        return len(digests) == 1

    def fail(self, what: str) -> str:
        return (f"seed {self.seed}: {what}; replay with "
                f"SEED={self.seed} pytest tests/test_gossip_simulation.py")


def run(seed: int, config: GossipConfig, faults: Faults,
        workload: Workload = Workload()) -> Simulation:
    simulation = Simulation(seed, config, faults, workload)
    while simulation.now_ms < WRITE_PHASE_MS:
        simulation.shake()
        simulation.run_until(simulation.now_ms + simulation.rng.randint(1_000, 5_000), writes=True)
    simulation.heal()
    healed_ms = simulation.now_ms
    deadline_ms = healed_ms + ROUNDS_AFTER_HEAL_MAX * ROUND_MS
    while not simulation.converged():
        assert simulation.now_ms < deadline_ms, simulation.fail(
            f"not converged {ROUNDS_AFTER_HEAL_MAX} rounds after the heal")
        simulation.run_until(simulation.now_ms + ROUND_MS // 4, writes=False)
    return simulation


def check_values(simulation: Simulation) -> None:
    for table in TABLES:
        expected = simulation.oracle.expected(table)
        for name, node in simulation.nodes.items():
            found = node.read(table).value()
            assert found == expected, simulation.fail(
                f"{name} reads {table} = {found!r}, the writes imply {expected!r}")


@pytest.mark.parametrize("seed", _seeds(range(10)))
def test_replicas_converge_to_what_the_writes_imply_after_faults_heal(seed):
    simulation = run(seed, GossipConfig(), Faults())
    check_values(simulation)
    assert simulation.oracle.lww or simulation.oracle.sums["g"] >= 0


@pytest.mark.parametrize("seed", _seeds(range(100, 106)))
def test_convergence_holds_with_chunked_frames_and_short_delta_buffers(seed):
    config = GossipConfig(message_bytes_max=2_048, delta_buffer_entries_max=8)
    simulation = run(seed, config, Faults(drop=0.05), Workload(keys=40, value_bytes=150))
    check_values(simulation)
    assert simulation.largest_frame <= 2_048, simulation.fail("a frame passed the size limit")
    for counter in ("full_states_sent", "chunked_payloads_sent"):
        total = sum(node.status().counters.get(counter, 0) for node in simulation.nodes.values())
        assert total > 0, simulation.fail(f"{counter} stayed 0: the run missed that path")
