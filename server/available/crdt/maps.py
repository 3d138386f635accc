"""`AWLWWMap`: a map of byte keys to byte values where adds win over
removes and concurrent puts of one key resolve last-writer-wins.

Each put is a dot on its key carrying (hybrid timestamp, value) and retires
the dots of that key it has seen; a remove retires the dots it has seen, so
a put concurrent with a remove survives it. Puts concurrent with each other
all stay under the key until a later put sees them; a read returns the one
with the largest (timestamp, replica, value). This is the add-wins LWW map
of delta_crdt (AWLWWMap), built from the same dot-store joins.

Pure values: no clock, no I/O, no gossip.
"""

from __future__ import annotations

from typing import Any, Iterator

from tandemkv.server.available.crdt.causal import CausalContext, Dot, context_of, join_dot_fun, join_dot_map
from tandemkv.server.available.crdt.base import Crdt, Origin, TableKind, check_value_size, expect
from tandemkv.server.available.crdt.hlc import Hlc

MapEntry = tuple[Hlc, bytes]


def _winner(writes: dict[Dot, MapEntry]) -> bytes:
    dot, (stamp, value) = max(writes.items(), key=lambda item: (item[1][0], item[0].replica, item[1][1]))
    return value


class AWLWWMap(Crdt):
    kind = TableKind.AW_LWW_MAP

    def __init__(self, entries: dict[bytes, dict[Dot, MapEntry]] | None = None,
                 context: CausalContext | None = None) -> None:
        self._entries: dict[bytes, dict[Dot, MapEntry]] = {
            key: dict(writes) for key, writes in (entries or {}).items()}
        self._context = context.copy() if context is not None else CausalContext()

    def copy(self) -> "AWLWWMap":
        return AWLWWMap(self._entries, self._context)

    def put(self, origin: Origin, key: bytes, value: bytes) -> "AWLWWMap":
        """The delta that sets `key` to `value` at `origin.stamp`."""
        check_value_size(key, "a map key")
        check_value_size(value, "a map value")
        dot = self._context.next_dot(origin.replica)
        seen = self._entries.get(key, {})
        return AWLWWMap({key: {dot: (origin.stamp, value)}}, context_of([*seen, dot]))

    def remove(self, origin: Origin, key: bytes) -> "AWLWWMap":
        """The delta that removes `key` as seen here."""
        return AWLWWMap({}, context_of(self._entries.get(key, {})))

    def clear(self, origin: Origin) -> "AWLWWMap":
        """The delta that removes every key seen here."""
        return AWLWWMap({}, context_of(dot for writes in self._entries.values() for dot in writes))

    def merge(self, other: "AWLWWMap") -> bool:
        joined = join_dot_map(self._entries, self._context, other._entries, other._context,
                              join_dot_fun, dict)
        context_changed = self._context.merge(other._context)
        changed = context_changed or joined != self._entries
        self._entries = joined
        return changed

    def get(self, key: bytes) -> bytes | None:
        writes = self._entries.get(key)
        return None if writes is None else _winner(writes)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs in key order."""
        for key in sorted(self._entries):
            yield key, _winner(self._entries[key])

    def value(self) -> dict[bytes, bytes]:
        return dict(self.items())

    def is_empty(self) -> bool:
        return not self._entries and self._context.is_empty()

    def max_timestamp(self) -> Hlc | None:
        stamps = [stamp for writes in self._entries.values() for stamp, _ in writes.values()]
        return max(stamps, default=None)

    def to_plain(self) -> Any:
        entries = {key: sorted([dot.to_plain(), stamp.to_plain(), value]
                               for dot, (stamp, value) in writes.items())
                   for key, writes in self._entries.items()}
        return [entries, self._context.to_plain()]

    @classmethod
    def from_plain(cls, value: Any) -> "AWLWWMap":
        expect(isinstance(value, list) and len(value) == 2, "a map is [entries, context]")
        expect(isinstance(value[0], dict), "entries are a map")
        context = CausalContext.from_plain(value[1])
        entries: dict[bytes, dict[Dot, MapEntry]] = {}
        for key, writes in value[0].items():
            expect(isinstance(key, bytes) and isinstance(writes, list) and writes,
                   "an entry is key -> non-empty list of writes")
            entries[key] = dict(_write_from_plain(write, context) for write in writes)
        return cls(entries, context)


def _write_from_plain(write: Any, context: CausalContext) -> tuple[Dot, MapEntry]:
    expect(isinstance(write, list) and len(write) == 3 and isinstance(write[2], bytes),
           "a write is [dot, stamp, value]")
    dot = Dot.from_plain(write[0])
    expect(dot in context, "a held dot is missing from the context")
    return dot, (Hlc.from_plain(write[1]), write[2])
