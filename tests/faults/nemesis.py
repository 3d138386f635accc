"""The nemesis: a seeded schedule of faults, applied one at a time while the
workloads run.

Each cycle draws a fault kind (every kind once per round, in a seeded
order), applies it for a few seconds, heals everything (network rules
flushed, paused nodes resumed, killed nodes restarted with their data) and
leaves the cluster quiet for a moment. Kinds:

- partition-minority: one node cut off from the two others.
- partition-leader:   the current leader cut off from the two others.
- partition-bridge:   one pair cut; the third node still sees both.
- partition-one-way:  packets from one node to another dropped, not back.
- partition-ring:     each node's packets reach only its successor
                      (n1->n2->n3->n1), none the other way.
- kill:               kill -9 one node (the leader every other time);
                      restarted at heal.
- pause:              SIGSTOP one node (the leader every other time);
                      SIGCONT at heal.

Raft runs over TCP, so a one-way drop also starves the other direction of
acknowledgements: the connection stalls both ways until pysyncobj's
connection timeout. The random draws (kinds, targets, durations) come from
the seed; which node leads when a leader fault starts does not.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from typing import Any

from .network import Network
from .nodes import NodeSet

PARTITION_KINDS = ("partition-minority", "partition-leader", "partition-bridge", "partition-one-way",
                   "partition-ring")
PROCESS_KINDS = ("kill", "pause")
ALL_KINDS = PARTITION_KINDS + PROCESS_KINDS
GROUPS = {"partition": PARTITION_KINDS, "kill": ("kill",), "pause": ("pause",), "all": ALL_KINDS}
# Seconds a fault lasts, and the quiet time after healing it.
FAULT_S_RANGE = (2.0, 4.0)
QUIET_S_RANGE = (1.0, 2.0)
# Faults one run injects at most, whatever its duration.
CYCLES_MAX = 10_000
# How long a leader fault waits to learn who leads before picking at random.
LEADER_LOOKUP_TIMEOUT_S = 3.0


def expand_kinds(names: list[str]) -> list[str]:
    """Fault kinds from names and groups ('partition', 'kill', 'pause', 'all')."""
    kinds: list[str] = []
    for name in names:
        for kind in GROUPS.get(name, (name,)):
            if kind not in ALL_KINDS:
                raise ValueError(f"unknown nemesis {kind!r}; known: {sorted(GROUPS) + list(ALL_KINDS)}")
            if kind not in kinds:
                kinds.append(kind)
    return kinds


@dataclasses.dataclass
class FaultRecord:
    kind: str
    targets: list[str]
    start_s: float
    end_s: float | None = None
    note: str = ""


class Nemesis:
    """Applies `kinds` from a seeded schedule until `stop` or the deadline."""

    def __init__(self, nodes: NodeSet, network: Network | None, kinds: list[str], seed: int, started_at: float):
        for kind in kinds:
            assert network is not None or kind in PROCESS_KINDS, f"{kind} needs the network"
        assert kinds, "a nemesis needs at least one fault kind"
        self.nodes = nodes
        self.network = network
        self.kinds = kinds
        self.rng = random.Random(seed)
        self.started_at = started_at
        self.records: list[FaultRecord] = []
        self.errors: list[str] = []
        self._killed: list[str] = []

    def run(self, stop: threading.Event, deadline: float) -> None:
        """The schedule. Every wait is on `stop`, so stopping is prompt."""
        round_order: list[str] = []
        for cycle in range(CYCLES_MAX):
            fault_s = self.rng.uniform(*FAULT_S_RANGE)
            if stop.is_set() or time.monotonic() + fault_s >= deadline:
                break
            if not round_order:
                round_order = self.rng.sample(self.kinds, len(self.kinds))
            kind = round_order.pop()
            record = FaultRecord(kind, [], self._now())
            self.records.append(record)
            try:
                self._apply(kind, record, leader_turn=cycle % 2 == 0)
                stop.wait(fault_s)
            except Exception as error:  # noqa: BLE001 - recorded; the run then fails
                self.errors.append(f"{kind}: {type(error).__name__}: {error}")
            finally:
                self.heal()
                record.end_s = self._now()
            stop.wait(self.rng.uniform(*QUIET_S_RANGE))

    def heal(self) -> None:
        """Network healed, paused nodes resumed, killed nodes restarted."""
        if self.network is not None:
            self.network.heal()
        for node in self.nodes.nodes:
            if node.paused:
                self.nodes.resume(node.name)
        while self._killed:
            self.nodes.start(self._killed.pop())
        for name, code in self.nodes.crashed():
            self.errors.append(f"node {name} exited by itself with code {code} (log: {self.nodes.log_path(name)})")
            self.nodes.start(name)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record.kind] = counts.get(record.kind, 0) + 1
        return counts

    def summary(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(record) for record in self.records]

    def _now(self) -> float:
        return round(time.monotonic() - self.started_at, 3)

    def _apply(self, kind: str, record: FaultRecord, leader_turn: bool) -> None:
        count = len(self.nodes.nodes)
        if kind == "partition-minority":
            self._isolate(self.rng.randrange(count), record)
        elif kind == "partition-leader":
            self._isolate(self._leader_index(record), record)
        elif kind == "partition-bridge":
            first, second = self.rng.sample(range(count), 2)
            self.network.cut(first, second)
            record.targets = [self._name(first), self._name(second)]
        elif kind == "partition-one-way":
            source, target = self.rng.sample(range(count), 2)
            self.network.drop(source, target)
            record.targets = [self._name(source), self._name(target)]
        elif kind == "partition-ring":
            for index in range(count):
                self.network.drop((index + 1) % count, index)
            record.targets = [node.name for node in self.nodes.nodes]
        else:
            self._process_fault(kind, record, leader_turn)

    def _process_fault(self, kind: str, record: FaultRecord, leader_turn: bool) -> None:
        index = self._leader_index(record) if leader_turn else self.rng.randrange(len(self.nodes.nodes))
        name = self._name(index)
        record.targets = [name]
        if kind == "kill":
            self.nodes.kill(name)
            self._killed.append(name)
        else:
            self.nodes.pause(name)

    def _isolate(self, index: int, record: FaultRecord) -> None:
        others = [k for k in range(len(self.nodes.nodes)) if k != index]
        self.network.isolate_groups([[index], others])
        record.targets = [self._name(index)]

    def _leader_index(self, record: FaultRecord) -> int:
        """The leader's index; a seeded random node if none is agreed on."""
        fallback = self.rng.randrange(len(self.nodes.nodes))
        try:
            leader = self.nodes.wait_for_leader(LEADER_LOOKUP_TIMEOUT_S)
        except TimeoutError:
            record.note = "no agreed leader; random target"
            return fallback
        record.note = "leader"
        return self.nodes.node(leader).index

    def _name(self, index: int) -> str:
        return self.nodes.nodes[index].name
