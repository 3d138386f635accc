"""The membership nemesis: members added and removed at runtime while the
workloads run, alone or alongside the process and network faults, on the
node slots of member_slots.py.

`MembershipNemesis` is the shared nemesis plus one change every
`interval_s`: an addition (a fresh node started with --join in a free
slot, waited for until the committed set lists it and it applied the
leader's commit index then) or a removal (of the leader one time in
LEADER_REMOVAL_SHARE, never below VOTERS_MIN members, never of a node a
fault holds; the removed node is then killed and its slot vacated). With
fault kinds asked for, a change runs in its own thread while a fault is
on about half the time, and between faults otherwise; the next fault
waits for it. Removals are retried until the committed set says so (the
SDK does not retry one after an unknown outcome). Every change is a
FaultRecord of kind `member-add` or `member-remove`.
"""

from __future__ import annotations

import random
import threading
import time

from tandemkv import errors
from tandemkv.client import NO_RETRY, Client, MemberList, Retry

from .nemesis import CYCLES_MAX, FAULT_S_RANGE, PROCESS_KINDS, QUIET_S_RANGE, FaultRecord, Nemesis
from .member_slots import MemberNodeSet
from .network import Network
from .nodes import NodeProcess, _last_line

VOTERS_MIN = 3
# One removal in this many takes the leader (when no fault holds it).
LEADER_REMOVAL_SHARE = 3
# A change, from its start to the committed set (and, for an addition, the
# new node's applied index at the leader's commit index), at most.
CHANGE_S_MAX = 60.0
# An added node's catch-up, from the set listing it to its applied index at
# the leader's commit index then (a snapshot and the entries after it).
CATCH_UP_S_MAX = 120.0
# One change at the longest (an addition: listed, then caught up).
CHANGE_WALL_S_MAX = CHANGE_S_MAX + CATCH_UP_S_MAX + 10.0
# The SDK's budget for one removal call, and for one look at the members.
REMOVE_RETRY = Retry(deadline_s=10.0, attempt_timeout_s=3.0)
LIST_RETRY = Retry(attempts_max=3, deadline_s=3.0, attempt_timeout_s=1.0)
CHANGE_POLL_S = 0.2
# How long a leader-targeted fault or removal looks for the leader before picking another node.
LEADER_LOOKUP_S = 3.0
# Faults that take one node out (the others cut pairs or every link for a moment).
NODE_FAULT_KINDS = ("kill", "pause", "partition-minority", "partition-leader")


class MembershipNemesis(Nemesis):
    """The shared nemesis (`kinds` may be empty) plus a membership change every `interval_s`."""

    def __init__(self, nodes: MemberNodeSet, network: Network | None, kinds: list[str], seed: int,
                 started_at: float, interval_s: float, changes_min: int = 0):
        # The base class wants a fault kind; with none asked for, only changes run.
        super().__init__(nodes, network, kinds or list(PROCESS_KINDS), seed, started_at)
        self.kinds = list(kinds)
        self.nodes: MemberNodeSet = nodes
        self.interval_s = interval_s
        self.change_rng = random.Random(f"{seed}/membership")
        self._faulted: set[str] = set()
        self._changing: set[str] = set()  # nodes a change is starting or stopping
        self._removals = 0
        # Changes made (whatever their outcome); the schedule goes on past
        # its deadline with changes alone until it made `changes_min`.
        self.changes_done = 0
        self.changes_min = changes_min

    # -- the schedule --------------------------------------------------------
    def run(self, stop: threading.Event, deadline: float) -> None:
        self._run_until(stop, deadline)
        while self.changes_done < self.changes_min and not stop.is_set():
            self._change(stop)

    def _run_until(self, stop: threading.Event, deadline: float) -> None:
        next_change = time.monotonic() + self.interval_s / 2
        round_order: list[str] = []
        for cycle in range(CYCLES_MAX):
            if stop.is_set() or time.monotonic() >= deadline:
                break
            due = time.monotonic() >= next_change
            if not self.kinds:
                stop.wait(max(0.0, min(next_change, deadline) - time.monotonic()))
                if not stop.is_set() and time.monotonic() < deadline:
                    self._change(stop)
                    next_change = time.monotonic() + self.interval_s
                continue
            fault_s = self.rng.uniform(*FAULT_S_RANGE)
            if time.monotonic() + fault_s >= deadline:
                break
            if not round_order:
                round_order = self.rng.sample(self.kinds, len(self.kinds))
            kind = round_order.pop()
            during = due and self.change_rng.random() < 0.5
            record = FaultRecord(kind, [], self._now())
            self.records.append(record)
            changer = None
            try:
                self._apply(kind, record, leader_turn=cycle % 2 == 0)
                # A node that is down or cut off is neither removed nor joined through.
                self._faulted = set(record.targets) if kind in NODE_FAULT_KINDS else set()
                if during:
                    changer = threading.Thread(target=self._change, args=(stop,), name="membership")
                    changer.start()
                stop.wait(fault_s)
            except Exception as error:  # noqa: BLE001 - recorded; the run then fails
                self.errors.append(f"{kind}: {type(error).__name__}: {error}")
            finally:
                self.heal()
                self._faulted = set()
                record.end_s = self._now()
            if changer is not None:
                changer.join(CHANGE_WALL_S_MAX)
                if changer.is_alive():
                    self.errors.append(f"a membership change outlived {CHANGE_WALL_S_MAX} s")
                    return
            elif due:
                self._change(stop)
            if due:
                next_change = time.monotonic() + self.interval_s
            stop.wait(self.rng.uniform(*QUIET_S_RANGE))

    def heal(self) -> None:
        """The shared heal, except that a node a change is starting or
        stopping is the change's to handle, not a crash to restart."""
        if self.network is not None:
            self.network.heal()
        for node in self.nodes.nodes:
            if node.paused:
                self.nodes.resume(node.name)
        while self._killed:
            name = self._killed.pop()
            if self.nodes.node(name).index in self.nodes.member_slots:
                self.nodes.start(name)
        for name, code in self.nodes.crashed():
            if name in self._changing or self.nodes.node(name).index not in self.nodes.member_slots:
                continue
            self.errors.append(f"node {name} exited by itself with code {code} (log: {self.nodes.log_path(name)})")
            self.nodes.start(name)

    # -- faults over the current members -----------------------------------
    def _apply(self, kind: str, record: FaultRecord, leader_turn: bool) -> None:
        members = [node.index for node in self.nodes.members()]
        if kind == "partition-minority":
            self._isolate(self.rng.choice(members), record)
        elif kind == "partition-leader":
            self._isolate(self._leader_index(record), record)
        elif kind == "partition-bridge":
            first, second = self.rng.sample(members, 2)
            self.network.cut(first, second)
            record.targets = [self._name(first), self._name(second)]
        elif kind == "partition-one-way":
            source, target = self.rng.sample(members, 2)
            self.network.drop(source, target)
            record.targets = [self._name(source), self._name(target)]
        elif kind == "partition-ring":
            for position, index in enumerate(members):
                self.network.drop(members[(position + 1) % len(members)], index)
            record.targets = [self._name(index) for index in members]
        else:
            index = self._leader_index(record) if leader_turn else self.rng.choice(members)
            name = self._name(index)
            record.targets = [name]
            if kind == "kill":
                self.nodes.kill(name)
                self._killed.append(name)
            else:
                self.nodes.pause(name)

    def _isolate(self, index: int, record: FaultRecord) -> None:
        others = [node.index for node in self.nodes.members() if node.index != index]
        self.network.isolate_groups([[index], others])
        record.targets = [self._name(index)]

    def _leader_index(self, record: FaultRecord) -> int:
        members = [node.index for node in self.nodes.members()]
        fallback = self.rng.choice(members)
        leader = self._leader_name()
        if leader is None:
            record.note = "no agreed leader; random target"
            return fallback
        record.note = "leader"
        return self.nodes.node(leader).index

    def _leader_name(self) -> str | None:
        """The leader the running members agree on (waiting up to a few seconds), or None."""
        # Polled here rather than with NodeSet.wait_for_leader: no leader is
        # an answer here (a random target), not a failure to dump stacks for.
        deadline = time.monotonic() + LEADER_LOOKUP_S
        while time.monotonic() < deadline:
            leader = self.nodes.leader([n.name for n in self.nodes.members() if n.running and not n.paused])
            if leader:
                return leader
            time.sleep(CHANGE_POLL_S)
        return None

    # -- membership changes --------------------------------------------------
    def _change(self, stop: threading.Event) -> None:
        """An addition first, a removal (of the leader) second, then either."""
        members = self.nodes.members()
        free = self.nodes.free_slots()
        grow = len(members) <= VOTERS_MIN or (self.changes_done != 1 and self.change_rng.random() < 0.5)
        self.changes_done += 1
        if grow and free:
            self._add(self.change_rng.choice(free))
        elif len(members) > VOTERS_MIN:
            self._remove(members)

    def _add(self, slot: int) -> None:
        through = self.change_rng.choice([n for n in self.nodes.members() if n.running and not n.paused
                                          and n.name not in self._faulted])
        node = self.nodes.occupy(slot, through.member.client_address)
        record = FaultRecord("member-add", [node.name], self._now(), note=f"slot {slot}, through {through.name}")
        self.records.append(record)
        self._changing.add(node.name)
        try:
            self.nodes.start(node.name)
            deadline = time.monotonic() + CHANGE_S_MAX
            # The leader's commit index when the set first lists the node: the
            # writes go on, so its current commit index is a moving target.
            target = None
            while time.monotonic() < deadline:
                if not node.running:
                    if not self._joined_after_exit(node, record):
                        return
                if target is None:
                    listing = self._members_list()
                    if listing is not None and node.name in listing.names:
                        target = self._leader_commit_index()
                        if target is not None:
                            deadline = time.monotonic() + CATCH_UP_S_MAX
                elif self._applied_index(node.name) >= target:
                    record.note += f"; added and caught up (index {target})"
                    return
                time.sleep(CHANGE_POLL_S)
            self.errors.append(f"member-add {node.name}: not added within {CHANGE_S_MAX} s, or not caught up "
                               f"with index {target} within {CATCH_UP_S_MAX} s "
                               f"(log: {self.nodes.log_path(node.name)}: {_last_line(self.nodes.log_path(node.name))!r})")
        finally:
            record.end_s = self._now()
            self._changing.discard(node.name)

    def _joined_after_exit(self, node: NodeProcess, record: FaultRecord) -> bool:
        """A joining node exited by itself (its --join gave up): started
        again if the committed set lists it, its slot freed if not."""
        line = _last_line(self.nodes.log_path(node.name))
        listing = self._members_list()
        if listing is not None and node.name in listing.names:
            record.note += f"; restarted after its join exited ({line!r})"
            self.nodes.start(node.name)
            return True
        record.note += f"; join refused ({line!r})"
        node.killed = True
        self.nodes.vacate(node.name)
        return False

    def _remove(self, members: list[NodeProcess]) -> None:
        leader = self._leader_name()
        candidates = [n for n in members if n.name not in self._faulted]
        self._removals += 1
        if leader in [n.name for n in candidates] and self._removals % LEADER_REMOVAL_SHARE == 1:
            target = leader
        else:
            target = self.change_rng.choice(sorted(n.name for n in candidates))
        record = FaultRecord("member-remove", [target], self._now(), note="leader" if target == leader else "")
        self.records.append(record)
        self._changing.add(target)
        try:
            deadline = time.monotonic() + CHANGE_S_MAX
            attempts = 0
            while time.monotonic() < deadline:
                listing = self._members_list()
                if listing is not None and target not in listing.names:
                    record.note += f"; committed after {attempts} call(s)"
                    self.nodes.vacate(target)
                    return
                if listing is not None and not listing.change_in_progress:
                    attempts += 1
                    self._try_remove(target, record)
                time.sleep(CHANGE_POLL_S)
            self.errors.append(f"member-remove {target}: not committed within {CHANGE_S_MAX} s ({record.note})")
        finally:
            record.end_s = self._now()
            self._changing.discard(target)

    def _try_remove(self, target: str, record: FaultRecord) -> None:
        endpoints = [e for e in self.nodes.member_endpoints() if e != self.nodes.node(target).member.client_address]
        try:
            with Client(endpoints, retry=REMOVE_RETRY) as client:
                client.members.remove(target)
        except errors.TandemKVError as error:
            record.note += f"; {type(error).__name__}"

    def _members_list(self) -> MemberList | None:
        """The committed set as the leader sees it (through any member), or None."""
        try:
            with Client(self.nodes.member_endpoints(), retry=LIST_RETRY) as client:
                return client.members.list()
        except errors.TandemKVError:
            return None

    def _leader_commit_index(self) -> int | None:
        """The commit index the leader reports, or None without an agreed leader."""
        try:
            with Client(self.nodes.member_endpoints(), retry=NO_RETRY) as client:
                status = client.status()
        except errors.TandemKVError:
            return None
        leader = next((n for n in status.nodes if n.name == status.leader and not n.error), None)
        return None if leader is None else leader.commit_index

    def _applied_index(self, name: str) -> int:
        try:
            mine = _own_status(self.nodes.node(name).member.client_address)
        except errors.TandemKVError:
            return 0
        return 0 if mine.error else mine.applied_index


def _own_status(endpoint: str):
    """What `endpoint` itself reports (status() asks every member it learns of too)."""
    with Client([endpoint], retry=NO_RETRY) as client:
        return next(n for n in client.status().nodes if n.endpoint == endpoint)
