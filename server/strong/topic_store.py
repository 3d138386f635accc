"""What the durable topics (topics.py) store, and how: the `TopicLog`
protocol a view hands out (`view.topic_log()`), the per-topic record, the
logical size of each stored record, and `MemoryTopicLog`, the dict-backed
log of `MemoryView`. The LMDB log (tandemkv.server.storage.lmdb_topics)
implements the same protocol with the same sizes.

Four tables, each a sorted map in LMDB:
- meta: topic -> `TopicMeta` (only while the topic holds messages);
- messages: (topic, offset) -> publish time (log clock), age stamp (lease
  clock) + message, so a read from an offset is one range scan;
- expiries: (expiry time, topic), the topics in the order their oldest
  message ages out, so retention by age finds its work without a scan;
- changes: revision -> topic, the recent publishes, from which a node learns
  which topics moved (trimmed to TOPIC_CHANGES_REVISIONS_MAX revisions).

Like the rest of the view, a log decides nothing: topics.py tells it what
to store.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple, Protocol

from tandemkv.server.strong.view import RECORD_OVERHEAD_BYTES, _require_storable

# Encoded sizes of the fixed parts of the LMDB layout.
TOPIC_LENGTH_BYTES = 2
OFFSET_BYTES = 8
STAMP_BYTES = 8
MESSAGE_STAMPS_BYTES = 16
META_RECORD_BYTES = 48


class TopicMeta(NamedTuple):
    """A topic's place in its log. Offsets first_offset .. next_offset - 1
    are held; base_offset is where the topic's current life began;
    expiry_ms is when, on the lease clock, its oldest held message ages out
    (its key in the expiries table)."""

    base_offset: int
    first_offset: int
    next_offset: int
    retain_messages: int
    retain_ms: int
    expiry_ms: int


def meta_bytes(topic: bytes) -> int:
    return len(topic) + META_RECORD_BYTES + RECORD_OVERHEAD_BYTES


def message_bytes(topic: bytes, message: bytes) -> int:
    key = TOPIC_LENGTH_BYTES + len(topic) + OFFSET_BYTES
    return key + MESSAGE_STAMPS_BYTES + len(message) + RECORD_OVERHEAD_BYTES


def expiry_bytes(topic: bytes) -> int:
    return STAMP_BYTES + len(topic) + RECORD_OVERHEAD_BYTES


def change_bytes(topic: bytes) -> int:
    return OFFSET_BYTES + len(topic) + RECORD_OVERHEAD_BYTES


def message_key(topic: bytes, offset: int) -> bytes:
    """The topic's length first, so one topic's keys never interleave with
    a longer topic that starts with the same bytes."""
    return len(topic).to_bytes(TOPIC_LENGTH_BYTES, "big") + topic + offset.to_bytes(OFFSET_BYTES, "big")


class TopicLog(Protocol):
    """The durable topics' tables, inside the view's transaction."""

    def meta_get(self, topic: bytes) -> TopicMeta | None: ...
    def meta_put(self, topic: bytes, meta: TopicMeta) -> None: ...
    def meta_delete(self, topic: bytes) -> None: ...

    def message_put(self, topic: bytes, offset: int, publish_ms: int, age_ms: int,
                    message: bytes) -> None: ...
    def message_delete(self, topic: bytes, offset: int) -> None: ...
    def messages(self, topic: bytes, from_offset: int) -> Iterator[tuple[int, int, int, bytes]]:
        """(offset, publish_ms, age_ms, message) of the topic from
        from_offset on: the log clock and the lease clock at its publish."""
        ...

    def expiry_put(self, expiry_ms: int, topic: bytes) -> None: ...
    def expiry_delete(self, expiry_ms: int, topic: bytes) -> None: ...
    def expiry_first(self) -> tuple[int, bytes] | None:
        """The (expiry_ms, topic) that ages out first, or None."""
        ...

    def change_put(self, revision: int, topic: bytes) -> None: ...
    def changes(self, from_revision: int) -> Iterator[tuple[int, bytes]]:
        """(revision, topic) of the publishes from from_revision on."""
        ...
    def changes_trim(self, before_revision: int, count_max: int) -> int:
        """Drops up to count_max changes below before_revision, oldest first;
        returns the highest revision dropped (0 if none)."""
        ...


class MemoryTopicLog:
    """A TopicLog over `MemoryView`'s state (so the view's `atomic` covers
    it). Not thread-safe; for tests and models."""

    def __init__(self, view) -> None:
        self._view = view

    def _tables(self) -> dict:
        state = self._view._state
        if "topics" not in state:
            state["topics"] = {"meta": {}, "messages": {}, "expiries": set(), "changes": {}}
        return state["topics"]

    def meta_get(self, topic: bytes) -> TopicMeta | None:
        return self._tables()["meta"].get(topic)

    def meta_put(self, topic: bytes, meta: TopicMeta) -> None:
        _require_storable(topic)
        metas = self._tables()["meta"]
        if topic not in metas:
            self._view._grow(meta_bytes(topic))
        metas[topic] = meta

    def meta_delete(self, topic: bytes) -> None:
        if self._tables()["meta"].pop(topic, None) is not None:
            self._view._grow(-meta_bytes(topic))

    def message_put(self, topic: bytes, offset: int, publish_ms: int, age_ms: int,
                    message: bytes) -> None:
        _require_storable(message_key(topic, offset))
        messages = self._tables()["messages"].setdefault(topic, {})
        old = messages.get(offset)
        if old is not None:
            self._view._grow(-message_bytes(topic, old[2]))
        messages[offset] = (publish_ms, age_ms, message)
        self._view._grow(message_bytes(topic, message))

    def message_delete(self, topic: bytes, offset: int) -> None:
        messages = self._tables()["messages"].get(topic, {})
        old = messages.pop(offset, None)
        if old is not None:
            self._view._grow(-message_bytes(topic, old[2]))
        if not messages:
            self._tables()["messages"].pop(topic, None)

    def messages(self, topic: bytes, from_offset: int) -> Iterator[tuple[int, int, int, bytes]]:
        messages = self._tables()["messages"].get(topic, {})
        for offset in sorted(o for o in messages if o >= from_offset):
            yield (offset, *messages[offset])

    def expiry_put(self, expiry_ms: int, topic: bytes) -> None:
        expiries = self._tables()["expiries"]
        if (expiry_ms, topic) not in expiries:
            expiries.add((expiry_ms, topic))
            self._view._grow(expiry_bytes(topic))

    def expiry_delete(self, expiry_ms: int, topic: bytes) -> None:
        expiries = self._tables()["expiries"]
        if (expiry_ms, topic) in expiries:
            expiries.discard((expiry_ms, topic))
            self._view._grow(-expiry_bytes(topic))

    def expiry_first(self) -> tuple[int, bytes] | None:
        expiries = self._tables()["expiries"]
        return min(expiries) if expiries else None

    def change_put(self, revision: int, topic: bytes) -> None:
        changes = self._tables()["changes"]
        old = changes.get(revision)
        if old is not None:
            self._view._grow(-change_bytes(old))
        changes[revision] = topic
        self._view._grow(change_bytes(topic))

    def changes(self, from_revision: int) -> Iterator[tuple[int, bytes]]:
        changes = self._tables()["changes"]
        for revision in sorted(r for r in changes if r >= from_revision):
            yield revision, changes[revision]

    def changes_trim(self, before_revision: int, count_max: int) -> int:
        changes = self._tables()["changes"]
        dropped_through = 0
        for revision in sorted(r for r in changes if r < before_revision)[:count_max]:
            self._view._grow(-change_bytes(changes.pop(revision)))
            dropped_through = revision
        return dropped_through
