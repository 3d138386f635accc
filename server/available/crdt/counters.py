"""Counters: `GCounter` (grow-only) and `PNCounter` (increments and
decrements).

Each replica owns one entry and only ever raises it; the join takes the
larger entry per replica, and the value is the sum. A delta holds just the
entry that changed. Entries are int64 each; an increment that would pass
that fails with OutOfRange.

Pure values: no clock, no I/O, no gossip.
"""

from __future__ import annotations

from typing import Any

from tandemkv.errors import InvalidArgument, OutOfRange

from tandemkv.server.available.crdt.canonical import INT64_MAX
from tandemkv.server.available.crdt.base import Crdt, Origin, TableKind, expect


def _merge_max(ours: dict[str, int], theirs: dict[str, int]) -> bool:
    changed = False
    for replica, count in theirs.items():
        if count > ours.get(replica, 0):
            ours[replica] = count
            changed = True
    return changed


def _raised(counts: dict[str, int], replica: str, amount: int) -> int:
    raised = counts.get(replica, 0) + amount
    if raised > INT64_MAX:
        raise OutOfRange(f"the counter entry of {replica} would pass int64")
    return raised


def _counts_from_plain(value: Any) -> dict[str, int]:
    expect(isinstance(value, dict), "counter entries are a map")
    expect(all(isinstance(r, str) and type(n) is int and n > 0 for r, n in value.items()),
           "counter entries map replica -> positive count")
    return dict(value)


class GCounter(Crdt):
    """A grow-only counter."""

    kind = TableKind.G_COUNTER

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self._counts: dict[str, int] = dict(counts or {})

    def copy(self) -> "GCounter":
        return GCounter(self._counts)

    def increment(self, origin: Origin, amount: int = 1) -> "GCounter":
        """The delta that adds `amount` (>= 0) to the counter."""
        if amount < 0:
            raise InvalidArgument("a grow-only counter only increments")
        if amount == 0:
            return GCounter()
        return GCounter({origin.replica: _raised(self._counts, origin.replica, amount)})

    def merge(self, other: "GCounter") -> bool:
        return _merge_max(self._counts, other._counts)

    def value(self) -> int:
        return sum(self._counts.values())

    def is_empty(self) -> bool:
        return not self._counts

    def to_plain(self) -> Any:
        return dict(self._counts)

    @classmethod
    def from_plain(cls, value: Any) -> "GCounter":
        return cls(_counts_from_plain(value))


class PNCounter(Crdt):
    """A counter that goes up and down: two grow-only halves."""

    kind = TableKind.PN_COUNTER

    def __init__(self, ups: dict[str, int] | None = None,
                 downs: dict[str, int] | None = None) -> None:
        self._ups: dict[str, int] = dict(ups or {})
        self._downs: dict[str, int] = dict(downs or {})

    def copy(self) -> "PNCounter":
        return PNCounter(self._ups, self._downs)

    def increment(self, origin: Origin, amount: int = 1) -> "PNCounter":
        """The delta that adds `amount` (any sign) to the counter."""
        if amount > 0:
            return PNCounter(ups={origin.replica: _raised(self._ups, origin.replica, amount)})
        if amount < 0:
            return PNCounter(downs={origin.replica: _raised(self._downs, origin.replica, -amount)})
        return PNCounter()

    def decrement(self, origin: Origin, amount: int = 1) -> "PNCounter":
        return self.increment(origin, -amount)

    def merge(self, other: "PNCounter") -> bool:
        ups_changed = _merge_max(self._ups, other._ups)
        return _merge_max(self._downs, other._downs) or ups_changed

    def value(self) -> int:
        return sum(self._ups.values()) - sum(self._downs.values())

    def is_empty(self) -> bool:
        return not self._ups and not self._downs

    def to_plain(self) -> Any:
        return [dict(self._ups), dict(self._downs)]

    @classmethod
    def from_plain(cls, value: Any) -> "PNCounter":
        expect(isinstance(value, list) and len(value) == 2, "a PN-counter is [ups, downs]")
        return cls(_counts_from_plain(value[0]), _counts_from_plain(value[1]))
