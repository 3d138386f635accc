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
   (`keyed_digest`). A node that receives digests compares them with its
   own; where they differ it answers with its digests one level down (the
   children of at most KEYED_SYNC_FRAME_DIGESTS_MAX / fanout differing
   nodes, chosen at random when there are more), and the two descend in
   turn. A differing bucket, or a differing node with few keys below it
   here (LIST_KEYS_BELOW_MAX), is listed instead: KEYS, the (key, entry
   hash) of every key below it. The other side answers ENTRIES: its states
   of the keys that differ or that only it holds, and `want`, the keys
   whose states it lacks or holds differently; the lister merges them and
   answers ENTRIES with the wanted keys' states (skipping those the other
   already sent as they are). Each step sends at most
   KEYED_SYNC_STEP_KEYS_MAX keys, in frames of at most
   KEYED_SYNC_FRAME_KEYS_MAX keys and frame_bytes_max bytes; what a step
   leaves out still differs next round, so a million keys converge in
   bounded frames, a bounded number of keys at a time.

Equal tables cost one frame of one digest per exchange. A frame is
independent of every other (see `keyed_wire`): a lost one loses only its
work. Received states are checked (canonical encoding of the table's kind,
timestamps within the clock drift bound) before any is merged.

Rejected frames are counted by reason in `status()`: too_large,
bad_version, bad_mac, malformed, wrong_recipient, not_member, clock_drift,
bad_payload; frames for tables this node lacks, or holds as another kind,
are counted as ignored.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

from tandemkv import limits
from tandemkv.errors import AlreadyExists, InvalidArgument, NotFound

from tandemkv.server.available.crdt.hlc import ClockDriftExceeded, Hlc, HybridClock
from tandemkv.server.available.crdt.keyed import KeyedTable, ScanPage
from tandemkv.server.available.crdt.kinds import Origin, TableKind
from tandemkv.server.available.gossip.keyed_digest import (DIGEST_BYTES, KEYED_DIGEST_DEPTH, KEYED_DIGEST_FANOUT,
                                                           BucketDigests, pack_digests, unpack_digests)
from tandemkv.server.available.gossip.keyed_exchange import answer_keys, check_entries, descend, groups, key_items
from tandemkv.server.available.gossip.keyed_outbox import PushOutbox
from tandemkv.server.available.gossip.keyed_wire import (KeyedMessage, KeyedMessageKind as Kind,
                                                         open_frame, seal)
from tandemkv.server.available.gossip.wire import Rejected

# Milliseconds between two rounds, and members one round's exchange asks.
KEYED_ROUND_INTERVAL_MS = 1_000
KEYED_SYNC_FANOUT = 2
# Bytes of a frame left for its fixed fields (names, stamp, MAC); items get the rest.
FRAME_FIXED_BYTES_MAX = 1_024


@dataclass(frozen=True)
class KeyedSyncConfig:
    round_interval_ms: int = KEYED_ROUND_INTERVAL_MS
    fanout: int = KEYED_SYNC_FANOUT
    frame_bytes_max: int = limits.UDP_FRAME_BYTES_MAX
    frame_keys_max: int = limits.KEYED_SYNC_FRAME_KEYS_MAX
    frame_digests_max: int = limits.KEYED_SYNC_FRAME_DIGESTS_MAX
    step_keys_max: int = limits.KEYED_SYNC_STEP_KEYS_MAX
    push_keys_max: int = limits.KEYED_PUSH_KEYS_MAX
    push_bytes_max: int = limits.KEYED_PUSH_BYTES_MAX
    digest_fanout: int = KEYED_DIGEST_FANOUT
    digest_depth: int = KEYED_DIGEST_DEPTH

    def __post_init__(self) -> None:
        assert self.round_interval_ms >= 1 and self.fanout >= 1
        assert self.frame_bytes_max >= limits.GOSSIP_MESSAGE_BYTES_MIN
        assert self.frame_digests_max >= self.digest_fanout and self.step_keys_max >= 1


class Outgoing(NamedTuple):
    peer: str
    frame: bytes


@dataclass(frozen=True)
class KeyedTableStatus:
    kind: TableKind
    keys: int          # held, removed ones included
    root: str          # the digest tree's root, hex: equal tables, equal roots
    outbox_keys: int
    outbox_bytes: int
    pushes_dropped: int


@dataclass(frozen=True)
class KeyedSyncStatus:
    node_id: str
    round: int
    tables: dict[str, KeyedTableStatus]
    rejected: dict[str, int]
    ignored: dict[str, int]
    counters: dict[str, int]


class _Replica:
    """One keyed table here: its state, its digests, its outbox."""

    def __init__(self, name: str, kind: TableKind, digests: BucketDigests, outbox: PushOutbox,
                 changed: set[tuple[str, bytes]]) -> None:
        def on_change(key: bytes, before: bytes | None, after: bytes) -> None:
            digests.change(key, before, after)
            changed.add((name, key))
        self.table = KeyedTable(kind, on_change)
        self.digests = digests
        self.outbox = outbox


class KeyedSync:
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
        self._replicas: dict[str, _Replica] = {}
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
        replica = self._replicas[name] = _Replica(name, kind, digests, outbox, self._changed)
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

    # Receiving.

    def _admit(self, now_ms: int, message: KeyedMessage) -> None:
        if message.recipient != self.node_id:
            raise Rejected("wrong_recipient")
        if message.sender not in self._peers:
            raise Rejected("not_member", message.sender)
        self._check_stamp(now_ms, message.stamp)
        self._clock.observe(now_ms, message.stamp)

    def _handle(self, now_ms: int, replica: _Replica, message: KeyedMessage) -> list[Outgoing]:
        if message.kind == Kind.DIGESTS:
            return self._on_digests(replica, message)
        if message.kind == Kind.KEYS:
            return self._on_keys(replica, message)
        self._merge_entries(now_ms, replica, message.entries)
        if message.kind == Kind.DELTAS or not message.want:
            return []
        sent = dict(message.entries)
        wanted = [(key, data) for key in message.want
                  if (data := replica.table.encoded(key)) is not None and data != sent.get(key)]
        return self._entry_frames(message.sender, message.table, Kind.ENTRIES, wanted, [])

    def _on_digests(self, replica: _Replica, message: KeyedMessage) -> list[Outgoing]:
        digests, level = replica.digests, message.level
        # Parents whose children fit one frame, by count and by bytes
        # (8 per digest, up to 5 for the parent's number).
        parents_max = min(self.config.frame_digests_max // digests.fanout,
                          self._room_bytes() // (DIGEST_BYTES * digests.fanout + 5))
        differing = descend(digests, level, message.parents, unpack_digests(message.digests),
                            parents_max, self._rng)
        out = self._key_frames(message.sender, message.table, replica, level, differing.listed)
        if differing.descend:
            children = [digest for parent in differing.descend for digest in digests.children(level, parent)]
            out.append(self._out(message.sender, message.table, Kind.DIGESTS, level=level + 1,
                                 parents=tuple(differing.descend), digests=pack_digests(children)))
        return out

    def _on_keys(self, replica: _Replica, message: KeyedMessage) -> list[Outgoing]:
        send, want = answer_keys(replica.table, replica.digests, message.level, message.hashes,
                                 message.nodes, self.config.step_keys_max)
        return self._entry_frames(message.sender, message.table, Kind.ENTRIES, send, want)

    def _merge_entries(self, now_ms: int, replica: _Replica, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Checks every entry, then merges them all (or none)."""
        latest = check_entries(replica.table.kind, entries, self._clock, now_ms)
        if latest is not None:
            self._clock.observe(now_ms, latest)
        for key, data in entries:
            if replica.table.merge_encoded(key, data):
                self._counters["keys_merged"] += 1

    def _check_stamp(self, now_ms: int, stamp: Hlc) -> None:
        try:
            self._clock.check(now_ms, stamp)
        except ClockDriftExceeded as error:
            raise Rejected("clock_drift", str(error)) from error

    # Sending.

    def _key_frames(self, peer: str, name: str, replica: _Replica, level: int,
                    nodes: list[int]) -> list[Outgoing]:
        """KEYS frames for the differing `nodes` at `level`; a node is listed
        as complete in the frame of its last key (the empty ones in the first)."""
        if not nodes:
            return []
        # Nodes whose numbers (up to 6 bytes each) fit in half a frame.
        items, empty = key_items(replica.table, replica.digests, level, nodes, self.config.step_keys_max,
                                 self._room_bytes() // 12, self._rng)
        frames: list[Outgoing] = []
        for group in groups(items, lambda item: len(item.key) + 24, self.config.frame_keys_max,
                            self._room_bytes(), len(empty) * 6):
            complete = [item.node for item in group if item.last_of_node] + (empty if not frames else [])
            frames.append(self._out(peer, name, Kind.KEYS, level=level, nodes=tuple(complete),
                                    hashes=tuple((item.key, item.hash) for item in group)))
        return frames

    def _entry_frames(self, peer: str, name: str, kind: Kind, entries: list[tuple[bytes, bytes]],
                      want: list[bytes]) -> list[Outgoing]:
        """ENTRIES or DELTAS frames holding `entries`, then `want`."""
        room = self._room_bytes()
        fitting = [entry for entry in entries if len(entry[0]) + len(entry[1]) + 16 <= room]
        self._counters["entries_too_large"] += len(entries) - len(fitting)
        items: list[tuple[bytes, bytes | None]] = [*fitting, *((key, None) for key in want)]
        size = lambda item: len(item[0]) + (16 if item[1] is None else len(item[1]) + 16)  # noqa: E731
        frames = []
        for group in groups(items, size, self.config.frame_keys_max, room):
            frames.append(self._out(peer, name, kind,
                                    entries=tuple((k, v) for k, v in group if v is not None),
                                    want=tuple(k for k, v in group if v is None)))
        self._counters["keys_sent"] += len(items)
        return frames

    def _room_bytes(self) -> int:
        return self.config.frame_bytes_max - FRAME_FIXED_BYTES_MAX

    def _out(self, peer: str, name: str, kind: Kind, **fields: Any) -> Outgoing:
        message = KeyedMessage(kind, self.node_id, peer, self._clock.last(), name,
                               self._replicas[name].table.kind, **fields)
        frame = seal(message, self._secret)
        assert len(frame) <= self.config.frame_bytes_max, "frames stay within the limit"
        self._counters["frames_sent"] += 1
        return Outgoing(peer, frame)

    # Bookkeeping.

    def _queue_push(self, replica: _Replica, delta: KeyedTable) -> None:
        for key, data in delta.items_encoded():
            replica.outbox.add(key, data)

    def _origin(self, now_ms: int) -> Origin:
        return Origin(self.replica_id, self._clock.now(now_ms))

    def _replica(self, name: str) -> _Replica:
        replica = self._replicas.get(name)
        if replica is None:
            raise NotFound(f"no keyed CRDT table {name!r} on this node")
        return replica
