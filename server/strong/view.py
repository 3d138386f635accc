"""What the state machine may read and write: the `StoreView` protocol, the
stored record types, the logical size of stored records, and `MemoryView`, a
dict-backed view used by the pure tests. The LMDB view
(tandemkv.server.storage.lmdb_view) implements the same protocol; one
shared test suite runs against both.

A view never decides anything: it stores what the state machine tells it,
and counts the logical size of what it holds (the `*_bytes` functions
below, one formula for every view) so that the space quota decides the same
on every node, whatever LMDB's pages look like.

MemoryView refuses a composite key LMDB would refuse (over
LMDB_KEY_BYTES_MAX, or empty), raising as LMDB does, so the pure tests catch
a key the state machine failed to check.
"""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING, Iterator, NamedTuple, Protocol

from tandemkv import limits

if TYPE_CHECKING:
    from tandemkv.server.strong.topic_store import TopicLog

# What every stored record costs beyond its key and value bytes (LMDB's node
# header, rounded up), so that many tiny records count for what they cost.
RECORD_OVERHEAD_BYTES = 16
# The encoded sizes of the fixed parts of the LMDB layout.
KV_RECORD_HEADER_BYTES = 32
COUNTER_VALUE_BYTES = 8
DEDUP_STAMP_BYTES = 8
LEASE_ID_BYTES = 8
EVENT_KEY_BYTES = 12
LEASE_RECORD_BYTES = 16


def kv_bytes(key: bytes, value: bytes) -> int:
    return len(key) + KV_RECORD_HEADER_BYTES + len(value) + RECORD_OVERHEAD_BYTES


def counter_bytes(name: bytes) -> int:
    return len(name) + COUNTER_VALUE_BYTES + RECORD_OVERHEAD_BYTES


def dedup_bytes(request_id: bytes, result: bytes) -> int:
    """The record (request id -> stamp + result) and its index by time."""
    by_id = len(request_id) + DEDUP_STAMP_BYTES + len(result) + RECORD_OVERHEAD_BYTES
    by_time = DEDUP_STAMP_BYTES + len(request_id) + RECORD_OVERHEAD_BYTES
    return by_id + by_time


def lease_bytes() -> int:
    """The lease record and its index by deadline."""
    record = LEASE_ID_BYTES + LEASE_RECORD_BYTES + RECORD_OVERHEAD_BYTES
    by_deadline = 8 + LEASE_ID_BYTES + RECORD_OVERHEAD_BYTES
    return record + by_deadline


def attachment_key(lease_id: int, item: bytes) -> bytes:
    return lease_id.to_bytes(LEASE_ID_BYTES, "big") + item


def attachment_bytes(item: bytes) -> int:
    return LEASE_ID_BYTES + len(item) + RECORD_OVERHEAD_BYTES


def claim_bytes(table: bytes, name: bytes, claim: bytes) -> int:
    return len(table) + len(name) + len(claim) + RECORD_OVERHEAD_BYTES


def event_bytes(event: bytes) -> int:
    return EVENT_KEY_BYTES + len(event) + RECORD_OVERHEAD_BYTES


class StoredKeyTooLong(ValueError):
    """MemoryView's stand-in for LMDB's BadValsizeError: a stored key over
    LMDB_KEY_BYTES_MAX, or empty. The state machine must never cause it."""


def _require_storable(key: bytes) -> None:
    if not 0 < len(key) <= limits.LMDB_KEY_BYTES_MAX:
        raise StoredKeyTooLong(f"a stored key of {len(key)} bytes (LMDB allows 1 .. "
                               f"{limits.LMDB_KEY_BYTES_MAX})")


class KvRecord(NamedTuple):
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


class LeaseRecord(NamedTuple):
    ttl_ms: int
    # On the lease clock (see state_machine.LeaseTick handling).
    deadline_ms: int


class StoreView(Protocol):
    """The state the strong plane owns, as seen inside one transaction."""

    def last_applied(self) -> int: ...
    def set_last_applied(self, index: int) -> None: ...
    def log_clock_ms(self) -> int: ...
    def set_log_clock_ms(self, ts_ms: int) -> None: ...

    def kv_get(self, key: bytes) -> KvRecord | None: ...
    def kv_put(self, key: bytes, record: KvRecord) -> None: ...
    def kv_delete(self, key: bytes) -> bool: ...
    def kv_scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, KvRecord]]:
        """Keys in [start, end) in byte order; end None means no upper bound."""
        ...

    def counter_get(self, name: bytes) -> int | None: ...
    def counter_put(self, name: bytes, value: int) -> None: ...
    def counter_delete(self, name: bytes) -> bool: ...

    def dedup_get(self, request_id: bytes) -> bytes | None: ...
    def dedup_put(self, request_id: bytes, ts_ms: int, result: bytes) -> None: ...
    def dedup_collect(self, older_than_ms: int, count_max: int) -> int:
        """Drops up to count_max records stored before older_than_ms, oldest
        first; returns how many it dropped."""
        ...

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        """Everything written inside takes effect only if the block does not
        raise."""
        ...

    def meta_get(self, key: bytes) -> bytes | None: ...
    def meta_put(self, key: bytes, value: bytes) -> None: ...

    def lease_get(self, lease_id: int) -> LeaseRecord | None: ...
    def lease_put(self, lease_id: int, record: LeaseRecord) -> None: ...
    def lease_delete(self, lease_id: int) -> None: ...
    def leases_due(self, clock_ms: int, count_max: int) -> list[int]:
        """Leases whose deadline is at or before clock_ms, earliest first."""
        ...
    def leases_after(self, lease_id: int, count_max: int) -> list[tuple[int, LeaseRecord]]:
        """Up to count_max leases with ids above lease_id, in id order."""
        ...
    def lease_attach(self, lease_id: int, item: bytes) -> None: ...
    def lease_detach(self, lease_id: int, item: bytes) -> None: ...
    def lease_items(self, lease_id: int) -> list[bytes]: ...

    def claim_get(self, table: bytes, name: bytes) -> bytes | None: ...
    def claim_put(self, table: bytes, name: bytes, claim: bytes) -> None: ...
    def claim_delete(self, table: bytes, name: bytes) -> bool: ...
    def claim_scan(self, table: bytes, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...

    def event_put(self, revision: int, seq: int, event: bytes) -> None: ...
    def events_scan(self, start_revision: int) -> Iterator[tuple[int, bytes]]:
        """(revision, event) from start_revision on, in order."""
        ...
    def events_trim(self, before_revision: int, count_max: int,
                    history_bytes_max: int | None = None) -> int:
        """Drops up to count_max events, oldest first, while they are older
        than before_revision or the history is over history_bytes_max;
        returns the highest revision dropped (0 if none)."""
        ...

    def space_used(self) -> int:
        """Logical bytes of every record held (meta aside), by the formulas
        above: the same number on every node for the same state."""
        ...

    def history_bytes(self) -> int:
        """Logical bytes of the change history (the events), a part of
        space_used()."""
        ...

    def topic_log(self) -> "TopicLog":
        """The durable topics' tables (strong/topic_store.py), in this view."""
        ...


class MemoryView:
    """A StoreView over plain dicts. Not thread-safe; for tests and models."""

    def __init__(self) -> None:
        self._state: dict = {
            "last_applied": 0,
            "log_clock_ms": 0,
            "kv": {},
            "counters": {},
            "dedup": {},
            "meta": {},
            "leases": {},
            "lease_items": {},
            "claims": {},
            "events": {},
            "space_used": 0,
            "history_bytes": 0,
        }

    def _grow(self, delta: int) -> None:
        self._state["space_used"] += delta

    def space_used(self) -> int:
        return self._state["space_used"]

    def history_bytes(self) -> int:
        return self._state["history_bytes"]

    def topic_log(self) -> "TopicLog":
        from tandemkv.server.strong.topic_store import MemoryTopicLog  # it builds on this module
        return MemoryTopicLog(self)

    def last_applied(self) -> int:
        return self._state["last_applied"]

    def set_last_applied(self, index: int) -> None:
        self._state["last_applied"] = index

    def log_clock_ms(self) -> int:
        return self._state["log_clock_ms"]

    def set_log_clock_ms(self, ts_ms: int) -> None:
        self._state["log_clock_ms"] = ts_ms

    def kv_get(self, key: bytes) -> KvRecord | None:
        return self._state["kv"].get(key)

    def kv_put(self, key: bytes, record: KvRecord) -> None:
        _require_storable(key)
        old = self._state["kv"].get(key)
        if old is not None:
            self._grow(-kv_bytes(key, old.value))
        self._state["kv"][key] = record
        self._grow(kv_bytes(key, record.value))

    def kv_delete(self, key: bytes) -> bool:
        old = self._state["kv"].pop(key, None)
        if old is not None:
            self._grow(-kv_bytes(key, old.value))
        return old is not None

    def kv_scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, KvRecord]]:
        kv = self._state["kv"]
        for key in sorted(k for k in kv if k >= start and (end is None or k < end)):
            yield key, kv[key]

    def counter_get(self, name: bytes) -> int | None:
        return self._state["counters"].get(name)

    def counter_put(self, name: bytes, value: int) -> None:
        _require_storable(name)
        if name not in self._state["counters"]:
            self._grow(counter_bytes(name))
        self._state["counters"][name] = value

    def counter_delete(self, name: bytes) -> bool:
        found = self._state["counters"].pop(name, None) is not None
        if found:
            self._grow(-counter_bytes(name))
        return found

    def dedup_get(self, request_id: bytes) -> bytes | None:
        entry = self._state["dedup"].get(request_id)
        return None if entry is None else entry[1]

    def dedup_put(self, request_id: bytes, ts_ms: int, result: bytes) -> None:
        _require_storable(request_id)
        old = self._state["dedup"].get(request_id)
        if old is not None:
            self._grow(-dedup_bytes(request_id, old[1]))
        self._state["dedup"][request_id] = (ts_ms, result)
        self._grow(dedup_bytes(request_id, result))

    def dedup_collect(self, older_than_ms: int, count_max: int) -> int:
        dedup = self._state["dedup"]
        victims = sorted((ts, rid) for rid, (ts, _) in dedup.items() if ts < older_than_ms)
        for _, rid in victims[:count_max]:
            self._grow(-dedup_bytes(rid, dedup.pop(rid)[1]))
        return min(len(victims), count_max)

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        saved = copy.deepcopy(self._state)
        try:
            yield
        except BaseException:
            self._state = saved
            raise

    def meta_get(self, key: bytes) -> bytes | None:
        return self._state["meta"].get(key)

    def meta_put(self, key: bytes, value: bytes) -> None:
        self._state["meta"][key] = value

    def lease_get(self, lease_id: int) -> LeaseRecord | None:
        return self._state["leases"].get(lease_id)

    def lease_put(self, lease_id: int, record: LeaseRecord) -> None:
        if lease_id not in self._state["leases"]:
            self._grow(lease_bytes())
        self._state["leases"][lease_id] = record

    def lease_delete(self, lease_id: int) -> None:
        if self._state["leases"].pop(lease_id, None) is not None:
            self._grow(-lease_bytes())
        for item in self._state["lease_items"].pop(lease_id, ()):
            self._grow(-attachment_bytes(item))

    def leases_due(self, clock_ms: int, count_max: int) -> list[int]:
        due = sorted((r.deadline_ms, i) for i, r in self._state["leases"].items()
                     if r.deadline_ms <= clock_ms)
        return [lease_id for _, lease_id in due[:count_max]]

    def leases_after(self, lease_id: int, count_max: int) -> list[tuple[int, LeaseRecord]]:
        leases = self._state["leases"]
        return [(i, leases[i]) for i in sorted(i for i in leases if i > lease_id)[:count_max]]

    def lease_attach(self, lease_id: int, item: bytes) -> None:
        _require_storable(attachment_key(lease_id, item))
        items = self._state["lease_items"].setdefault(lease_id, set())
        if item not in items:
            items.add(item)
            self._grow(attachment_bytes(item))

    def lease_detach(self, lease_id: int, item: bytes) -> None:
        items = self._state["lease_items"].get(lease_id, set())
        if item in items:
            items.discard(item)
            self._grow(-attachment_bytes(item))

    def lease_items(self, lease_id: int) -> list[bytes]:
        return sorted(self._state["lease_items"].get(lease_id, ()))

    def claim_get(self, table: bytes, name: bytes) -> bytes | None:
        return self._state["claims"].get((table, name))

    def claim_put(self, table: bytes, name: bytes, claim: bytes) -> None:
        _require_storable(table + name)
        old = self._state["claims"].get((table, name))
        if old is not None:
            self._grow(-claim_bytes(table, name, old))
        self._state["claims"][(table, name)] = claim
        self._grow(claim_bytes(table, name, claim))

    def claim_delete(self, table: bytes, name: bytes) -> bool:
        old = self._state["claims"].pop((table, name), None)
        if old is not None:
            self._grow(-claim_bytes(table, name, old))
        return old is not None

    def claim_scan(self, table: bytes, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        claims = self._state["claims"]
        names = sorted(n for t, n in claims if t == table and n >= start and (end is None or n < end))
        for name in names:
            yield name, claims[(table, name)]

    def event_put(self, revision: int, seq: int, event: bytes) -> None:
        old = self._state["events"].get((revision, seq))
        size = event_bytes(event) - (0 if old is None else event_bytes(old))
        self._state["events"][(revision, seq)] = event
        self._grow(size)
        self._state["history_bytes"] += size

    def events_scan(self, start_revision: int) -> Iterator[tuple[int, bytes]]:
        events = self._state["events"]
        for key in sorted(k for k in events if k[0] >= start_revision):
            yield key[0], events[key]

    def events_trim(self, before_revision: int, count_max: int,
                    history_bytes_max: int | None = None) -> int:
        events = self._state["events"]
        dropped_through = 0
        for key in sorted(events)[:count_max]:
            over = history_bytes_max is not None and self._state["history_bytes"] > history_bytes_max
            if key[0] >= before_revision and not over:
                break
            size = event_bytes(events.pop(key))
            self._grow(-size)
            self._state["history_bytes"] -= size
            dropped_through = key[0]
        return dropped_through
