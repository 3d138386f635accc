"""Registers: `LWWRegister` (last writer wins) and `MVRegister` (keeps every
concurrent value).

LWW: a write is (hybrid timestamp, replica, value); the join keeps the
largest, ordered by timestamp, then replica id, then value, so replicas
agree even on equal timestamps. `None` is a value too: assigning it clears
the register, and the clear is ordered like any write.

MV: each write is a dot; a write replaces the values its replica has seen,
and values written concurrently survive side by side until a later write
sees them all. Clearing removes what was seen; a concurrent write survives.

Pure values: no clock, no I/O, no gossip.
"""

from __future__ import annotations

from typing import Any

from tandemkv.server.available.crdt.causal import CausalContext, Dot, context_of, join_dot_fun
from tandemkv.server.available.crdt.base import Crdt, Origin, TableKind, check_value_size, expect
from tandemkv.server.available.crdt.hlc import Hlc

LwwEntry = tuple[Hlc, str, "bytes | None"]


def _lww_order(entry: LwwEntry) -> tuple:
    stamp, replica, value = entry
    return (stamp, replica, value is not None, value or b"")


class LWWRegister(Crdt):
    kind = TableKind.LWW_REGISTER

    def __init__(self, entry: LwwEntry | None = None) -> None:
        self._entry = entry

    def copy(self) -> "LWWRegister":
        return LWWRegister(self._entry)

    def assign(self, origin: Origin, value: bytes | None) -> "LWWRegister":
        """The delta that writes `value` (None clears) at `origin.stamp`."""
        if value is not None:
            check_value_size(value, "a register value")
        return LWWRegister((origin.stamp, origin.replica, value))

    def merge(self, other: "LWWRegister") -> bool:
        if other._entry is None:
            return False
        if self._entry is None or _lww_order(other._entry) > _lww_order(self._entry):
            self._entry = other._entry
            return True
        return False

    def value(self) -> bytes | None:
        return None if self._entry is None else self._entry[2]

    def is_empty(self) -> bool:
        return self._entry is None

    def max_timestamp(self) -> Hlc | None:
        return None if self._entry is None else self._entry[0]

    def to_plain(self) -> Any:
        if self._entry is None:
            return None
        stamp, replica, value = self._entry
        return [stamp.to_plain(), replica, value]

    @classmethod
    def from_plain(cls, value: Any) -> "LWWRegister":
        if value is None:
            return cls()
        expect(isinstance(value, list) and len(value) == 3, "an LWW entry is [stamp, replica, value]")
        expect(isinstance(value[1], str), "replica is a string")
        expect(value[2] is None or isinstance(value[2], bytes), "value is bytes or None")
        return cls((Hlc.from_plain(value[0]), value[1], value[2]))


class MVRegister(Crdt):
    kind = TableKind.MV_REGISTER

    def __init__(self, values: dict[Dot, bytes] | None = None,
                 context: CausalContext | None = None) -> None:
        self._values: dict[Dot, bytes] = dict(values or {})
        self._context = context.copy() if context is not None else CausalContext()
        assert all(dot in self._context for dot in self._values), "held dots are in the context"

    def copy(self) -> "MVRegister":
        return MVRegister(self._values, self._context)

    def assign(self, origin: Origin, value: bytes) -> "MVRegister":
        """The delta that replaces every value seen here with `value`."""
        check_value_size(value, "a register value")
        dot = self._context.next_dot(origin.replica)
        return MVRegister({dot: value}, context_of([*self._values, dot]))

    def clear(self, origin: Origin) -> "MVRegister":
        """The delta that removes every value seen here."""
        return MVRegister({}, context_of(self._values))

    def merge(self, other: "MVRegister") -> bool:
        joined = join_dot_fun(self._values, self._context, other._values, other._context)
        context_changed = self._context.merge(other._context)
        changed = context_changed or joined != self._values
        self._values = joined
        return changed

    def value(self) -> list[bytes]:
        """Every concurrent value, sorted (empty when unset or cleared)."""
        return sorted(set(self._values.values()))

    def is_empty(self) -> bool:
        return not self._values and self._context.is_empty()

    def to_plain(self) -> Any:
        values = sorted([dot.to_plain(), value] for dot, value in self._values.items())
        return [values, self._context.to_plain()]

    @classmethod
    def from_plain(cls, value: Any) -> "MVRegister":
        expect(isinstance(value, list) and len(value) == 2, "an MV register is [values, context]")
        expect(isinstance(value[0], list), "values are a list")
        values: dict[Dot, bytes] = {}
        for pair in value[0]:
            expect(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], bytes),
                   "a value is [dot, bytes]")
            values[Dot.from_plain(pair[0])] = pair[1]
        context = CausalContext.from_plain(value[1])
        expect(all(dot in context for dot in values), "a held dot is missing from the context")
        return cls(values, context)
