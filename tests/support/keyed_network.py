"""A simulated network of `KeyedSync` nodes on a virtual clock, for the
keyed-table tests and benchmark.

Every fault is drawn from one seeded `random.Random`: drops, duplicates,
latency (above a round's length frames overtake each other) and partitions
(`groups`). Every frame sent is opened again and checked against the
frame limits (bytes, keys, digests), so a test that runs traffic through it
also checks that no frame ever passed them. Ticks and deliveries are events
in one heap, ordered by time then by a sequence number, so a seed replays
exactly.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from tandemkv.server.available.crdt.hlc import HybridClock, MemoryHighWaterMark
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.keyed_digest import DIGEST_BYTES
from tandemkv.server.available.gossip.keyed_sync import KeyedSync, KeyedSyncConfig, Outgoing
from tandemkv.server.available.gossip.keyed_wire import open_frame

SECRET = b"keyed-simulation-secret"


@dataclass(frozen=True)
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    latency_ms_min: int = 1
    latency_ms_max: int = 20


@dataclass
class Traffic:
    frames: int = 0
    bytes: int = 0
    largest_frame_bytes: int = 0
    most_keys_in_a_frame: int = 0
    most_digests_in_a_frame: int = 0


@dataclass
class KeyedNetwork:
    names: tuple[str, ...]
    tables: dict[str, TableKind]
    seed: int = 0
    faults: Faults = Faults()
    config: KeyedSyncConfig = KeyedSyncConfig()
    now_ms: int = 0
    groups: list[set[str]] = field(default_factory=list)
    traffic: Traffic = field(default_factory=Traffic)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.queue: list[tuple[int, int, str, Any]] = []
        self.sequence = 0
        self.nodes: dict[str, KeyedSync] = {}
        for name in self.names:
            node = KeyedSync(name, SECRET, random.Random(self.rng.random()),
                             HybridClock(MemoryHighWaterMark()), 0, self.config)
            node.set_members(self.names)
            for table, kind in self.tables.items():
                node.create_table(table, kind)
            self.nodes[name] = node
            self._schedule(self.rng.randint(0, self.config.round_interval_ms), "tick", name)

    def _schedule(self, at_ms: int, kind: str, payload: Any) -> None:
        self.sequence += 1
        heapq.heappush(self.queue, (at_ms, self.sequence, kind, payload))

    def cut(self, source: str, target: str) -> bool:
        return any((source in group) != (target in group) for group in self.groups)

    def send(self, source: str, frames: list[Outgoing]) -> None:
        for out in frames:
            self._account(out.frame)
            if self.cut(source, out.peer) or self.rng.random() < self.faults.drop:
                continue
            for _ in range(2 if self.rng.random() < self.faults.duplicate else 1):
                delay = self.rng.randint(self.faults.latency_ms_min, self.faults.latency_ms_max)
                self._schedule(self.now_ms + delay, "deliver", (source, out))

    def _account(self, frame: bytes) -> None:
        message = open_frame(frame, SECRET, self.config.frame_bytes_max)
        traffic = self.traffic
        traffic.frames += 1
        traffic.bytes += len(frame)
        traffic.largest_frame_bytes = max(traffic.largest_frame_bytes, len(frame))
        traffic.most_keys_in_a_frame = max(traffic.most_keys_in_a_frame, message.key_count())
        traffic.most_digests_in_a_frame = max(traffic.most_digests_in_a_frame,
                                              len(message.digests) // DIGEST_BYTES)

    def run_until(self, end_ms: int) -> None:
        while self.queue and self.queue[0][0] <= end_ms:
            self.now_ms, _, kind, payload = heapq.heappop(self.queue)
            if kind == "tick":
                self._schedule(self.now_ms + self.config.round_interval_ms, "tick", payload)
                self.send(payload, self.nodes[payload].tick(self.now_ms))
            else:
                source, out = payload
                if not self.cut(source, out.peer):
                    self.send(out.peer, self.nodes[out.peer].receive(self.now_ms, out.frame))
        self.now_ms = end_ms

    def converged(self) -> bool:
        roots = {tuple(table.root for table in node.status().tables.values())
                 for node in self.nodes.values()}
        return len(roots) == 1

    def rounds_to_converge(self, rounds_max: int) -> int | None:
        """Rounds run until every node holds equal tables (0: already), or
        None if `rounds_max` rounds were not enough."""
        for rounds in range(rounds_max + 1):
            if self.converged():
                return rounds
            self.run_until(self.now_ms + self.config.round_interval_ms)
        return None
