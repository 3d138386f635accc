"""The mutations of CRDT tables: one typed table for every layer.

Each mutation is a frozen dataclass that names the mutator it runs (a
method of the table's type in `kinds.CRDT_TYPES`) and carries its
arguments, checked when it is built. `MUTATIONS` says which mutations a
table of each kind takes; the gossip core's `MUTATORS` are derived from
it, so the two can never disagree. The API edge turns a request into one
of these (`api/crdt_servicers.mutation_from_proto`), the node checks it
against the table's kind (`check`), the gossip core runs it.

Pure: no gossip, storage, wire or threads.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Union

from tandemkv.errors import FailedPrecondition, InvalidArgument

from tandemkv.server.available.crdt.base import TableKind, check_value_size


def _check_amount(amount: int, what: str, opposite: str) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidArgument(f"{what} is an int, not {type(amount).__name__}")
    if amount < 0:
        raise InvalidArgument(f"{what} must not be negative (got {amount}); use {opposite}")


@dataclasses.dataclass(frozen=True)
class Increment:
    """Counters: add `amount` (>= 0)."""

    amount: int = 1
    name: ClassVar[str] = "increment"
    mutator: ClassVar[str] = "increment"

    def __post_init__(self) -> None:
        _check_amount(self.amount, "an increment", "Decrement")

    def args(self) -> tuple:
        return (self.amount,)


@dataclasses.dataclass(frozen=True)
class Decrement:
    """PN_COUNTER: subtract `amount` (>= 0)."""

    amount: int = 1
    name: ClassVar[str] = "decrement"
    mutator: ClassVar[str] = "decrement"

    def __post_init__(self) -> None:
        _check_amount(self.amount, "a decrement", "Increment")

    def args(self) -> tuple:
        return (self.amount,)


@dataclasses.dataclass(frozen=True)
class Assign:
    """Registers: set the value (MV_REGISTER: replaces every value seen here)."""

    value: bytes
    name: ClassVar[str] = "assign"
    mutator: ClassVar[str] = "assign"

    def __post_init__(self) -> None:
        check_value_size(self.value, "a register value")

    def args(self) -> tuple:
        return (self.value,)


@dataclasses.dataclass(frozen=True)
class Add:
    """OR_SET: add a member."""

    member: bytes
    name: ClassVar[str] = "add"
    mutator: ClassVar[str] = "add"

    def __post_init__(self) -> None:
        check_value_size(self.member, "a set member")

    def args(self) -> tuple:
        return (self.member,)


@dataclasses.dataclass(frozen=True)
class Remove:
    """OR_SET: remove a member as seen here (concurrent adds win)."""

    member: bytes
    name: ClassVar[str] = "remove"
    mutator: ClassVar[str] = "remove"

    def __post_init__(self) -> None:
        check_value_size(self.member, "a set member")

    def args(self) -> tuple:
        return (self.member,)


@dataclasses.dataclass(frozen=True)
class Put:
    """AW_LWW_MAP: set `key` to `value`."""

    key: bytes
    value: bytes
    name: ClassVar[str] = "put"
    mutator: ClassVar[str] = "put"

    def __post_init__(self) -> None:
        check_value_size(self.key, "a map key")
        check_value_size(self.value, "a map value")

    def args(self) -> tuple:
        return (self.key, self.value)


@dataclasses.dataclass(frozen=True)
class RemoveKey:
    """AW_LWW_MAP: remove `key` as seen here (concurrent puts win)."""

    key: bytes
    name: ClassVar[str] = "remove_key"
    mutator: ClassVar[str] = "remove"

    def __post_init__(self) -> None:
        check_value_size(self.key, "a map key")

    def args(self) -> tuple:
        return (self.key,)


@dataclasses.dataclass(frozen=True)
class Clear:
    """MV_REGISTER, OR_SET, AW_LWW_MAP: remove everything seen here."""

    name: ClassVar[str] = "clear"
    mutator: ClassVar[str] = "clear"

    def args(self) -> tuple:
        return ()


Mutation = Union[Increment, Decrement, Assign, Add, Remove, Put, RemoveKey, Clear]

# The one table: the mutations a table of each kind takes.
MUTATIONS: dict[TableKind, tuple[type[Mutation], ...]] = {
    TableKind.G_COUNTER: (Increment,),
    TableKind.PN_COUNTER: (Increment, Decrement),
    TableKind.LWW_REGISTER: (Assign,),
    TableKind.MV_REGISTER: (Assign, Clear),
    TableKind.OR_SET: (Add, Remove, Clear),
    TableKind.AW_LWW_MAP: (Put, RemoveKey, Clear),
}

# The mutator methods each kind's type offers, derived from MUTATIONS.
MUTATORS: dict[TableKind, frozenset[str]] = {
    kind: frozenset(mutation.mutator for mutation in taken) for kind, taken in MUTATIONS.items()
}

__all__ = ["Add", "Assign", "Clear", "Decrement", "Increment", "MUTATIONS", "MUTATORS", "Mutation",
           "Put", "Remove", "RemoveKey", "check"]


def check(table: str, kind: TableKind, mutation: Mutation) -> None:
    """Raises FailedPrecondition, saying what the table takes, unless a
    table of `kind` takes `mutation`."""
    assert type(mutation) in _ALL, f"{mutation!r} is not a CRDT mutation"
    taken = MUTATIONS[kind]
    if type(mutation) in taken:
        return
    shown = kind.value.upper()
    if kind == TableKind.G_COUNTER and isinstance(mutation, Decrement):
        raise FailedPrecondition(f"table {table!r} is a {shown}: it only grows; "
                                 "use a PN_COUNTER to decrement")
    raise FailedPrecondition(f"table {table!r} is a {shown}; it takes "
                             f"{' or '.join(m.name for m in taken)}, not {mutation.name}")


_ALL = frozenset(mutation for taken in MUTATIONS.values() for mutation in taken)
