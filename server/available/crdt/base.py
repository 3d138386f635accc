"""What every CRDT value type of the available plane is: the `Crdt` base,
the `Origin` a mutator is called with, and the `TableKind` names.

A type is a join-semilattice. Mutators are pure: they return a *delta*, a
small state of the same type, and never change the object they are called
on; `merge` joins a delta or a whole state in place, with the same code.
Call `state.merge(delta)` before the next mutator on that state, or the
next delta reuses a dot.

Types know nothing of gossip, storage or bytes; `to_plain`/`from_plain`
give the tree that `canonical` encodes.
"""

from __future__ import annotations

import abc
import enum
from typing import Any, ClassVar, NamedTuple, TypeVar

from tandemkv import limits
from tandemkv.errors import InvalidArgument

from tandemkv.server.available.crdt.hlc import Hlc

Self = TypeVar("Self", bound="Crdt")


class TableKind(str, enum.Enum):
    """The CRDT type of a table; the value is its name on the wire."""

    G_COUNTER = "g_counter"
    PN_COUNTER = "pn_counter"
    LWW_REGISTER = "lww_register"
    MV_REGISTER = "mv_register"
    OR_SET = "or_set"
    AW_LWW_MAP = "aw_lww_map"


class Origin(NamedTuple):
    """Who mutates, and when: the replica that issues dots and owns counter
    entries, and a hybrid timestamp for last-writer-wins."""

    replica: str
    stamp: Hlc


class Crdt(abc.ABC):
    kind: ClassVar[TableKind]

    @classmethod
    def empty(cls: type[Self]) -> Self:
        return cls()

    @abc.abstractmethod
    def copy(self: Self) -> Self: ...

    @abc.abstractmethod
    def merge(self: Self, other: Self) -> bool:
        """Joins `other` (a delta or a state) into this one; returns whether
        this state changed."""

    @abc.abstractmethod
    def to_plain(self) -> Any: ...

    @classmethod
    @abc.abstractmethod
    def from_plain(cls: type[Self], value: Any) -> Self:
        """Builds the state a plain tree describes; raises ValueError if the
        tree does not describe one."""

    @abc.abstractmethod
    def value(self) -> Any:
        """What a reader sees."""

    @abc.abstractmethod
    def is_empty(self) -> bool:
        """Whether this is the bottom of the lattice (a no-op delta)."""

    def join(self: Self, other: Self) -> Self:
        """The join of the two, as a new state."""
        joined = self.copy()
        joined.merge(other)
        return joined

    def max_timestamp(self) -> Hlc | None:
        """The largest hybrid timestamp inside, for types that hold any."""
        return None

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_plain() == other.to_plain()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_plain()!r})"


def check_value_size(value: bytes, what: str) -> None:
    if not isinstance(value, bytes):
        raise InvalidArgument(f"{what} must be bytes")
    if len(value) > limits.CRDT_VALUE_BYTES_MAX:
        raise InvalidArgument(
            f"{what} is {len(value)} bytes; the limit is {limits.CRDT_VALUE_BYTES_MAX}",
            limit="CRDT_VALUE_BYTES_MAX")


def expect(condition: bool, message: str) -> None:
    """For from_plain: raises ValueError unless `condition` holds."""
    if not condition:
        raise ValueError(message)
