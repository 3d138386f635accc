"""`ORSet`: an observed-remove set of byte strings where adds win.

Each add is a dot on its element; a remove takes away the dots it has seen,
so an add concurrent with a remove survives it (add wins), and an element
removed everywhere comes back only if someone adds it again. An add also
retires the dots of that element it has seen, so an element holds one dot
per concurrent adder, not one per add.

Pure values: no clock, no I/O, no gossip.
"""

from __future__ import annotations

from typing import Any

from tandemkv.server.available.crdt.causal import CausalContext, Dot, context_of, join_dot_map
from tandemkv.server.available.crdt.base import Crdt, Origin, TableKind, check_value_size, expect


def join_dot_set(ours: frozenset[Dot], our_context: CausalContext,
                 theirs: frozenset[Dot], their_context: CausalContext) -> frozenset[Dot]:
    kept = {dot for dot in ours if dot in theirs or dot not in their_context}
    kept.update(dot for dot in theirs if dot not in our_context)
    return frozenset(kept)


class ORSet(Crdt):
    kind = TableKind.OR_SET

    def __init__(self, entries: dict[bytes, frozenset[Dot]] | None = None,
                 context: CausalContext | None = None) -> None:
        self._entries: dict[bytes, frozenset[Dot]] = dict(entries or {})
        self._context = context.copy() if context is not None else CausalContext()

    def copy(self) -> "ORSet":
        return ORSet(self._entries, self._context)

    def add(self, origin: Origin, element: bytes) -> "ORSet":
        """The delta that adds `element`."""
        check_value_size(element, "a set element")
        dot = self._context.next_dot(origin.replica)
        seen = self._entries.get(element, frozenset())
        return ORSet({element: frozenset([dot])}, context_of([*seen, dot]))

    def remove(self, origin: Origin, element: bytes) -> "ORSet":
        """The delta that removes `element` as seen here (adds not yet seen
        here survive it)."""
        return ORSet({}, context_of(self._entries.get(element, frozenset())))

    def clear(self, origin: Origin) -> "ORSet":
        """The delta that removes every element seen here."""
        return ORSet({}, context_of(dot for dots in self._entries.values() for dot in dots))

    def merge(self, other: "ORSet") -> bool:
        joined = join_dot_map(self._entries, self._context, other._entries, other._context,
                              join_dot_set, frozenset)
        context_changed = self._context.merge(other._context)
        changed = context_changed or joined != self._entries
        self._entries = joined
        return changed

    def __contains__(self, element: bytes) -> bool:
        return element in self._entries

    def value(self) -> list[bytes]:
        """The elements, sorted."""
        return sorted(self._entries)

    def is_empty(self) -> bool:
        return not self._entries and self._context.is_empty()

    def to_plain(self) -> Any:
        entries = {element: sorted(dot.to_plain() for dot in dots)
                   for element, dots in self._entries.items()}
        return [entries, self._context.to_plain()]

    @classmethod
    def from_plain(cls, value: Any) -> "ORSet":
        expect(isinstance(value, list) and len(value) == 2, "an OR-set is [entries, context]")
        expect(isinstance(value[0], dict), "entries are a map")
        context = CausalContext.from_plain(value[1])
        entries: dict[bytes, frozenset[Dot]] = {}
        for element, dots in value[0].items():
            expect(isinstance(element, bytes) and isinstance(dots, list) and dots,
                   "an entry is element -> non-empty list of dots")
            entries[element] = frozenset(Dot.from_plain(dot) for dot in dots)
            expect(all(dot in context for dot in entries[element]),
                   "a held dot is missing from the context")
        return cls(entries, context)
