"""`KeyedSync`: the sans-I/O replication of keyed CRDT tables for one node.

It is fed time and bytes and answers with bytes to send, like `GossipNode`:

    delta = sync.mutate(now_ms, table, key, "put", field, value)
    out = sync.tick(now_ms)               # every round_interval_ms
    out = sync.receive(now_ms, frame)     # a frame some member sent here

Two paths, as delta-state CRDTs and Phoenix.Tracker pair them:

1. Eager push. A local write's delta waits in its table's outbox (joined
   per key) and goes to every member at the next round, in DELTAS frames.
   The outbox is bounded (KEYED_PUSH_KEYS_MAX, KEYED_PUSH_BYTES_MAX); past
   it the oldest keys are dropped, and a lost push is a lost frame: path 2
   repairs both.
2. Anti-entropy, with no per-peer state. Each round, for each table, this
   node sends `fanout` random live members (and one the owner holds dead,
   `set_dead`, so a heal is found) the root of its bucket digest tree
   (`keyed_digest`). The two descend the trees where they differ, down
   to lists of keys and then the states of the keys that differ, a
   bounded number of keys per step and per frame (keyed_steps.py says
   each step); what a step leaves out still differs next round, so a
   million keys converge in bounded frames.

Equal tables cost one frame of one digest per exchange. A frame is
independent of every other (see `keyed_wire`): a lost one loses only its
work. Received states are checked (canonical encoding of the table's kind,
timestamps within the clock drift bound) before any is merged.

This file owns the node's tables, its calls and its round (the pushes,
and the exchanges begun); keyed_steps.py, the exchange's steps after its
first frame; keyed_records.py, its configuration and status.

Rejected frames are counted by reason in `status()`: too_large,
bad_version, bad_mac, malformed, wrong_recipient, not_member, clock_drift,
bad_payload; frames for tables this node lacks, or holds as another kind,
are counted as ignored.
"""

from __future__ import annotations

import collections
import random
from typing import Any, Iterable

from tandemkv import limits
from tandemkv.errors import AlreadyExists, InvalidArgument, NotFound

from tandemkv.server.available.crdt.hlc import HybridClock
from tandemkv.server.available.crdt.keyed import KeyedTable, ScanPage
from tandemkv.server.available.crdt.kinds import Origin, TableKind
from tandemkv.server.available.gossip.keyed_digest import BucketDigests, pack_digests
from tandemkv.server.available.gossip.keyed_outbox import PushOutbox
# Its callers import these from here.
from tandemkv.server.available.gossip.keyed_records import (FRAME_FIXED_BYTES_MAX, KEYED_ROUND_INTERVAL_MS,
                                                            KEYED_SYNC_FANOUT, KeyedReplica, KeyedSyncConfig,
                                                            KeyedSyncStatus, KeyedTableStatus, Outgoing)
from tandemkv.server.available.gossip.keyed_steps import KeyedSteps
from tandemkv.server.available.gossip.keyed_wire import KeyedMessageKind as Kind, open_frame
from tandemkv.server.available.gossip.wire import Rejected

__all__ = ["FRAME_FIXED_BYTES_MAX", "KEYED_ROUND_INTERVAL_MS", "KEYED_SYNC_FANOUT", "KeyedSync", "KeyedSyncConfig",
           "KeyedSyncStatus", "KeyedTableStatus", "Outgoing"]


class KeyedSync(KeyedSteps):
    """Not thread-safe: one owner feeds it."""

    def __init__(self, node_id: str, secret: bytes, rng: random.Random, clock: HybridClock,
                 now_ms: int, config: KeyedSyncConfig = KeyedSyncConfig(),
                 replica_id: str | None = None) -> None:
        assert node_id and secret
        self.node_id = node_id
        self.replica_id = replica_id or node_id
        self.config = config
        self._secret = secret
        self._rng = rng
        self._clock = clock
        self._round = 0
        self._next_round_ms = now_ms
        self._peers: list[str] = []
        # Members the owner knows to be down (its liveness view): a round's
        # exchanges go to live members, plus one of these so a heal is seen.
        self._dead: set[str] = set()
        self._replicas: dict[str, KeyedReplica] = {}
        self._changed: set[tuple[str, bytes]] = set()
        self._rejected: collections.Counter[str] = collections.Counter()
        self._ignored: collections.Counter[str] = collections.Counter()
        self._counters: collections.Counter[str] = collections.Counter()

    # Membership and tables.

    def set_members(self, members: Iterable[str], secret: bytes | None = None) -> None:
        """The committed member set (this node may be listed), at start and
        after every change: a removed member is no longer exchanged with
        and its frames are rejected as `not_member`. `secret`, when given,
        keys frames from now on."""
        peers = sorted(set(members) - {self.node_id})
        if len(peers) + 1 > limits.GOSSIP_MEMBERS_MAX:
            raise InvalidArgument(f"more than {limits.GOSSIP_MEMBERS_MAX} members", limit="GOSSIP_MEMBERS_MAX")
        if secret is not None:
            assert secret
            self._secret = secret
        self._peers = peers
        self._dead &= set(peers)

    def set_dead(self, dead: Iterable[str]) -> None:
        """Members to leave out of exchanges (but one per round), from the
        owner's liveness view; frames from them are still taken."""
        self._dead = set(dead) & set(self._peers)

    def create_table(self, name: str, kind: TableKind,
                     entries: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """Adds a table, empty or holding `entries` (key, encoded state) as
        storage kept them. Creating an existing table with its kind is a no-op."""
        existing = self._replicas.get(name)
        if existing is not None:
            if existing.table.kind != kind:
                raise AlreadyExists(f"keyed table {name!r} exists as a {existing.table.kind.value}")
            return
        if not 1 <= len(name.encode("utf-8")) <= limits.CRDT_TABLE_NAME_BYTES_MAX:
            raise InvalidArgument(f"a table name is 1 to {limits.CRDT_TABLE_NAME_BYTES_MAX} bytes",
                                  limit="CRDT_TABLE_NAME_BYTES_MAX")
        if len(self._replicas) >= limits.CRDT_TABLES_MAX:
            raise InvalidArgument(f"more than {limits.CRDT_TABLES_MAX} tables", limit="CRDT_TABLES_MAX")
        digests = BucketDigests(self.config.digest_fanout, self.config.digest_depth)
        outbox = PushOutbox(kind, self.config.push_keys_max, self.config.push_bytes_max)
        replica = self._replicas[name] = KeyedReplica(name, kind, digests, outbox, self._changed)
        for key, data in entries:
            replica.table.merge_encoded(key, data)
        self._changed -= {(name, key) for key, _ in replica.table.items_encoded()}

    def drop_table(self, name: str) -> None:
        self._replicas.pop(name, None)
        # In place: every table's change listener adds to this one set.
        self._changed.difference_update([change for change in self._changed if change[0] == name])

    def table(self, name: str) -> KeyedTable:
        """The table's state. The caller must not change it."""
        return self._replica(name).table

    # Reads and writes.

    def read(self, name: str, key: bytes) -> Any:
        return self._replica(name).table.read(key)

    def scan(self, name: str, prefix: bytes = b"", after: bytes | None = None,
             limit: int = limits.CRDT_SCAN_ENTRIES_MAX) -> ScanPage:
        return self._replica(name).table.scan(prefix, after, limit)

    def mutate(self, now_ms: int, name: str, key: bytes, operation: str, *args: Any) -> KeyedTable:
        """Runs the kind's mutator on one key here; returns the delta, which
        the next round pushes to every member."""
        replica = self._replica(name)
        delta = replica.table.mutate(self._origin(now_ms), key, operation, *args)
        self._queue_push(replica, delta)
        return delta

    def remove(self, now_ms: int, name: str, key: bytes) -> KeyedTable:
        """Removes one key as its kind says (see crdt/keyed.py)."""
        replica = self._replica(name)
        delta = replica.table.remove(self._origin(now_ms), key)
        self._queue_push(replica, delta)
        return delta

    def take_changed(self) -> set[tuple[str, bytes]]:
        """(table, key) of every key changed since the last call, by local
        writes or merges: for persistence and for subscribers."""
        changed = set(self._changed)
        self._changed.clear()  # in place, as drop_table
        return changed

    # Time and the network.

    def next_round_ms(self) -> int:
        return self._next_round_ms

    def tick(self, now_ms: int) -> list[Outgoing]:
        """Runs a round if one is due: the pushes, and the exchanges begun."""
        if now_ms < self._next_round_ms:
            return []
        self._next_round_ms = now_ms + self.config.round_interval_ms
        self._round += 1
        out = self.flush()
        living = [peer for peer in self._peers if peer not in self._dead]
        for name, replica in self._replicas.items():
            targets = self._rng.sample(living, min(self.config.fanout, len(living)))
            if self._dead:
                targets.append(self._rng.choice(sorted(self._dead)))
            for peer in targets:
                out.append(self._out(peer, name, Kind.DIGESTS, level=0,
                                     digests=pack_digests([replica.digests.root()])))
                self._counters["exchanges_started"] += 1
        return out

    def flush(self) -> list[Outgoing]:
        """The pushes of every outbox, now (a round does this first)."""
        out: list[Outgoing] = []
        for name, replica in self._replicas.items():
            if not replica.outbox:
                continue
            entries = replica.outbox.take()
            for peer in self._peers:
                out += self._entry_frames(peer, name, Kind.DELTAS, entries, [])
        return out

    def receive(self, now_ms: int, frame: bytes) -> list[Outgoing]:
        try:
            message = open_frame(frame, self._secret, self.config.frame_bytes_max)
            self._admit(now_ms, message)
            replica = self._replicas.get(message.table)
            if replica is None or replica.table.kind != message.table_kind:
                self._ignored["unknown_table" if replica is None else "kind_mismatch"] += 1
                return []
            self._counters["frames_received"] += 1
            return self._handle(now_ms, replica, message)
        except Rejected as rejected:
            self._rejected[rejected.reason] += 1
            return []

    def status(self) -> KeyedSyncStatus:
        tables = {name: KeyedTableStatus(replica.table.kind, len(replica.table),
                                         f"{replica.digests.root():016x}", len(replica.outbox),
                                         replica.outbox.size_bytes, replica.outbox.dropped)
                  for name, replica in sorted(self._replicas.items())}
        return KeyedSyncStatus(self.node_id, self._round, tables, dict(self._rejected),
                               dict(self._ignored), dict(self._counters))

    # Bookkeeping.

    def _queue_push(self, replica: KeyedReplica, delta: KeyedTable) -> None:
        for key, data in delta.items_encoded():
            replica.outbox.add(key, data)

    def _origin(self, now_ms: int) -> Origin:
        return Origin(self.replica_id, self._clock.now(now_ms))

    def _replica(self, name: str) -> KeyedReplica:
        replica = self._replicas.get(name)
        if replica is None:
            raise NotFound(f"no keyed CRDT table {name!r} on this node")
        return replica
