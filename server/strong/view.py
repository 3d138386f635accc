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


class MemoryView:
    """A StoreView over plain dicts. Not thread-safe; for tests and models."""

    def __init__(self) -> None:
        self._state: dict = {
            "last_applied": 0,
            "log_clock_ms": 0,
            "kv": {},
            "counters": {},
            "dedup": {},
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

    def dedup_size(self) -> int:
        return len(self._state["dedup"])
