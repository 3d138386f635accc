"""`KeyedTable`: one CRDT table holding any number of keys, each its own
CRDT value of the table's kind (as Riak's data types live under bucket and
key, and delta_crdt's AWLWWMap holds keys).

The state maps key -> the key's state, a value of the table's kind
(`kinds.CRDT_TYPES`). A key's state is kept as its canonical encoding, so
a million keys cost bytes rather than objects, and the hash that gossip
digests is taken over bytes already at hand. The join is per key: a key on
one side only is kept, a key on both sides is joined by the kind's merge,
and a missing key is the kind's bottom. The table is the product of its
kind's lattice over all keys, so it inherits the laws (commutative,
associative, idempotent), and any subset of one table's keys is itself a
valid state to merge: anti-entropy may ship keys bucket by bucket.

A write (`mutate`) runs one of the kind's mutators on one key and returns
the delta: a keyed table holding only that key, whose state is the kind's
delta. Deltas merge like states: they may be joined, sent twice, reordered.

Removing a key (`remove`) is the kind's own observed remove:

- OR_SET, MV_REGISTER, AW_LWW_MAP: the kind's `clear` of what this replica
  has seen. An add, assign or put concurrent with the removal survives it
  (add wins); the key then reads present with just that.
- LWW_REGISTER: an assignment of None at a new hybrid timestamp; the later
  of the removal and a write wins.
- G_COUNTER, PN_COUNTER: refused (FailedPrecondition). A counter's state
  cannot forget increments it has seen without a reset-remove type.

A removed key reads absent (`read` gives None, scans skip it) but keeps
its state: the dots or timestamp the removal saw, so that a replica still
holding the old value cannot bring it back. Collecting such keys needs
every replica to have seen the removal (causal stability); that is left to
the running plane.

A single-value table is a keyed table with the one key b"" (`from_single`,
`single`).

Pure: no clock, no I/O, no gossip, no threads.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument

from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.crdt.kinds import CRDT_TYPES, Crdt, Origin, TableKind
from tandemkv.server.available.crdt.mutations import MUTATORS
from tandemkv.server.available.crdt.sorted_keys import SortedKeys

# The mutator (and its arguments) that removes a key, by kind; kinds not
# listed refuse removal.
KEY_REMOVAL: dict[TableKind, tuple[str, tuple]] = {
    TableKind.LWW_REGISTER: ("assign", (None,)),
    TableKind.MV_REGISTER: ("clear", ()),
    TableKind.OR_SET: ("clear", ()),
    TableKind.AW_LWW_MAP: ("clear", ()),
}
# The key a single-value table's state lives under.
SINGLE_KEY = b""

# Called with (key, the key's encoded state before or None, after) each time
# a key's state changes; gossip keeps its bucket digests with it.
ChangeListener = Callable[[bytes, "bytes | None", bytes], None]


class ScanPage(NamedTuple):
    entries: list[tuple[bytes, Any]]   # (key, value) of present keys, in key order
    resume_after: bytes | None         # pass as `after` for the next page; None: done


def encode_state(state: Crdt) -> bytes:
    """A key's state as stored and sent: the canonical encoding of its tree
    (the table carries the kind, so the key's bytes do not)."""
    return canonical.encode(state.to_plain())


def decode_state(kind: TableKind, data: bytes) -> Crdt:
    """The key state `data` encodes; raises canonical.DecodeError unless it
    is the canonical encoding of a state of `kind`."""
    try:
        state = CRDT_TYPES[kind].from_plain(canonical.decode(data))
    except (ValueError, TypeError) as error:
        raise canonical.DecodeError(f"not a {kind.value} key state: {error}") from error
    if encode_state(state) != data:
        raise canonical.DecodeError("not the canonical encoding of its key state")
    return state


def is_absent(kind: TableKind, state: Crdt) -> bool:
    """Whether a key holding `state` reads as absent (never for counters)."""
    if kind in (TableKind.G_COUNTER, TableKind.PN_COUNTER):
        return False
    if kind == TableKind.LWW_REGISTER:
        return state.value() is None
    return not state.value()


def check_key(key: bytes) -> None:
    if not isinstance(key, bytes):
        raise InvalidArgument(f"a key is bytes, not {type(key).__name__}")
    if len(key) > limits.KEYED_KEY_BYTES_MAX:
        raise InvalidArgument(f"the key is {len(key)} bytes; the limit is {limits.KEYED_KEY_BYTES_MAX}",
                              limit="KEYED_KEY_BYTES_MAX")


_BOTTOM = {kind: encode_state(cls()) for kind, cls in CRDT_TYPES.items()}


class KeyedTable:
    """Not thread-safe: one owner."""

    __slots__ = ("kind", "_states", "_order", "_listener")

    def __init__(self, kind: TableKind, listener: ChangeListener | None = None) -> None:
        self.kind = kind
        self._states: dict[bytes, bytes] = {}
        self._order = SortedKeys()
        self._listener = listener

    # Reads.

    def __len__(self) -> int:
        """Keys held, removed ones included."""
        return len(self._states)

    def __contains__(self, key: bytes) -> bool:
        return key in self._states

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyedTable) and other.kind == self.kind and other._states == self._states

    def __repr__(self) -> str:
        return f"KeyedTable({self.kind.value}, {self.to_plain()!r})"

    def is_empty(self) -> bool:
        return not self._states

    def encoded(self, key: bytes) -> bytes | None:
        """The key's encoded state, None if the key was never written."""
        return self._states.get(key)

    def state(self, key: bytes) -> Crdt | None:
        """The key's state, decoded (a copy: changing it changes nothing)."""
        data = self._states.get(key)
        return None if data is None else CRDT_TYPES[self.kind].from_plain(canonical.decode(data))

    def read(self, key: bytes) -> Any:
        """What a reader sees under `key`: the kind's value, or None when
        the key is absent (never written, or removed)."""
        state = self.state(key)
        return None if state is None or is_absent(self.kind, state) else state.value()

    def items_encoded(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, encoded state) of every key held, in no particular order."""
        return iter(self._states.items())

    def scan(self, prefix: bytes = b"", after: bytes | None = None,
             limit: int = limits.CRDT_SCAN_ENTRIES_MAX) -> ScanPage:
        """Present keys starting with `prefix`, after `after`, in key order,
        at most `limit` (a larger or zero limit is CRDT_SCAN_ENTRIES_MAX).
        A page stops early after KEYED_SCAN_KEYS_EXAMINED_MAX keys looked at
        (removed keys count), so it may be short, or empty, with more to come."""
        if not 0 < limit <= limits.CRDT_SCAN_ENTRIES_MAX:
            limit = limits.CRDT_SCAN_ENTRIES_MAX
        start = prefix if after is None else max(prefix, after + b"\x00")
        entries: list[tuple[bytes, Any]] = []
        for examined, key in enumerate(self._order.from_key(start), 1):
            if not key.startswith(prefix):
                break
            value = self.read(key)
            if value is not None:
                entries.append((key, value))
            if len(entries) == limit or examined == limits.KEYED_SCAN_KEYS_EXAMINED_MAX:
                return ScanPage(entries, key)
        return ScanPage(entries, None)

    def value(self) -> dict[bytes, Any]:
        """Every present key's value (for small tables and tests)."""
        return dict(self.scan(limit=max(1, min(len(self), limits.CRDT_SCAN_ENTRIES_MAX))).entries)

    # Writes.

    def mutate(self, origin: Origin, key: bytes, operation: str, *args: Any) -> "KeyedTable":
        """Runs the kind's mutator `operation` on `key`, applies the delta
        here and returns it. Unlike the value types, a keyed table applies
        its own deltas: it refuses one that would make the key's state pass
        KEYED_KEY_STATE_BYTES_MAX before anything changes."""
        check_key(key)
        if operation not in MUTATORS[self.kind]:
            raise FailedPrecondition(f"a keyed {self.kind.value} table has no {operation!r}; it takes "
                                     f"{', '.join(sorted(MUTATORS[self.kind]))}")
        current = self.state(key) or CRDT_TYPES[self.kind]()
        delta = getattr(current, operation)(origin, *args)
        return self._take_local(key, current, delta)

    def remove(self, origin: Origin, key: bytes) -> "KeyedTable":
        """Removes `key` as the kind's semantics say (module docstring);
        returns the delta (empty when this replica holds nothing to remove)."""
        removal = KEY_REMOVAL.get(self.kind)
        if removal is None:
            raise FailedPrecondition(f"a key of a keyed {self.kind.value} table cannot be removed: "
                                     "a counter keeps every increment it has seen")
        check_key(key)
        if key not in self._states:
            return KeyedTable(self.kind)
        return self.mutate(origin, key, removal[0], *removal[1])

    def merge(self, other: "KeyedTable") -> bool:
        """Joins `other` (a delta or a state) into this one; returns whether
        this state changed."""
        assert other.kind == self.kind, "tables of one kind merge"
        changed = False
        for key, data in other._states.items():
            changed = self.merge_encoded(key, data) or changed
        return changed

    def merge_encoded(self, key: bytes, data: bytes) -> bool:
        """Joins one key's encoded state (canonical: from a table, or checked
        by `decode_state`); returns whether the key's state changed."""
        ours = self._states.get(key)
        if ours == data or data == _BOTTOM[self.kind]:
            return False
        if ours is None:
            self._store(key, None, data)
            return True
        state = CRDT_TYPES[self.kind].from_plain(canonical.decode(ours))
        if not state.merge(CRDT_TYPES[self.kind].from_plain(canonical.decode(data))):
            return False
        self._store(key, ours, encode_state(state))
        return True

    def join(self, other: "KeyedTable") -> "KeyedTable":
        joined = self.copy()
        joined.merge(other)
        return joined

    def copy(self) -> "KeyedTable":
        """A copy without the change listener."""
        clone = KeyedTable(self.kind)
        for key, data in self._states.items():
            clone._store(key, None, data)
        return clone

    # Single-value tables and plain trees.

    @classmethod
    def from_single(cls, state: Crdt) -> "KeyedTable":
        """The keyed table a single-value table's `state` becomes: its state
        under the key b""."""
        table = cls(state.kind)
        if not state.is_empty():
            table._store(SINGLE_KEY, None, encode_state(state))
        return table

    def single(self) -> Crdt:
        """The state under b"" (the single-value view)."""
        return self.state(SINGLE_KEY) or CRDT_TYPES[self.kind]()

    def to_plain(self) -> dict:
        return {key: canonical.decode(data) for key, data in self._states.items()}

    @classmethod
    def from_plain(cls, kind: TableKind, value: Any) -> "KeyedTable":
        """Raises ValueError unless `value` maps keys to non-bottom states."""
        if not isinstance(value, dict):
            raise ValueError("a keyed table is a map of key -> state")
        table = cls(kind)
        for key, tree in value.items():
            if not isinstance(key, bytes) or len(key) > limits.KEYED_KEY_BYTES_MAX:
                raise ValueError("a key is bytes within KEYED_KEY_BYTES_MAX")
            data = encode_state(CRDT_TYPES[kind].from_plain(tree))
            if data == _BOTTOM[kind]:
                raise ValueError("a key holds a state above the bottom")
            table._store(key, None, data)
        return table

    def _take_local(self, key: bytes, current: Crdt, delta: Crdt) -> "KeyedTable":
        out = KeyedTable(self.kind)
        if delta.is_empty():
            return out
        before = self._states.get(key)
        current.merge(delta)
        after = encode_state(current)
        if len(after) > limits.KEYED_KEY_STATE_BYTES_MAX:
            raise InvalidArgument(
                f"key {key[:64]!r} would hold {len(after)} bytes of state; the limit is "
                f"{limits.KEYED_KEY_STATE_BYTES_MAX}: remove members or spread them over more keys",
                limit="KEYED_KEY_STATE_BYTES_MAX")
        if after != before:
            self._store(key, before, after)
        # On a new key the state is the delta (the bottom joined with it),
        # so its encoding is too.
        out._store(key, None, after if before is None else encode_state(delta))
        return out

    def _store(self, key: bytes, before: bytes | None, after: bytes) -> None:
        self._states[key] = after
        if before is None:
            self._order.add(key)
        if self._listener is not None:
            self._listener(key, before, after)
