"""A node's view of everyone's presence: a copy of each live owner's entries,
what `list` shows, and the diffs between one view and the next.

Rules, in the order they are checked:

1. Owners speak for themselves. A copy of an owner changes only by a
   transfer (owner.py) that moves its version forward; a transfer older
   than the copy is ignored, and a delta whose base the copy has not
   reached is refused (the caller asks the owner for more). Nothing of one
   owner ever reaches a replica through a third node, so no third node can
   bring an untracked entry back.
2. An owner is alive while its heartbeat, a time in the owner's clock, is
   less than `node_down_ms` old by this node's clock. A heartbeat from
   further ahead than `clock_skew_ms_max` counts as now plus that much.
   When an owner's heartbeat lapses its copy is dropped whole (every entry
   leaves), and a frame that carries an older heartbeat is refused: a
   killed node's entries leave every replica within node_down_ms plus the
   skew after its last heartbeat, whatever path its old frames take.
3. A later incarnation of a node name replaces every earlier one at once,
   and frames of earlier ones are refused from then on.
4. An owner that says goodbye (its node stops cleanly) leaves at once, and
   its frames are refused from then on: the goodbye is remembered until
   its heartbeat is `node_down_ms` old, when every frame the owner sent
   before it would be refused by age anyway. A later incarnation of the
   same node is not touched by it, and an earlier incarnation's goodbye
   arriving late is refused as any of its frames is.
5. An entry shows while its session's deadline (owner's clock) is after
   now: a crashed client's entries leave every replica at its deadline,
   by each replica's own clock, even while its owner is unreachable.

`list` and the diffs are kept in step: every entry point first moves time
(`advance`), then changes the copies, then settles what it touched, so the
diffs returned since the start, applied in order to an empty listing, give
`list` exactly. This module knows no I/O and no clock.
"""

from __future__ import annotations

import enum
import heapq
from dataclasses import dataclass, field

from tandemkv import limits

from tandemkv.server.available.presence.model import Diff, EntryId, Listing, Meta, OwnerId, meta_of
from tandemkv.server.available.presence.owner import Transfer


class Outcome(str, enum.Enum):
    APPLIED = "applied"
    STALE = "stale"            # the copy already has this version or a later one
    NEEDS_BASE = "needs_base"  # a delta from a version the copy has not reached: ask the owner
    REFUSED = "refused"        # the owner is unknown here, lapsed, or an earlier incarnation


# `list` is a method of Replica, so inside it the builtin's types go by these names.
Diffs = list[Diff]
OwnerIds = list[OwnerId]
Topics = list[bytes]


@dataclass(slots=True)
class _Copy:
    heartbeat_ms: int
    version: int = 0
    sessions: dict[int, int] = field(default_factory=dict)        # session -> deadline (owner's clock)
    entries: dict[EntryId, tuple[bytes, int]] = field(default_factory=dict)
    by_session: dict[int, set[EntryId]] = field(default_factory=dict)


class Replica:
    """Every owner's entries as this node knows them. `local` is this node's
    own incarnation: its copy is always alive."""

    def __init__(self, local: OwnerId, now_ms: int, *, node_down_ms: int = limits.PRESENCE_NODE_DOWN_MS,
                 clock_skew_ms_max: int = limits.PRESENCE_CLOCK_SKEW_MS_MAX,
                 owners_max: int = limits.PRESENCE_OWNERS_MAX):
        assert node_down_ms > 0 and clock_skew_ms_max >= 0 and owners_max >= 1
        self.local = local
        self.now_ms = now_ms
        self._node_down_ms = node_down_ms
        self._clock_skew_ms_max = clock_skew_ms_max
        self._owners_max = owners_max
        self._copies: dict[OwnerId, _Copy] = {local: _Copy(heartbeat_ms=now_ms)}
        self._incarnations: dict[str, int] = {local.node: local.incarnation}
        # Owners that said goodbye -> the heartbeat of their goodbye (rule 4).
        self._departed: dict[OwnerId, int] = {}
        # (deadline, owner, session): a session to look at when its deadline comes (stale rows are skipped).
        self._deadlines: list[tuple[int, OwnerId, int]] = []
        # topic -> key -> (owner, session) -> what list shows.
        self._view: dict[bytes, dict[bytes, dict[tuple[OwnerId, int], Meta]]] = {}
        self.counters = {"refused_lapsed": 0, "refused_incarnation": 0, "refused_owners_max": 0,
                         "owners_lapsed": 0, "owners_replaced": 0, "stale": 0, "needs_base": 0,
                         "owners_departed": 0, "refused_departed": 0, "owners_removed": 0}

    # -- reading ----------------------------------------------------------

    def list(self, topic: bytes) -> Listing:
        """key -> one meta per tracking session, in ref order."""
        keys = self._view.get(topic, {})
        return {key: sorted(metas.values()) for key, metas in keys.items()}

    def topics(self) -> Topics:
        return sorted(self._view)

    def owners(self) -> OwnerIds:
        return sorted(self._copies)

    def version_of(self, owner: OwnerId) -> int:
        copy = self._copies.get(owner)
        return 0 if copy is None else copy.version

    def copy_state(self, owner: OwnerId) -> Transfer | None:
        """The copy of `owner` as a full transfer (what a restart would
        reload, what tests compare with the owner); None if none is held."""
        copy = self._copies.get(owner)
        if copy is None:
            return None
        return Transfer(owner, 0, copy.version, True, dict(copy.sessions), (), dict(copy.entries), ())

    def entry_count(self) -> int:
        return sum(len(copy.entries) for copy in self._copies.values())

    # -- time and heartbeats ---------------------------------------------

    def advance(self, now_ms: int) -> Diffs:
        """Moves this node's clock to `now_ms` (never back): owners whose
        heartbeat lapsed are dropped, sessions past their deadline hide."""
        self.now_ms = max(self.now_ms, now_ms)
        touched: set[tuple[OwnerId, EntryId]] = set()
        for owner in [owner for owner in self._copies if self._lapsed(owner)]:
            touched |= self._drop(owner)
            self.counters["owners_lapsed"] += 1
        for owner in [owner for owner, said_ms in self._departed.items() if self._aged(said_ms)]:
            del self._departed[owner]
        while self._deadlines and self._deadlines[0][0] <= self.now_ms:
            _, owner, session = heapq.heappop(self._deadlines)
            copy = self._copies.get(owner)
            if copy is not None:
                touched |= {(owner, entry) for entry in copy.by_session.get(session, ())}
        return self._settle(touched)

    def heard(self, owner: OwnerId, heartbeat_ms: int, now_ms: int) -> tuple[bool, Diffs]:
        """A heartbeat of `owner`, from a frame it sent. False (and nothing
        changes for it) when the heartbeat is too old, the incarnation is
        an earlier one, or this node holds as many owners as it may."""
        diffs = self.advance(now_ms)
        if owner.node == self.local.node:
            return owner == self.local, diffs
        known = self._incarnations.get(owner.node)
        if known is not None and owner.incarnation < known:
            self.counters["refused_incarnation"] += 1
            return False, diffs
        if owner in self._departed:
            self.counters["refused_departed"] += 1
            return False, diffs
        heartbeat_ms = min(heartbeat_ms, self.now_ms + self._clock_skew_ms_max)
        if self._aged(heartbeat_ms):
            self.counters["refused_lapsed"] += 1
            return False, diffs
        touched: set[tuple[OwnerId, EntryId]] = set()
        if known is not None and owner.incarnation > known:
            touched |= self._drop_node(owner.node, "owners_replaced")
        copy = self._copies.get(owner)
        if copy is None:
            if len(self._copies) >= self._owners_max:
                self.counters["refused_owners_max"] += 1
                return False, diffs + self._settle(touched)
            self._incarnations[owner.node] = owner.incarnation
            self._copies[owner] = copy = _Copy(heartbeat_ms=heartbeat_ms)
            if len(self._incarnations) > 2 * self._owners_max:
                # Names with no copy left are forgotten (their frames are refused by age meanwhile).
                held = {held.node for held in self._copies} | {gone.node for gone in self._departed}
                self._incarnations = {node: number for node, number in self._incarnations.items() if node in held}
        copy.heartbeat_ms = max(copy.heartbeat_ms, heartbeat_ms)
        return True, diffs + self._settle(touched)

    def farewell(self, owner: OwnerId, heartbeat_ms: int, now_ms: int) -> tuple[bool, Diffs]:
        """`owner` says goodbye: its node stops cleanly. Its copy (and any
        earlier incarnation's) leaves now, and its frames are refused from
        now on (rule 4). False (and nothing changes) for a goodbye of an
        earlier incarnation than one already heard of, or too old to matter
        (its copy lapsed or will by its own age)."""
        diffs = self.advance(now_ms)
        if owner.node == self.local.node:
            return False, diffs
        known = self._incarnations.get(owner.node)
        if known is not None and owner.incarnation < known:
            self.counters["refused_incarnation"] += 1
            return False, diffs
        heartbeat_ms = min(heartbeat_ms, self.now_ms + self._clock_skew_ms_max)
        if self._aged(heartbeat_ms):
            self.counters["refused_lapsed"] += 1
            return False, diffs
        touched = self._drop_node(owner.node, "owners_departed")
        self._incarnations[owner.node] = owner.incarnation
        self._departed[owner] = max(heartbeat_ms, self._departed.get(owner, heartbeat_ms))
        if len(self._departed) > self._owners_max:
            # The oldest goodbye is forgotten first; its owner's frames are older still, soon refused by age.
            del self._departed[min(self._departed, key=self._departed.__getitem__)]
        return True, diffs + self._settle(touched)

    def keep_nodes(self, nodes: set[str], now_ms: int) -> Diffs:
        """Follows the committed member set: every copy, incarnation and
        goodbye of a node not in `nodes` is forgotten now, so its entries
        leave this view at once. No timer is needed, and none could be
        wrong: the set is committed through Raft, a removed node refuses
        every call (it cannot track anything any more), and its frames are
        refused by the engine from now on, so nothing of it comes back."""
        diffs = self.advance(now_ms)
        gone = {node for node in self._incarnations if node not in nodes and node != self.local.node}
        touched: set[tuple[OwnerId, EntryId]] = set()
        for node in sorted(gone):
            touched |= self._drop_node(node, "owners_removed")
            del self._incarnations[node]
        self._departed = {owner: said for owner, said in self._departed.items() if owner.node not in gone}
        return diffs + self._settle(touched)

    # -- transfers --------------------------------------------------------

    def apply(self, transfer: Transfer, now_ms: int) -> tuple[Outcome, Diffs]:
        """Brings the copy of `transfer.owner` to `transfer.version`. The
        owner must be alive here (a heartbeat `heard` first)."""
        diffs = self.advance(now_ms)
        copy = self._copies.get(transfer.owner)
        if copy is None:
            return Outcome.REFUSED, diffs
        if transfer.version <= copy.version:
            self.counters["stale"] += 1
            return Outcome.STALE, diffs
        if not transfer.full and copy.version < transfer.base_version:
            self.counters["needs_base"] += 1
            return Outcome.NEEDS_BASE, diffs
        owner = transfer.owner
        touched = {(owner, entry) for entry in transfer.upserts} | {(owner, entry) for entry in transfer.removed}
        if transfer.full:
            touched |= {(owner, entry) for entry in copy.entries}
            copy.sessions, copy.entries, copy.by_session = {}, {}, {}
        for session in transfer.closed:
            copy.sessions.pop(session, None)
            touched |= {(owner, entry) for entry in copy.by_session.pop(session, ())}
        for entry in transfer.removed:
            if copy.entries.pop(entry, None) is not None:
                copy.by_session.get(entry.session, set()).discard(entry)
        for session, deadline_ms in transfer.sessions.items():
            copy.sessions[session] = deadline_ms
            heapq.heappush(self._deadlines, (deadline_ms, owner, session))
            touched |= {(owner, entry) for entry in copy.by_session.get(session, ())}
        for entry, written in transfer.upserts.items():
            copy.entries[entry] = written
            copy.by_session.setdefault(entry.session, set()).add(entry)
        copy.version = transfer.version
        return Outcome.APPLIED, diffs + self._settle(touched)

    def status(self) -> dict[str, object]:
        return {"owners": {f"{owner.node}/{owner.incarnation:x}": {
                    "version": copy.version, "heartbeat_ms": copy.heartbeat_ms, "sessions": len(copy.sessions),
                    "entries": len(copy.entries)} for owner, copy in sorted(self._copies.items())},
                **self.counters}

    # -- inside -----------------------------------------------------------

    def _aged(self, heartbeat_ms: int) -> bool:
        """Whether a heartbeat is too old to keep anyone alive now."""
        return self.now_ms - heartbeat_ms >= self._node_down_ms

    def _lapsed(self, owner: OwnerId) -> bool:
        if owner == self.local:
            return False
        return self._aged(self._copies[owner].heartbeat_ms)

    def _drop(self, owner: OwnerId) -> set[tuple[OwnerId, EntryId]]:
        copy = self._copies.pop(owner)
        return {(owner, entry) for entry in copy.entries}

    def _drop_node(self, node: str, counter: str) -> set[tuple[OwnerId, EntryId]]:
        """Drops every copy of `node`'s incarnations (a later one replaces
        them, or a goodbye ends them), each counted under `counter`."""
        touched: set[tuple[OwnerId, EntryId]] = set()
        for earlier in [copy for copy in self._copies if copy.node == node]:
            touched |= self._drop(earlier)
            self.counters[counter] += 1
        return touched

    def _shown(self, owner: OwnerId, entry: EntryId) -> Meta | None:
        """What list should show for the entry now, or None."""
        copy = self._copies.get(owner)
        if copy is None or entry not in copy.entries:
            return None
        deadline_ms = copy.sessions.get(entry.session)
        if deadline_ms is None or deadline_ms <= self.now_ms:
            return None
        meta, version = copy.entries[entry]
        return meta_of(owner, entry, meta, version)

    def _settle(self, touched: set[tuple[OwnerId, EntryId]]) -> Diffs:
        """Brings the view in line with the copies for `touched` entries;
        the diffs, one per topic that changed, in topic order."""
        diffs: dict[bytes, Diff] = {}
        for owner, entry in sorted(touched):
            keys = self._view.get(entry.topic, {})
            slot = (owner, entry.session)
            shown_before = keys.get(entry.key, {}).get(slot)
            shown_after = self._shown(owner, entry)
            if shown_before == shown_after:
                continue
            diff = diffs.setdefault(entry.topic, Diff(entry.topic))
            if shown_before is not None:
                diff.leaves.setdefault(entry.key, []).append(shown_before)
                metas = keys[entry.key]
                del metas[slot]
                if not metas:
                    del keys[entry.key]
                    if not keys:
                        del self._view[entry.topic]
            if shown_after is not None:
                diff.joins.setdefault(entry.key, []).append(shown_after)
                self._view.setdefault(entry.topic, {}).setdefault(entry.key, {})[slot] = shown_after
        for diff in diffs.values():
            for metas in (*diff.joins.values(), *diff.leaves.values()):
                metas.sort()
        return [diffs[topic] for topic in sorted(diffs)]
