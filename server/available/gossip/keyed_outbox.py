"""`PushOutbox`: the fresh deltas of one keyed table waiting for the next
eager push.

Deltas are joined per key (two writes to one key before a push send one
delta), and the outbox is bounded by keys and bytes; past either bound the
keys written longest ago are dropped and counted. A dropped delta is not a
lost write: the write is in the table, and anti-entropy finds the key's
bucket different and repairs it.

Pure: no I/O, no threads.
"""

from __future__ import annotations

from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.crdt.kinds import CRDT_TYPES, TableKind


class PushOutbox:
    __slots__ = ("kind", "keys_max", "bytes_max", "size_bytes", "dropped", "_deltas")

    def __init__(self, kind: TableKind, keys_max: int, bytes_max: int) -> None:
        assert keys_max >= 1 and bytes_max >= 1
        self.kind = kind
        self.keys_max = keys_max
        self.bytes_max = bytes_max
        self.size_bytes = 0
        self.dropped = 0
        self._deltas: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._deltas)

    def add(self, key: bytes, delta: bytes) -> None:
        """Queues one key's encoded delta, joined with any still waiting."""
        pending = self._deltas.pop(key, None)
        if pending is not None:
            cls = CRDT_TYPES[self.kind]
            joined = cls.from_plain(canonical.decode(pending))
            joined.merge(cls.from_plain(canonical.decode(delta)))
            delta = canonical.encode(joined.to_plain())
            self.size_bytes -= len(pending)
        self._deltas[key] = delta
        self.size_bytes += len(delta)
        while self._deltas and (len(self._deltas) > self.keys_max or self.size_bytes > self.bytes_max):
            oldest = next(iter(self._deltas))
            self.size_bytes -= len(self._deltas.pop(oldest))
            self.dropped += 1

    def take(self) -> list[tuple[bytes, bytes]]:
        """Every waiting (key, delta), oldest first; the outbox is empty after."""
        taken = list(self._deltas.items())
        self._deltas.clear()
        self.size_bytes = 0
        return taken
