"""`LmdbTopicLog`: the durable topics' tables (strong/topic_store.py) over
one LMDB transaction, counted by the same size formulas as `MemoryTopicLog`.

Layout, one sub-database each:
- topic_meta: topic -> six big-endian u64/i64 (see `_META`);
- topic_messages: u16 topic length + topic + u64 offset -> i64 publish ms
  (log clock) + i64 age stamp (lease clock) + message, so one topic's
  messages are one contiguous range in offset order;
- topic_expiries: u64 expiry ms + topic -> b"";
- topic_changes: u64 revision -> topic.
"""

from __future__ import annotations

import struct
from typing import Iterator

import lmdb

from tandemkv.server.strong import topic_store as sizes
from tandemkv.server.strong.topic_store import TopicMeta, message_key

TOPIC_DB_NAMES = (b"topic_meta", b"topic_messages", b"topic_expiries", b"topic_changes")
_META = struct.Struct(">QQQQQq")
_U64 = struct.Struct(">Q")
_STAMPS = struct.Struct(">qq")


class LmdbTopicLog:
    """A TopicLog over `txn`; `grow(delta)` counts logical bytes (None: a
    read-only view, which never writes)."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict, grow):
        self.txn = txn
        self._meta = dbs[b"topic_meta"]
        self._messages = dbs[b"topic_messages"]
        self._expiries = dbs[b"topic_expiries"]
        self._changes = dbs[b"topic_changes"]
        self._grow = grow

    def meta_get(self, topic: bytes) -> TopicMeta | None:
        raw = self.txn.get(topic, db=self._meta)
        return None if raw is None else TopicMeta(*_META.unpack(raw))

    def meta_put(self, topic: bytes, meta: TopicMeta) -> None:
        assert min(meta[:5]) >= 0, "offsets and retention are never negative"
        if self.txn.replace(topic, _META.pack(*meta), db=self._meta) is None:
            self._grow(sizes.meta_bytes(topic))

    def meta_delete(self, topic: bytes) -> None:
        if self.txn.delete(topic, db=self._meta):
            self._grow(-sizes.meta_bytes(topic))

    def message_put(self, topic: bytes, offset: int, publish_ms: int, age_ms: int,
                    message: bytes) -> None:
        old = self.txn.replace(message_key(topic, offset), _STAMPS.pack(publish_ms, age_ms) + message,
                               db=self._messages)
        if old is not None:
            self._grow(-sizes.message_bytes(topic, old[_STAMPS.size:]))
        self._grow(sizes.message_bytes(topic, message))

    def message_delete(self, topic: bytes, offset: int) -> None:
        old = self.txn.pop(message_key(topic, offset), db=self._messages)
        if old is not None:
            self._grow(-sizes.message_bytes(topic, old[_STAMPS.size:]))

    def messages(self, topic: bytes, from_offset: int) -> Iterator[tuple[int, int, int, bytes]]:
        prefix = message_key(topic, 0)[:-sizes.OFFSET_BYTES]
        cursor = self.txn.cursor(db=self._messages)
        if not cursor.set_range(message_key(topic, from_offset)):
            return
        for key, raw in cursor:
            if not key.startswith(prefix) or len(key) != len(prefix) + sizes.OFFSET_BYTES:
                return
            publish_ms, age_ms = _STAMPS.unpack_from(raw)
            yield _U64.unpack_from(key, len(prefix))[0], publish_ms, age_ms, raw[_STAMPS.size:]

    def expiry_put(self, expiry_ms: int, topic: bytes) -> None:
        if self.txn.put(_U64.pack(max(0, expiry_ms)) + topic, b"", overwrite=False, db=self._expiries):
            self._grow(sizes.expiry_bytes(topic))

    def expiry_delete(self, expiry_ms: int, topic: bytes) -> None:
        if self.txn.delete(_U64.pack(max(0, expiry_ms)) + topic, db=self._expiries):
            self._grow(-sizes.expiry_bytes(topic))

    def expiry_first(self) -> tuple[int, bytes] | None:
        cursor = self.txn.cursor(db=self._expiries)
        if not cursor.first():
            return None
        key = cursor.key()
        return _U64.unpack_from(key)[0], key[_U64.size:]

    def change_put(self, revision: int, topic: bytes) -> None:
        old = self.txn.replace(_U64.pack(revision), topic, db=self._changes)
        if old is not None:
            self._grow(-sizes.change_bytes(old))
        self._grow(sizes.change_bytes(topic))

    def changes(self, from_revision: int) -> Iterator[tuple[int, bytes]]:
        cursor = self.txn.cursor(db=self._changes)
        if not cursor.set_range(_U64.pack(from_revision)):
            return
        for key, topic in cursor:
            yield _U64.unpack(key)[0], topic

    def changes_trim(self, before_revision: int, count_max: int) -> int:
        cursor = self.txn.cursor(db=self._changes)
        dropped_through = 0
        for _ in range(count_max):
            if not cursor.first():
                break
            revision = _U64.unpack(cursor.key())[0]
            if revision >= before_revision:
                break
            self._grow(-sizes.change_bytes(cursor.value()))
            cursor.delete()
            dropped_through = revision
        return dropped_through


def count_topic_space(txn: lmdb.Transaction, dbs: dict) -> int:
    """Logical bytes of the durable topics' records, record by record."""
    used = sum(sizes.meta_bytes(topic) for topic, _ in txn.cursor(db=dbs[b"topic_meta"]))
    for key, raw in txn.cursor(db=dbs[b"topic_messages"]):
        topic = key[sizes.TOPIC_LENGTH_BYTES:-sizes.OFFSET_BYTES]
        used += sizes.message_bytes(topic, raw[_STAMPS.size:])
    used += sum(sizes.expiry_bytes(key[_U64.size:]) for key, _ in txn.cursor(db=dbs[b"topic_expiries"]))
    used += sum(sizes.change_bytes(topic) for _, topic in txn.cursor(db=dbs[b"topic_changes"]))
    return used
