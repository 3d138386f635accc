"""The exchange of one round between two nodes, and the acknowledgements
it keeps: what `GossipNode` takes in from a message and what it answers.

A round sends PUSHes (protocol.py says to whom). Each message carries one
section per table: its digest, its sequence number and an acknowledgement
of the recipient's sequence number this node covers.

- PUSH: deltas since the peer's acknowledgement, when the buffer reaches
  back that far; else nothing yet.
- REPLY (to a PUSH): the same deltas; or, where there is no delta path and
  the digests differ, the whole state; and `want` for each table where the
  PUSH left this node behind the pusher.
- FINAL (to a REPLY): deltas or the whole state for the tables wanted.

Equal digests cost a section of metadata and nothing else, and they also
stand for an acknowledgement both ways. How sections and payloads are put
into frames is packing.py's.

Acknowledgements are per peer, per table, and per incarnation: a peer that
restarts (a larger incarnation stamp) starts over with full-state syncs, and
frames from an earlier incarnation are rejected. Buffered deltas are kept
until every live peer served by deltas acknowledged them.

`Exchange` is a mixin of `GossipNode`; the fields it names below are
GossipNode's.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.crdt.hlc import ClockDriftExceeded, Hlc, HybridClock
from tandemkv.server.available.crdt.kinds import decode_crdt, encode_crdt
from tandemkv.server.available.gossip.liveness import Liveness, PeerState
from tandemkv.server.available.gossip.records import Outgoing
from tandemkv.server.available.gossip.tables import TableReplica
from tandemkv.server.available.gossip.transfer import Reassembly
from tandemkv.server.available.gossip.wire import Chunk, Message, MessageKind, Rejected, Section


@dataclass
class TableLink:
    acked: int | None = None    # this node's seq the peer is known to cover
    covered: int | None = None  # the peer's seq this node covers


@dataclass
class PeerLink:
    incarnation: Hlc | None = None
    tables: dict[str, TableLink] = field(default_factory=dict)


class Payload(NamedTuple):
    table: str
    full: bool
    upto_seq: int
    data: bytes


def _max_or(current: int | None, value: int) -> int:
    return value if current is None else max(current, value)


class Exchange:
    """Receiving a message, and building the answer to it or a round's PUSH."""

    node_id: str
    incarnation: Hlc
    _round: int
    _clock: HybridClock
    _peers: set[str]
    _links: dict[str, PeerLink]
    _tables: dict[str, TableReplica]
    _liveness: Liveness
    _reassembly: Reassembly
    _changed: set[str]
    _rejected: collections.Counter[str]
    _ignored: collections.Counter[str]
    _counters: collections.Counter[str]

    # packing.py's FramePacking: sections and payloads into sealed frames.
    _pack: Callable[[str, MessageKind, list[Section], list[Payload]], list[bytes]]

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
        link = self._links.setdefault(message.sender, PeerLink())
        if link.incarnation is not None and message.sender_incarnation < link.incarnation:
            raise Rejected("stale_incarnation", message.sender)
        if link.incarnation != message.sender_incarnation:
            self._links[message.sender] = PeerLink(message.sender_incarnation)
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

    def _merge_payload(self, now_ms: int, table: TableReplica, link: TableLink,
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

    # Answering.

    def _build(self, peer: str, kind: MessageKind, incoming: dict[str, Section]) -> list[Outgoing]:
        sections: list[Section] = []
        payloads: list[Payload] = []
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
                     theirs: Section | None) -> Payload | None:
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
                return Payload(name, False, table.seq, encode_crdt(delta))
        if kind == MessageKind.PUSH or theirs is None:
            return None
        self._counters["full_states_sent"] += 1
        return Payload(name, True, table.seq, table.encoded())

    # Acknowledgements.

    def _link(self, peer: str, name: str) -> TableLink:
        return self._links.setdefault(peer, PeerLink()).tables.setdefault(name, TableLink())

    def _forget_acknowledged_deltas(self) -> None:
        """Drops buffered deltas every peer still served by deltas holds."""
        living = [peer for peer in self._peers
                  if self._liveness.state(peer, self._round) != PeerState.DEAD]
        for name, table in self._tables.items():
            acks = [self._link(peer, name).acked for peer in living]
            known = [ack for ack in acks if ack is not None]
            table.forget_through(min(known) if known else table.seq)
