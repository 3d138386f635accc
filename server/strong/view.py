"""What the state machine may read and write: the `StoreView` protocol, the
stored record types, and `MemoryView`, a dict-backed view used by the pure
tests. The LMDB view (tandemkv.server.storage.lmdb_store) implements the
same protocol; one shared test suite runs against both.

A view never decides anything: it stores what the state machine tells it.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator, NamedTuple, Protocol


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
    def events_trim(self, before_revision: int, count_max: int) -> int:
        """Drops up to count_max events older than before_revision, oldest
        first; returns the highest revision dropped (0 if none)."""
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
        }

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
        self._state["kv"][key] = record

    def kv_delete(self, key: bytes) -> bool:
        return self._state["kv"].pop(key, None) is not None

    def kv_scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, KvRecord]]:
        kv = self._state["kv"]
        for key in sorted(k for k in kv if k >= start and (end is None or k < end)):
            yield key, kv[key]

    def counter_get(self, name: bytes) -> int | None:
        return self._state["counters"].get(name)

    def counter_put(self, name: bytes, value: int) -> None:
        self._state["counters"][name] = value

    def counter_delete(self, name: bytes) -> bool:
        return self._state["counters"].pop(name, None) is not None

    def dedup_get(self, request_id: bytes) -> bytes | None:
        entry = self._state["dedup"].get(request_id)
        return None if entry is None else entry[1]

    def dedup_put(self, request_id: bytes, ts_ms: int, result: bytes) -> None:
        self._state["dedup"][request_id] = (ts_ms, result)

    def dedup_collect(self, older_than_ms: int, count_max: int) -> int:
        dedup = self._state["dedup"]
        victims = sorted((ts, rid) for rid, (ts, _) in dedup.items() if ts < older_than_ms)
        for _, rid in victims[:count_max]:
            del dedup[rid]
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
        self._state["leases"][lease_id] = record

    def lease_delete(self, lease_id: int) -> None:
        self._state["leases"].pop(lease_id, None)
        self._state["lease_items"].pop(lease_id, None)

    def leases_due(self, clock_ms: int, count_max: int) -> list[int]:
        due = sorted((r.deadline_ms, i) for i, r in self._state["leases"].items()
                     if r.deadline_ms <= clock_ms)
        return [lease_id for _, lease_id in due[:count_max]]

    def lease_attach(self, lease_id: int, item: bytes) -> None:
        self._state["lease_items"].setdefault(lease_id, set()).add(item)

    def lease_detach(self, lease_id: int, item: bytes) -> None:
        self._state["lease_items"].get(lease_id, set()).discard(item)

    def lease_items(self, lease_id: int) -> list[bytes]:
        return sorted(self._state["lease_items"].get(lease_id, ()))

    def claim_get(self, table: bytes, name: bytes) -> bytes | None:
        return self._state["claims"].get((table, name))

    def claim_put(self, table: bytes, name: bytes, claim: bytes) -> None:
        self._state["claims"][(table, name)] = claim

    def claim_delete(self, table: bytes, name: bytes) -> bool:
        return self._state["claims"].pop((table, name), None) is not None

    def claim_scan(self, table: bytes, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        claims = self._state["claims"]
        names = sorted(n for t, n in claims if t == table and n >= start and (end is None or n < end))
        for name in names:
            yield name, claims[(table, name)]

    def event_put(self, revision: int, seq: int, event: bytes) -> None:
        self._state["events"][(revision, seq)] = event

    def events_scan(self, start_revision: int) -> Iterator[tuple[int, bytes]]:
        events = self._state["events"]
        for key in sorted(k for k in events if k[0] >= start_revision):
            yield key[0], events[key]

    def events_trim(self, before_revision: int, count_max: int) -> int:
        events = self._state["events"]
        victims = sorted(k for k in events if k[0] < before_revision)[:count_max]
        for key in victims:
            del events[key]
        return victims[-1][0] if victims else 0
