"""Sections and payloads into sealed frames, each within
`message_bytes_max`: what one answer of the exchange (exchange.py) becomes
on the wire.

Every section goes in the fewest frames that hold them. A payload rides
inline in its section while it fits beside the others; a payload too large
for that is split into chunks, each sent as an extra FINAL message of its
own (transfer.py splits them and puts them together again at the peer).
Frames of the exchange carry this node's heartbeat and those it vouches
for; the chunk frames carry none.

`FramePacking` is a mixin of `GossipNode`; the fields it names below are
GossipNode's.
"""

from __future__ import annotations

import collections
import dataclasses

from tandemkv.server.available.crdt.hlc import Hlc, HybridClock
from tandemkv.server.available.gossip.exchange import Payload, PeerLink
from tandemkv.server.available.gossip.liveness import Liveness
from tandemkv.server.available.gossip.records import GossipConfig
from tandemkv.server.available.gossip.transfer import split_payload
from tandemkv.server.available.gossip.wire import Chunk, Message, MessageKind, Section, seal, section_bytes


class FramePacking:
    """Builds and seals the frames of one message."""

    node_id: str
    config: GossipConfig
    incarnation: Hlc
    _secret: bytes
    _clock: HybridClock
    _heartbeat: Hlc
    _liveness: Liveness
    _links: dict[str, PeerLink]
    _next_transfer_id: int
    _counters: collections.Counter[str]

    def _pack(self, peer: str, kind: MessageKind, sections: list[Section],
              payloads: list[Payload]) -> list[bytes]:
        """Frames holding every section, each within message_bytes_max;
        payloads ride inline while they fit, the rest in chunked FINALs."""
        by_table = {section.table: section for section in sections}
        spare = self._frame_budget(peer, kind) - sum(section_bytes(s) for s in sections)
        inline: dict[str, Chunk] = {}
        chunked: list[Payload] = []
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

    def _chunk_frames(self, peer: str, section: Section, payload: Payload) -> list[bytes]:
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

    def _chunk(self, payload: Payload, index: int, count: int, data: bytes) -> Chunk:
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
