"""`GossipNode`: the sans-I/O gossip protocol of one node.

It is fed time and bytes and answers with bytes to send; it never opens a
socket, starts a thread, reads a clock or touches a disk:

    out = node.tick(now_ms)                 # at least every round_interval_ms
    out = node.receive(now_ms, frame)       # a frame some peer sent here
    for peer, frame in out: transport.send(peer, frame)

Everything that decides what goes on the wire lives in this file.

A round (every `round_interval_ms`) sends a PUSH to `fanout` random peers
that are not dead, plus one random dead peer (so partitions heal). Each
message carries one section per table: its digest, its sequence number and
an acknowledgement of the recipient's sequence number this node covers.

- PUSH: deltas since the peer's acknowledgement, when the buffer reaches
  back that far; else nothing yet.
- REPLY (to a PUSH): the same deltas; or, where there is no delta path and
  the digests differ, the whole state; and `want` for each table where the
  PUSH left this node behind the pusher.
- FINAL (to a REPLY): deltas or the whole state for the tables wanted.

Equal digests cost a section of metadata and nothing else, and they also
stand for an acknowledgement both ways. A payload too large for one message
is split into chunks sent as extra FINAL messages (see gossip_transfer).

Acknowledgements are per peer, per table, and per incarnation: a peer that
restarts (a larger incarnation stamp) starts over with full-state syncs, and
frames from an earlier incarnation are rejected. The replica id that owns
this node's dots and counter entries must never reappear with less state
than it had: a node that lost its data comes back under a new replica id.

Rejected frames are counted by reason in `status()`: too_large, bad_version,
bad_mac, malformed, wrong_recipient, not_member, clock_drift,
stale_incarnation, bad_payload.
"""

from __future__ import annotations

import collections
import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

from tandemkv import limits
from tandemkv.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.crdt.kinds import CRDT_TYPES, Crdt, Origin, TableKind, decode_crdt, encode_crdt
from tandemkv.server.available.crdt.mutations import MUTATORS  # each kind's mutator methods
from tandemkv.server.available.gossip.liveness import Liveness, PeerLiveness, PeerState
from tandemkv.server.available.gossip.tables import TableReplica
from tandemkv.server.available.gossip.transfer import Reassembly, split_payload
from tandemkv.server.available.gossip.wire import (Chunk, Message, MessageKind, Rejected, Section, open_frame, seal,
                          section_bytes)
from tandemkv.server.available.crdt.hlc import ClockDriftExceeded, Hlc, HybridClock

# Milliseconds between two gossip rounds of one node.
GOSSIP_ROUND_INTERVAL_MS = 1_000
# Live peers one round pushes to (one dead peer is probed besides).
GOSSIP_FANOUT = 2
# Rounds without a rising heartbeat before a peer is suspect, and dead.
GOSSIP_SUSPECT_AFTER_ROUNDS = 3
GOSSIP_DEAD_AFTER_ROUNDS = 10


@dataclass(frozen=True)
class GossipConfig:
    round_interval_ms: int = GOSSIP_ROUND_INTERVAL_MS
    fanout: int = GOSSIP_FANOUT
    suspect_after_rounds: int = GOSSIP_SUSPECT_AFTER_ROUNDS
    dead_after_rounds: int = GOSSIP_DEAD_AFTER_ROUNDS
    message_bytes_max: int = limits.GOSSIP_MESSAGE_BYTES_MAX
    delta_buffer_entries_max: int = limits.DELTA_BUFFER_ENTRIES_MAX
    delta_buffer_bytes_max: int = limits.DELTA_BUFFER_BYTES_MAX
    transfers_per_peer_max: int = limits.TRANSFERS_PER_PEER_MAX
    transfer_bytes_per_peer_max: int = limits.TRANSFER_BYTES_PER_PEER_MAX
    transfer_rounds_max: int = limits.TRANSFER_ROUNDS_MAX

    def __post_init__(self) -> None:
        assert self.round_interval_ms >= 1 and self.fanout >= 1
        assert self.message_bytes_max >= limits.GOSSIP_MESSAGE_BYTES_MIN


class Outgoing(NamedTuple):
    peer: str
    frame: bytes


@dataclass(frozen=True)
class TableStatus:
    kind: TableKind
    digest: str
    seq: int
    buffered_deltas: int
    buffered_bytes: int


@dataclass(frozen=True)
class GossipStatus:
    node_id: str
    round: int
    incarnation: Hlc
    peers: dict[str, PeerLiveness]
    tables: dict[str, TableStatus]
    rejected: dict[str, int]
    ignored: dict[str, int]
    counters: dict[str, int]


@dataclass
class _TableLink:
    acked: int | None = None    # this node's seq the peer is known to cover
    covered: int | None = None  # the peer's seq this node covers


@dataclass
class _PeerLink:
    incarnation: Hlc | None = None
    tables: dict[str, _TableLink] = field(default_factory=dict)


class _Payload(NamedTuple):
    table: str
    full: bool
    upto_seq: int
    data: bytes


def _max_or(current: int | None, value: int) -> int:
    return value if current is None else max(current, value)


class GossipNode:
    """The gossip protocol of one node. Not thread-safe: one owner feeds it."""

    def __init__(self, node_id: str, secret: bytes, rng: random.Random, clock: HybridClock,
                 now_ms: int, config: GossipConfig = GossipConfig(),
                 replica_id: str | None = None) -> None:
        assert node_id and secret
        self.node_id = node_id
        self.replica_id = replica_id or node_id
        self.config = config
        self._secret = secret
        self._rng = rng
        self._clock = clock
        self.incarnation = clock.now(now_ms)
        self._heartbeat = self.incarnation
        self._round = 0
        self._next_round_ms = now_ms
        self._tables: dict[str, TableReplica] = {}
        self._peers: set[str] = set()
        self._links: dict[str, _PeerLink] = {}
        self._liveness = Liveness(config.suspect_after_rounds, config.dead_after_rounds)
        self._reassembly = Reassembly(config.transfers_per_peer_max,
                                      config.transfer_bytes_per_peer_max,
                                      config.transfer_rounds_max)
        self._next_transfer_id = 0
        self._changed: set[str] = set()
        self._rejected: collections.Counter[str] = collections.Counter()
        self._ignored: collections.Counter[str] = collections.Counter()
        self._counters: collections.Counter[str] = collections.Counter()

    # Membership and tables, set from outside (cluster configuration, Raft).

    def set_members(self, members: Iterable[str], secret: bytes | None = None) -> None:
        """The nodes that replicate the tables (this one may be listed): the
        committed member set, at start and after every change. What this
        node knows of a removed node (its links, acknowledgements, open
        transfers, liveness record) is dropped, and its frames are rejected
        as `not_member` from now on; a node added is pushed to from the next
        round. `secret`, when given, keys frames from now on (a key derived
        from the member set changes with it)."""
        peers = set(members) - {self.node_id}
        if len(peers) + 1 > limits.GOSSIP_MEMBERS_MAX:
            raise InvalidArgument(f"more than {limits.GOSSIP_MEMBERS_MAX} members",
                                  limit="GOSSIP_MEMBERS_MAX")
        if secret is not None:
            assert secret
            self._secret = secret
        for peer in self._peers - peers:
            self._links.pop(peer, None)
            self._reassembly.forget_peer(peer)
        self._peers = peers
        self._liveness.set_peers(peers, self._round)

    def create_table(self, name: str, kind: TableKind, encoded: bytes | None = None) -> None:
        """Adds a table, empty or from its encoded state (as `encoded_table`
        returned it). Creating an existing table with its kind is a no-op."""
        existing = self._tables.get(name)
        if existing is not None:
            if existing.kind != kind:
                raise AlreadyExists(f"table {name!r} exists as a {existing.kind.value}")
            return
        _check_table_name(name)
        if len(self._tables) >= limits.CRDT_TABLES_MAX:
            raise InvalidArgument(f"more than {limits.CRDT_TABLES_MAX} tables",
                                  limit="CRDT_TABLES_MAX")
        state = CRDT_TYPES[kind]() if encoded is None else decode_crdt(encoded, kind)
        self._tables[name] = TableReplica(name, kind, state, self.config.delta_buffer_entries_max,
                                          self.config.delta_buffer_bytes_max)

    def drop_table(self, name: str) -> None:
        self._tables.pop(name, None)
        self._changed.discard(name)
        for link in self._links.values():
            link.tables.pop(name, None)

    def tables(self) -> dict[str, TableKind]:
        return {name: table.kind for name, table in self._tables.items()}

    # Reads and writes.

    def read(self, name: str) -> Crdt:
        """The table's current state. The caller must not change it."""
        return self._table(name).state

    def encoded_table(self, name: str) -> bytes:
        """The table's canonical encoding, for storage."""
        return self._table(name).encoded()

    def mutate(self, now_ms: int, name: str, operation: str, *args: Any) -> Crdt:
        """Runs a mutator (e.g. "increment", "add", "put") of the table's
        type here, at a new hybrid timestamp; returns the delta it applied.
        Gossip carries it to the peers from the next round on."""
        table = self._table(name)
        if operation not in MUTATORS[table.kind]:
            raise FailedPrecondition(f"table {name!r} is a {table.kind.value}; "
                                     f"it has no {operation!r}")
        origin = Origin(self.replica_id, self._clock.now(now_ms))
        delta = getattr(table.state, operation)(origin, *args)
        if table.apply(delta):
            self._changed.add(name)
        return delta

    def take_changed(self) -> set[str]:
        """The tables changed since the last call, for the persistence layer."""
        changed, self._changed = self._changed, set()
        return changed

    # Time and the network.

    def next_round_ms(self) -> int:
        """When `tick` next has something to do."""
        return self._next_round_ms

    def tick(self, now_ms: int) -> list[Outgoing]:
        """Runs a round if one is due; returns the frames to send."""
        if now_ms < self._next_round_ms:
            return []
        self._next_round_ms = now_ms + self.config.round_interval_ms
        self._round += 1
        self._heartbeat = self._clock.now(now_ms)
        self._reassembly.expire(self._round)
        self._forget_acknowledged_deltas()
        out: list[Outgoing] = []
        for peer in self._round_targets():
            out += self._build(peer, MessageKind.PUSH, {})
        return out

    def receive(self, now_ms: int, frame: bytes) -> list[Outgoing]:
        """Takes one frame from the network; returns the frames to send."""
        try:
            message = open_frame(frame, self._secret, self.config.message_bytes_max)
            self._admit(now_ms, message)
        except Rejected as rejected:
            self._rejected[rejected.reason] += 1
            return []
        self._counters["frames_received"] += 1
        incoming = {}
        for section in message.sections:
            if self._take_section(now_ms, message, section):
                incoming[section.table] = section
        if message.kind == MessageKind.PUSH:
            return self._build(message.sender, MessageKind.REPLY, incoming)
        if message.kind == MessageKind.REPLY:
            return self._build(message.sender, MessageKind.FINAL, incoming)
        return []

    def status(self) -> GossipStatus:
        tables = {}
        for name, table in sorted(self._tables.items()):
            entries, size = table.buffered()
            tables[name] = TableStatus(table.kind, table.digest().hex(), table.seq, entries, size)
        peers = {peer: self._liveness.status(peer, self._round) for peer in sorted(self._peers)}
        counters = dict(self._counters, transfers_open=self._reassembly.open_transfers(),
                        transfers_dropped=self._reassembly.dropped)
        return GossipStatus(self.node_id, self._round, self.incarnation, peers, tables,
                            dict(self._rejected), dict(self._ignored), counters)

    # Receiving.

    def _admit(self, now_ms: int, message: Message) -> None:
        if message.recipient != self.node_id:
            raise Rejected("wrong_recipient")
        if message.sender not in self._peers:
            raise Rejected("not_member", message.sender)
        try:
            self._clock.check(now_ms, message.stamp)
            for beat in message.heartbeats.values():
                self._clock.check(now_ms, beat)
        except ClockDriftExceeded as error:
            raise Rejected("clock_drift", str(error)) from error
        link = self._links.setdefault(message.sender, _PeerLink())
        if link.incarnation is not None and message.sender_incarnation < link.incarnation:
            raise Rejected("stale_incarnation", message.sender)
        if link.incarnation != message.sender_incarnation:
            self._links[message.sender] = _PeerLink(message.sender_incarnation)
        self._clock.observe(now_ms, message.stamp)
        for node, beat in message.heartbeats.items():
            self._liveness.heard(node, beat, self._round)

    def _take_section(self, now_ms: int, message: Message, section: Section) -> bool:
        """Takes in what one section says; returns whether it names a table
        of this node (of the same kind)."""
        table = self._tables.get(section.table)
        if table is None or table.kind != section.kind:
            self._ignored["unknown_table" if table is None else "kind_mismatch"] += 1
            return False
        link = self._link(message.sender, section.table)
        if (section.ack is not None and message.recipient_incarnation == self.incarnation
                and section.ack <= table.seq):
            link.acked = _max_or(link.acked, section.ack)
        if section.chunk is not None:
            payload = self._reassembly.add(message.sender, section.table, section.chunk,
                                           self._round)
            if payload is not None:
                self._merge_payload(now_ms, table, link, section.chunk, payload)
        if section.digest == table.digest():
            link.covered = _max_or(link.covered, section.seq)
            link.acked = _max_or(link.acked, table.seq)
        return True

    def _merge_payload(self, now_ms: int, table: TableReplica, link: _TableLink,
                       chunk: Chunk, payload: bytes) -> None:
        try:
            delta = decode_crdt(payload, table.kind)
        except canonical.DecodeError:
            self._rejected["bad_payload"] += 1
            return
        stamp = delta.max_timestamp()
        if stamp is not None:
            try:
                self._clock.observe(now_ms, stamp)
            except ClockDriftExceeded:
                self._rejected["clock_drift"] += 1
                return
        self._counters["full_states_merged" if chunk.full else "deltas_merged"] += 1
        if table.apply(delta, len(payload)):
            self._changed.add(table.name)
        link.covered = _max_or(link.covered, chunk.upto_seq)

    # Sending.

    def _round_targets(self) -> list[str]:
        peers = sorted(self._peers)
        dead = [peer for peer in peers if self._liveness.state(peer, self._round) == PeerState.DEAD]
        living = [peer for peer in peers if peer not in dead]
        targets = self._rng.sample(living, min(self.config.fanout, len(living)))
        if dead:
            targets.append(self._rng.choice(dead))
        return targets

    def _build(self, peer: str, kind: MessageKind, incoming: dict[str, Section]) -> list[Outgoing]:
        sections: list[Section] = []
        payloads: list[_Payload] = []
        for name in sorted(self._tables):
            payload = self._payload_for(peer, name, kind, incoming.get(name))
            if payload is None and kind == MessageKind.FINAL:
                continue
            sections.append(self._section(peer, name, kind, incoming.get(name)))
            if payload is not None:
                payloads.append(payload)
        # A PUSH goes even without tables: it carries the heartbeats that
        # keep this node (and those it vouches for) alive at the peer.
        if not sections and kind != MessageKind.PUSH:
            return []
        frames = self._pack(peer, kind, sections, payloads)
        self._counters["frames_sent"] += len(frames)
        return [Outgoing(peer, frame) for frame in frames]

    def _section(self, peer: str, name: str, kind: MessageKind, theirs: Section | None) -> Section:
        table = self._tables[name]
        link = self._link(peer, name)
        want = (kind == MessageKind.REPLY and theirs is not None
                and theirs.digest != table.digest()
                and (link.covered is None or link.covered < theirs.seq))
        return Section(name, table.kind, table.digest(), table.seq, link.covered, want, None)

    def _payload_for(self, peer: str, name: str, kind: MessageKind,
                     theirs: Section | None) -> _Payload | None:
        table = self._tables[name]
        link = self._link(peer, name)
        wanted = theirs is not None and theirs.want
        if kind == MessageKind.FINAL and not wanted:
            return None
        if link.acked is not None and link.acked >= table.seq and not wanted:
            return None
        if theirs is not None and theirs.digest == table.digest():
            return None
        if link.acked is not None and link.acked < table.seq:
            delta = table.deltas_since(link.acked)
            if delta is not None:
                self._counters["deltas_sent"] += 1
                return _Payload(name, False, table.seq, encode_crdt(delta))
        if kind == MessageKind.PUSH or theirs is None:
            return None
        self._counters["full_states_sent"] += 1
        return _Payload(name, True, table.seq, table.encoded())

    def _pack(self, peer: str, kind: MessageKind, sections: list[Section],
              payloads: list[_Payload]) -> list[bytes]:
        """Frames holding every section, each within message_bytes_max;
        payloads ride inline while they fit, the rest in chunked FINALs."""
        by_table = {section.table: section for section in sections}
        spare = self._frame_budget(peer, kind) - sum(section_bytes(s) for s in sections)
        inline: dict[str, Chunk] = {}
        chunked: list[_Payload] = []
        for payload in payloads:
            chunk = self._chunk(payload, 0, 1, payload.data)
            section = by_table[payload.table]
            extra = section_bytes(dataclasses.replace(section, chunk=chunk)) - section_bytes(section)
            if extra <= spare:
                inline[payload.table] = chunk
                spare -= extra
            else:
                chunked.append(payload)
        frames = self._pack_sections(peer, kind, [
            dataclasses.replace(section, chunk=inline.get(section.table)) for section in sections])
        for payload in chunked:
            frames += self._chunk_frames(peer, by_table[payload.table], payload)
        return frames

    def _frame_budget(self, peer: str, kind: MessageKind) -> int:
        """Bytes of sections that fit in one frame besides its header."""
        return self.config.message_bytes_max - len(self._seal(peer, kind, [], True)) - 16

    def _pack_sections(self, peer: str, kind: MessageKind, sections: list[Section]) -> list[bytes]:
        budget = self._frame_budget(peer, kind)
        groups: list[list[Section]] = [[]]
        used = 0
        for section in sections:
            size = section_bytes(section)
            assert size <= budget, "one section fits in an empty frame"
            if used + size > budget and groups[-1]:
                groups.append([])
                used = 0
            groups[-1].append(section)
            used += size
        return [self._seal(peer, kind, group, True) for group in groups]

    def _chunk_frames(self, peer: str, section: Section, payload: _Payload) -> list[bytes]:
        bare = dataclasses.replace(section, want=False, chunk=self._chunk(payload, 0, 1, b""))
        overhead = len(self._seal(peer, MessageKind.FINAL, [bare], heartbeats=False))
        pieces = split_payload(payload.data, self.config.message_bytes_max - overhead - 16)
        frames = []
        for index, piece in enumerate(pieces):
            chunk = self._chunk(payload, index, len(pieces), piece)
            frames.append(self._seal(peer, MessageKind.FINAL,
                                     [dataclasses.replace(bare, chunk=chunk)], heartbeats=False))
        self._next_transfer_id += 1
        self._counters["chunked_payloads_sent"] += 1
        return frames

    def _chunk(self, payload: _Payload, index: int, count: int, data: bytes) -> Chunk:
        return Chunk(self._next_transfer_id, payload.full, payload.upto_seq, index, count, data)

    def _seal(self, peer: str, kind: MessageKind, sections: list[Section],
              heartbeats: bool) -> bytes:
        beats = dict(self._liveness.heartbeats(), **{self.node_id: self._heartbeat}) \
            if heartbeats else {}
        link = self._links.get(peer)
        message = Message(kind, self.node_id, peer, self.incarnation,
                          None if link is None else link.incarnation,
                          self._clock.last(), beats, tuple(sections))
        frame = seal(message, self._secret)
        assert len(frame) <= self.config.message_bytes_max, "frames stay within the limit"
        return frame

    # Bookkeeping.

    def _link(self, peer: str, name: str) -> _TableLink:
        return self._links.setdefault(peer, _PeerLink()).tables.setdefault(name, _TableLink())

    def _table(self, name: str) -> TableReplica:
        table = self._tables.get(name)
        if table is None:
            raise NotFound(f"no CRDT table {name!r} on this node")
        return table

    def _forget_acknowledged_deltas(self) -> None:
        """Drops buffered deltas every peer still served by deltas holds."""
        living = [peer for peer in self._peers
                  if self._liveness.state(peer, self._round) != PeerState.DEAD]
        for name, table in self._tables.items():
            acks = [self._link(peer, name).acked for peer in living]
            known = [ack for ack in acks if ack is not None]
            table.forget_through(min(known) if known else table.seq)


def _check_table_name(name: str) -> None:
    size = len(name.encode("utf-8"))
    if not 1 <= size <= limits.CRDT_TABLE_NAME_BYTES_MAX:
        raise InvalidArgument(f"a table name is 1 to {limits.CRDT_TABLE_NAME_BYTES_MAX} bytes",
                              limit="CRDT_TABLE_NAME_BYTES_MAX")
