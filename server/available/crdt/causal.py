"""Dots and causal contexts: the bookkeeping that makes removes safe.

A dot `(replica, counter)` names one add or write event; each replica numbers
its own events 1, 2, 3, .... A causal context is the set of dots a state has
seen, kept compact: a version vector (`replica -> n` means dots 1..n were all
seen) plus a small cloud of dots seen out of order. A removed entry leaves no
tombstone: its dot stays in the context, which costs nothing once the version
vector covers it.

The joins here are the ones of Almeida, Shoker and Baquero, "Delta State
Replicated Data Types" (2018): an entry survives a join if both sides hold
it, or if one side holds it and the other has never seen its dot.

This module never knows which CRDT type uses it, nor any encoding beyond
`to_plain`/`from_plain`.
"""

from __future__ import annotations

from typing import Callable, Iterable, NamedTuple, TypeVar

Key = TypeVar("Key")
Value = TypeVar("Value")
Store = TypeVar("Store")


class Dot(NamedTuple):
    replica: str
    counter: int

    def to_plain(self) -> list:
        return [self.replica, self.counter]

    @staticmethod
    def from_plain(value: object) -> "Dot":
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
                and type(value[1]) is int and value[1] >= 1):
            raise ValueError("a dot is [replica, counter >= 1]")
        return Dot(value[0], value[1])


class CausalContext:
    """A set of dots as a version vector plus a cloud. Always compact: no
    cloud dot is covered by, or extends, the version vector."""

    __slots__ = ("_vector", "_cloud")

    def __init__(self, vector: dict[str, int] | None = None, cloud: Iterable[Dot] = ()) -> None:
        self._vector: dict[str, int] = dict(vector or {})
        self._cloud: set[Dot] = set(cloud)
        self._compact()

    def copy(self) -> "CausalContext":
        clone = CausalContext.__new__(CausalContext)
        clone._vector = dict(self._vector)
        clone._cloud = set(self._cloud)
        return clone

    def __contains__(self, dot: Dot) -> bool:
        return dot.counter <= self._vector.get(dot.replica, 0) or dot in self._cloud

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, CausalContext) and self._vector == other._vector
                and self._cloud == other._cloud)

    def __repr__(self) -> str:
        return f"CausalContext({self._vector}, {sorted(self._cloud)})"

    def is_empty(self) -> bool:
        return not self._vector and not self._cloud

    def next_dot(self, replica: str) -> Dot:
        """The next dot `replica` may issue: above every dot of it seen."""
        top = self._vector.get(replica, 0)
        for dot in self._cloud:
            if dot.replica == replica:
                top = max(top, dot.counter)
        return Dot(replica, top + 1)

    def add(self, dot: Dot) -> bool:
        """Adds one dot; returns whether it was new."""
        if dot in self:
            return False
        self._cloud.add(dot)
        self._compact()
        return True

    def merge(self, other: "CausalContext") -> bool:
        """Adds every dot of `other`; returns whether any was new."""
        changed = False
        for replica, counter in other._vector.items():
            if counter > self._vector.get(replica, 0):
                self._vector[replica] = counter
                changed = True
        for dot in other._cloud:
            if dot not in self:
                self._cloud.add(dot)
                changed = True
        self._compact()
        return changed

    def _compact(self) -> None:
        for dot in sorted(self._cloud):
            top = self._vector.get(dot.replica, 0)
            if dot.counter == top + 1:
                self._vector[dot.replica] = dot.counter
            if dot.counter <= top + 1:
                self._cloud.discard(dot)

    def to_plain(self) -> list:
        return [dict(self._vector), sorted(dot.to_plain() for dot in self._cloud)]

    @staticmethod
    def from_plain(value: object) -> "CausalContext":
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], dict)
                and isinstance(value[1], list)):
            raise ValueError("a causal context is [vector, cloud]")
        vector = value[0]
        if not all(isinstance(r, str) and type(n) is int and n >= 1 for r, n in vector.items()):
            raise ValueError("a version vector maps replica -> counter >= 1")
        context = CausalContext(vector, (Dot.from_plain(dot) for dot in value[1]))
        if context.to_plain() != value:
            raise ValueError("causal context is not compact")
        return context


def context_of(dots: Iterable[Dot]) -> CausalContext:
    """A context holding exactly `dots` (the context a delta carries)."""
    return CausalContext(cloud=dots)


def join_dot_fun(ours: dict[Dot, Value], our_context: CausalContext,
                 theirs: dict[Dot, Value], their_context: CausalContext) -> dict[Dot, Value]:
    """Joins two dot -> value stores under their contexts. A dot held on both
    sides names one event, so its values are equal; the larger is kept so
    the join stays deterministic even if they are not."""
    joined: dict[Dot, Value] = {}
    for dot, value in ours.items():
        if dot in theirs:
            joined[dot] = max(value, theirs[dot])  # type: ignore[type-var]
        elif dot not in their_context:
            joined[dot] = value
    for dot, value in theirs.items():
        if dot not in ours and dot not in our_context:
            joined[dot] = value
    return joined


def join_dot_map(ours: dict[Key, Store], our_context: CausalContext,
                 theirs: dict[Key, Store], their_context: CausalContext,
                 join_inner: Callable[[Store, CausalContext, Store, CausalContext], Store],
                 empty: Callable[[], Store]) -> dict[Key, Store]:
    """Joins two key -> dot-store maps key by key; keys left empty vanish."""
    joined: dict[Key, Store] = {}
    for key in ours.keys() | theirs.keys():
        inner = join_inner(ours.get(key, empty()), our_context,
                           theirs.get(key, empty()), their_context)
        if inner:
            joined[key] = inner
    return joined
