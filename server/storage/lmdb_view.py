"""`LmdbView`: the `StoreView` the state machine reads and writes through,
over one LMDB transaction, and the encodings of the strong plane's records.

Layout, one sub-database each: kv (key -> 32-byte header + value), counters
(name -> int64), dedup (request id -> log time + result), dedup_by_ts (log
time + request id, for ordered collection), meta (last applied index,
clocks, logical sizes), leases (id -> ttl, deadline), lease_deadlines
(deadline + id, for expiry in order), lease_items (id + item: what is
attached), claims (table + name -> claim: registry, locks, election
candidates, the CRDT catalog), events (revision + seq -> watch event), and
the durable topics' four tables (lmdb_topics.py).

A writable view counts the logical size of every record it adds or drops
(the formulas of strong/view.py) in a `SpaceLedger` that the store writes
to meta with the batch, so the space quota is the same number on every
node.
"""

from __future__ import annotations

import contextlib
import struct
from typing import Iterator

import lmdb

from tandemkv.server.storage.lmdb_topics import LmdbTopicLog, count_topic_space
from tandemkv.server.strong import view as sizes
from tandemkv.server.strong.view import KvRecord, LeaseRecord

_RECORD_HEADER = struct.Struct(">QQQQ")
_LEASE = struct.Struct(">qq")
_EVENT_KEY = struct.Struct(">QI")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_LAST_APPLIED = b"last_applied"
_LOG_CLOCK_MS = b"log_clock_ms"
# The logical sizes (see view.py), kept in meta with the state they count.
SPACE_USED_KEY = b"space_used_bytes"
HISTORY_BYTES_KEY = b"history_bytes"


def _encode_record(record: KvRecord) -> bytes:
    header = _RECORD_HEADER.pack(record.create_revision, record.mod_revision, record.version,
                                 record.lease)
    return header + record.value


def _decode_record(raw: bytes) -> KvRecord:
    create_revision, mod_revision, version, lease = _RECORD_HEADER.unpack_from(raw)
    return KvRecord(raw[_RECORD_HEADER.size:], create_revision, mod_revision, version, lease)


def _scan(cursor, start: bytes, end: bytes | None):
    """(key, value) pairs of `cursor`'s database in [start, end)."""
    positioned = cursor.set_range(start) if start else cursor.first()
    if not positioned:
        return
    for key, value in cursor:
        if end is not None and key >= end:
            return
        yield key, value


class SpaceLedger:
    """The logical sizes while a batch of entries applies: read from meta
    when the batch begins, written back before it commits, so a write pays
    for no meta update of its own."""

    def __init__(self, used: int, history: int):
        self.used = used
        self.history = history

    def grow(self, delta: int, history: bool = False) -> None:
        self.used += delta
        if history:
            self.history += delta


class LmdbView:
    """A StoreView over one LMDB transaction (read-only or writable). A
    writable view counts what it stores in `ledger`."""

    def __init__(self, env: lmdb.Environment, txn: lmdb.Transaction, dbs: dict,
                 ledger: SpaceLedger | None = None):
        self._env = env
        self._txn = txn
        self._dbs = dbs
        self._ledger = ledger
        self._topic_log: LmdbTopicLog | None = None

    def _grow(self, delta: int, history: bool = False) -> None:
        self._ledger.grow(delta, history)

    def space_used(self) -> int:
        return self._ledger.used if self._ledger else self._meta_u64(SPACE_USED_KEY)

    def history_bytes(self) -> int:
        return self._ledger.history if self._ledger else self._meta_u64(HISTORY_BYTES_KEY)

    def count_space(self) -> tuple[int, int]:
        """(space used, history bytes) counted record by record: what the
        running counts must equal (a consistency check; it reads it all)."""
        return count_space(self._txn, self._dbs)

    def topic_log(self) -> LmdbTopicLog:
        """The durable topics' tables (lmdb_topics.py), in this transaction
        (kept while the transaction is: every applied entry asks for it)."""
        log = self._topic_log
        if log is None or log.txn is not self._txn:
            log = self._topic_log = LmdbTopicLog(self._txn, self._dbs, self._grow)
        return log

    def _meta_u64(self, key: bytes) -> int:
        raw = self._txn.get(key, db=self._dbs[b"meta"])
        return 0 if raw is None else _U64.unpack(raw)[0]

    def last_applied(self) -> int:
        return self._meta_u64(_LAST_APPLIED)

    def set_last_applied(self, index: int) -> None:
        self._txn.put(_LAST_APPLIED, _U64.pack(index), db=self._dbs[b"meta"])

    def log_clock_ms(self) -> int:
        return self._meta_u64(_LOG_CLOCK_MS)

    def set_log_clock_ms(self, ts_ms: int) -> None:
        self._txn.put(_LOG_CLOCK_MS, _U64.pack(max(0, ts_ms)), db=self._dbs[b"meta"])

    def kv_get(self, key: bytes) -> KvRecord | None:
        raw = self._txn.get(key, db=self._dbs[b"kv"])
        return None if raw is None else _decode_record(raw)

    def kv_put(self, key: bytes, record: KvRecord) -> None:
        old = self._txn.replace(key, _encode_record(record), db=self._dbs[b"kv"])
        if old is not None:
            self._grow(-sizes.kv_bytes(key, old[_RECORD_HEADER.size:]))
        self._grow(sizes.kv_bytes(key, record.value))

    def kv_delete(self, key: bytes) -> bool:
        old = self._txn.pop(key, db=self._dbs[b"kv"])
        if old is not None:
            self._grow(-sizes.kv_bytes(key, old[_RECORD_HEADER.size:]))
        return old is not None

    def kv_scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, KvRecord]]:
        for key, raw in _scan(self._txn.cursor(db=self._dbs[b"kv"]), start, end):
            yield key, _decode_record(raw)

    def counter_get(self, name: bytes) -> int | None:
        raw = self._txn.get(name, db=self._dbs[b"counters"])
        return None if raw is None else _I64.unpack(raw)[0]

    def counter_put(self, name: bytes, value: int) -> None:
        if self._txn.replace(name, _I64.pack(value), db=self._dbs[b"counters"]) is None:
            self._grow(sizes.counter_bytes(name))

    def counter_delete(self, name: bytes) -> bool:
        found = self._txn.delete(name, db=self._dbs[b"counters"])
        if found:
            self._grow(-sizes.counter_bytes(name))
        return found

    def dedup_get(self, request_id: bytes) -> bytes | None:
        raw = self._txn.get(request_id, db=self._dbs[b"dedup"])
        return None if raw is None else raw[_U64.size:]

    def dedup_put(self, request_id: bytes, ts_ms: int, result: bytes) -> None:
        stamp = _U64.pack(max(0, ts_ms))
        old = self._txn.replace(request_id, stamp + result, db=self._dbs[b"dedup"])
        if old is not None:
            self._txn.delete(old[:_U64.size] + request_id, db=self._dbs[b"dedup_by_ts"])
            self._grow(-sizes.dedup_bytes(request_id, old[_U64.size:]))
        self._txn.put(stamp + request_id, b"", db=self._dbs[b"dedup_by_ts"])
        self._grow(sizes.dedup_bytes(request_id, result))

    def dedup_collect(self, older_than_ms: int, count_max: int) -> int:
        if older_than_ms <= 0:
            return 0
        cursor = self._txn.cursor(db=self._dbs[b"dedup_by_ts"])
        dropped = 0
        while dropped < count_max and cursor.first():
            key = cursor.key()
            if _U64.unpack_from(key)[0] >= older_than_ms:
                break
            cursor.delete()
            request_id = key[_U64.size:]
            old = self._txn.pop(request_id, db=self._dbs[b"dedup"])
            if old is not None:
                self._grow(-sizes.dedup_bytes(request_id, old[_U64.size:]))
            dropped += 1
        return dropped

    def meta_get(self, key: bytes) -> bytes | None:
        return self._txn.get(key, db=self._dbs[b"meta"])

    def meta_put(self, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._dbs[b"meta"])

    def lease_get(self, lease_id: int) -> LeaseRecord | None:
        raw = self._txn.get(_U64.pack(lease_id), db=self._dbs[b"leases"])
        return None if raw is None else LeaseRecord(*_LEASE.unpack(raw))

    def lease_put(self, lease_id: int, record: LeaseRecord) -> None:
        key = _U64.pack(lease_id)
        old = self.lease_get(lease_id)
        if old is not None:
            self._txn.delete(_U64.pack(max(0, old.deadline_ms)) + key,
                             db=self._dbs[b"lease_deadlines"])
        else:
            self._grow(sizes.lease_bytes())
        self._txn.put(key, _LEASE.pack(record.ttl_ms, record.deadline_ms), db=self._dbs[b"leases"])
        self._txn.put(_U64.pack(max(0, record.deadline_ms)) + key, b"",
                      db=self._dbs[b"lease_deadlines"])

    def lease_delete(self, lease_id: int) -> None:
        old = self.lease_get(lease_id)
        if old is None:
            return
        key = _U64.pack(lease_id)
        self._txn.delete(key, db=self._dbs[b"leases"])
        self._txn.delete(_U64.pack(max(0, old.deadline_ms)) + key, db=self._dbs[b"lease_deadlines"])
        self._grow(-sizes.lease_bytes())
        for item in self.lease_items(lease_id):
            self._txn.delete(key + item, db=self._dbs[b"lease_items"])
            self._grow(-sizes.attachment_bytes(item))

    def leases_due(self, clock_ms: int, count_max: int) -> list[int]:
        due = []
        for key, _ in _scan(self._txn.cursor(db=self._dbs[b"lease_deadlines"]), b"", None):
            if len(due) >= count_max or _U64.unpack_from(key)[0] > max(0, clock_ms):
                break
            due.append(_U64.unpack_from(key, _U64.size)[0])
        return due

    def leases_after(self, lease_id: int, count_max: int) -> list[tuple[int, LeaseRecord]]:
        if lease_id >= 2**64 - 1:
            return []
        cursor = self._txn.cursor(db=self._dbs[b"leases"])
        found = []
        for key, raw in _scan(cursor, _U64.pack(lease_id + 1), None):
            if len(found) >= count_max:
                break
            found.append((_U64.unpack(key)[0], LeaseRecord(*_LEASE.unpack(raw))))
        return found

    def lease_attach(self, lease_id: int, item: bytes) -> None:
        key = sizes.attachment_key(lease_id, item)
        if self._txn.put(key, b"", overwrite=False, db=self._dbs[b"lease_items"]):
            self._grow(sizes.attachment_bytes(item))

    def lease_detach(self, lease_id: int, item: bytes) -> None:
        key = sizes.attachment_key(lease_id, item)
        if self._txn.delete(key, db=self._dbs[b"lease_items"]):
            self._grow(-sizes.attachment_bytes(item))

    def lease_items(self, lease_id: int) -> list[bytes]:
        prefix = _U64.pack(lease_id)
        end = _U64.pack(lease_id + 1)
        cursor = self._txn.cursor(db=self._dbs[b"lease_items"])
        return [key[len(prefix):] for key, _ in _scan(cursor, prefix, end)]

    def claim_get(self, table: bytes, name: bytes) -> bytes | None:
        return self._txn.get(table + name, db=self._dbs[b"claims"])

    def claim_put(self, table: bytes, name: bytes, claim: bytes) -> None:
        old = self._txn.replace(table + name, claim, db=self._dbs[b"claims"])
        if old is not None:
            self._grow(-sizes.claim_bytes(table, name, old))
        self._grow(sizes.claim_bytes(table, name, claim))

    def claim_delete(self, table: bytes, name: bytes) -> bool:
        old = self._txn.pop(table + name, db=self._dbs[b"claims"])
        if old is not None:
            self._grow(-sizes.claim_bytes(table, name, old))
        return old is not None

    def claim_scan(self, table: bytes, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        upper = table + end if end is not None else _next_prefix(table)
        cursor = self._txn.cursor(db=self._dbs[b"claims"])
        for key, raw in _scan(cursor, table + start, upper):
            yield key[len(table):], raw

    def event_put(self, revision: int, seq: int, event: bytes) -> None:
        old = self._txn.replace(_EVENT_KEY.pack(revision, seq), event, db=self._dbs[b"events"])
        if old is not None:
            self._grow(-sizes.event_bytes(old), history=True)
        self._grow(sizes.event_bytes(event), history=True)

    def events_scan(self, start_revision: int) -> Iterator[tuple[int, bytes]]:
        cursor = self._txn.cursor(db=self._dbs[b"events"])
        for key, raw in _scan(cursor, _EVENT_KEY.pack(start_revision, 0), None):
            yield _EVENT_KEY.unpack(key)[0], raw

    def events_trim(self, before_revision: int, count_max: int,
                    history_bytes_max: int | None = None) -> int:
        cursor = self._txn.cursor(db=self._dbs[b"events"])
        dropped_through = 0
        for _ in range(count_max):
            if not cursor.first():
                break
            revision = _EVENT_KEY.unpack(cursor.key())[0]
            over = history_bytes_max is not None and self.history_bytes() > history_bytes_max
            if revision >= before_revision and not over:
                break
            self._grow(-sizes.event_bytes(cursor.value()), history=True)
            cursor.delete()
            dropped_through = revision
        return dropped_through

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        parent = self._txn
        child = self._env.begin(write=True, parent=parent)
        self._txn = child
        saved = (self._ledger.used, self._ledger.history)
        try:
            yield
        except BaseException:
            child.abort()
            self._ledger.used, self._ledger.history = saved
            raise
        else:
            child.commit()
        finally:
            self._txn = parent


def count_space(txn: lmdb.Transaction, dbs: dict) -> tuple[int, int]:
    """(space used, history bytes) of a store, record by record."""
    used = 0
    for key, raw in txn.cursor(db=dbs[b"kv"]):
        used += sizes.kv_bytes(key, raw[_RECORD_HEADER.size:])
    for name, _ in txn.cursor(db=dbs[b"counters"]):
        used += sizes.counter_bytes(name)
    for request_id, raw in txn.cursor(db=dbs[b"dedup"]):
        used += sizes.dedup_bytes(request_id, raw[_U64.size:])
    used += sizes.lease_bytes() * txn.stat(dbs[b"leases"])["entries"]
    for key, _ in txn.cursor(db=dbs[b"lease_items"]):
        used += sizes.attachment_bytes(key[_U64.size:])
    for key, raw in txn.cursor(db=dbs[b"claims"]):
        used += sizes.claim_bytes(key[:1], key[1:], raw)
    used += count_topic_space(txn, dbs)
    history = sum(sizes.event_bytes(raw) for _, raw in txn.cursor(db=dbs[b"events"]))
    return used + history, history


def _next_prefix(prefix: bytes) -> bytes:
    """The smallest key after every key starting with `prefix` (prefixes
    here are table tags, never all 0xff)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])
