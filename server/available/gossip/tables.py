"""`TableReplica`: one CRDT table on one node, as gossip sees it.

It holds the state, a sequence number that rises by one each time the state
changes, and a bounded buffer of the deltas behind those changes (local
writes and remote deltas that changed something alike), so a peer known to
hold the state as of sequence number `n` can be sent the join of deltas
`n+1..seq` instead of the whole state. When the buffer no longer reaches back
to `n+1` (it is trimmed by entry count and bytes), the peer gets the whole
state instead. It caches the canonical encoding and digest of the state.

This module never knows about peers, messages or time.
"""

from __future__ import annotations

import collections
from typing import NamedTuple

from tandemkv.server.available.crdt.kinds import Crdt, TableKind, encode_crdt, state_digest


class BufferedDelta(NamedTuple):
    seq: int
    delta: Crdt
    size_bytes: int


class TableReplica:
    def __init__(self, name: str, kind: TableKind, state: Crdt,
                 entries_max: int, bytes_max: int) -> None:
        assert state.kind == kind, "the state is of the table's kind"
        assert entries_max >= 1 and bytes_max >= 1
        self.name = name
        self.kind = kind
        self.state = state
        self.seq = 0
        self._entries_max = entries_max
        self._bytes_max = bytes_max
        self._buffer: collections.deque[BufferedDelta] = collections.deque()
        self._buffer_bytes = 0
        self._encoded: bytes | None = None
        self._digest: bytes | None = None

    def apply(self, delta: Crdt, size_bytes: int | None = None) -> bool:
        """Joins `delta` into the state; if that changed it, buffers the
        delta under the next sequence number. Returns whether it changed."""
        assert delta.kind == self.kind
        if not self.state.merge(delta):
            return False
        self.seq += 1
        self._encoded = self._digest = None
        if size_bytes is None:
            size_bytes = len(encode_crdt(delta))
        self._buffer.append(BufferedDelta(self.seq, delta, size_bytes))
        self._buffer_bytes += size_bytes
        self._trim_to_limits()
        return True

    def encoded(self) -> bytes:
        if self._encoded is None:
            self._encoded = encode_crdt(self.state)
        return self._encoded

    def digest(self) -> bytes:
        if self._digest is None:
            self._digest = state_digest(self.encoded())
        return self._digest

    def deltas_since(self, seq: int) -> Crdt | None:
        """The join of the deltas after `seq` (< self.seq), or None when the
        buffer no longer reaches back that far."""
        assert 0 <= seq < self.seq
        if not self._buffer or self._buffer[0].seq > seq + 1:
            return None
        joined = self.state.empty()
        for entry in self._buffer:
            if entry.seq > seq:
                joined.merge(entry.delta)
        return joined

    def forget_through(self, seq: int) -> None:
        """Drops buffered deltas up to `seq`: every peer that may still be
        sent deltas holds them."""
        while self._buffer and self._buffer[0].seq <= seq:
            self._drop_oldest()

    def buffered(self) -> tuple[int, int]:
        """(entries, bytes) in the delta buffer."""
        return len(self._buffer), self._buffer_bytes

    def _trim_to_limits(self) -> None:
        while len(self._buffer) > self._entries_max or (
                self._buffer_bytes > self._bytes_max and len(self._buffer) > 1):
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        self._buffer_bytes -= self._buffer.popleft().size_bytes
