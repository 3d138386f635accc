"""Durable topics: the strong plane's per-topic message log (pub/sub's
`durable` mode). Part of the pure state machine (see state_machine.py for
its rules): deterministic; it reads no clock but the two the log keeps:
the log clock (the time commands carry) and the lease clock (which only
leader ticks advance, see coordination.py).

Rules it keeps:
- A publish is one command with a request id: a retry returns the first
  result (the same offset) and never appends twice.
- Offsets of a topic are contiguous: each publish takes `next_offset`, and
  retention drops only from the front, so the held messages are always
  `first_offset .. next_offset - 1`, with no holes.
- A message is stamped with both clocks as they stand at its entry, never
  with the applying node's clock, so every node and every replay ages it
  the same. Its age is measured on the lease clock, as a lease's is: that
  clock advances only by what a leader's tick timer measured, at most 1.2 x
  real time, and not at all without a leader, so a member whose wall clock
  runs ahead cannot age messages early (the log clock, the maximum of the
  proposers' wall clocks, would let it). `publish_ms`, what readers see, is
  the log clock.
- Retention keeps the newest `retain_messages` messages and every message
  younger than `retain_ms` on the lease clock; it may keep more for a while
  (it drops at most TOPIC_PRUNE_PER_ENTRY_MAX messages per log entry, and
  acts only when entries apply), never fewer. Age is handled on apply:
  every entry looks at the topic that ages out first (the expiries table),
  so an idle topic's messages go without a publish to it, and without a
  timer (the leader proposes lease ticks while a topic holds messages).
- No catalogue: a topic costs storage only while it holds messages. A
  topic whose messages all aged out is forgotten; its next publish starts a
  new life whose first offset is the Raft index of that publish. Every
  publish is a log entry of its own (publishes are never batched), so that
  index is past every offset the topic used before: offsets never go back,
  and a reader's old offset still sorts before everything new.
- A read from an offset retention dropped answers with the first retained
  offset, so the reader sees the gap; nothing is skipped silently.
"""

from __future__ import annotations

from tandemkv import limits
from tandemkv.errors import InvalidArgument
from tandemkv.v1 import kv_pb2, topics_pb2

from tandemkv.server.strong.context import ApplyContext
from tandemkv.server.strong.coordination import lease_clock
from tandemkv.server.strong.topic_store import TopicLog, TopicMeta
from tandemkv.server.strong.view import StoreView

# The change log is trimmed at every this many entries, by up to twice as
# many changes (each entry adds at most one), so it keeps pace for less
# than a look per entry.
_CHANGES_TRIM_EVERY_ENTRIES = 16


# -- validation (the API edge and apply both run it) --
def check_topic(topic: bytes) -> None:
    if not 0 < len(topic) <= limits.PUBSUB_TOPIC_BYTES_MAX:
        raise InvalidArgument(
            f"topic is {len(topic)} bytes; it must be 1 to PUBSUB_TOPIC_BYTES_MAX="
            f"{limits.PUBSUB_TOPIC_BYTES_MAX} bytes", limit="PUBSUB_TOPIC_BYTES_MAX")


def check_publish(request: topics_pb2.TopicPublishRequest) -> None:
    check_topic(request.topic)
    if len(request.message) > limits.PUBSUB_MESSAGE_BYTES_MAX:
        raise InvalidArgument(
            f"message is {len(request.message)} bytes; the limit PUBSUB_MESSAGE_BYTES_MAX is "
            f"{limits.PUBSUB_MESSAGE_BYTES_MAX} bytes", limit="PUBSUB_MESSAGE_BYTES_MAX")
    if request.retain_messages > limits.TOPIC_RETAINED_MESSAGES_MAX:
        raise InvalidArgument(
            f"retain_messages {request.retain_messages} is over TOPIC_RETAINED_MESSAGES_MAX="
            f"{limits.TOPIC_RETAINED_MESSAGES_MAX}; ask for fewer (0 keeps the topic's setting)",
            limit="TOPIC_RETAINED_MESSAGES_MAX")
    if request.retain_ms > limits.TOPIC_RETENTION_MS_MAX:
        raise InvalidArgument(
            f"retain_ms {request.retain_ms} is over TOPIC_RETENTION_MS_MAX="
            f"{limits.TOPIC_RETENTION_MS_MAX}; ask for less (0 keeps the topic's setting)",
            limit="TOPIC_RETENTION_MS_MAX")


def check_read(request: topics_pb2.TopicReadRequest) -> None:
    check_topic(request.topic)


# -- apply --
def publish(context: ApplyContext, request: topics_pb2.TopicPublishRequest
            ) -> topics_pb2.TopicPublishResponse:
    log = context.view.topic_log()
    topic, clock_ms = request.topic, context.clock_ms
    before = log.meta_get(topic)
    if before is None:
        meta = TopicMeta(base_offset=context.index, first_offset=context.index,
                         next_offset=context.index,
                         retain_messages=limits.TOPIC_RETAINED_MESSAGES_DEFAULT,
                         retain_ms=limits.TOPIC_RETENTION_MS_DEFAULT, expiry_ms=-1)
    else:
        meta = before
    if request.retain_messages:
        meta = meta._replace(retain_messages=request.retain_messages)
    if request.retain_ms:
        meta = meta._replace(retain_ms=request.retain_ms)
    offset = meta.next_offset
    age_now_ms = lease_clock(context.view)
    log.message_put(topic, offset, clock_ms, age_now_ms, request.message)
    log.change_put(context.index, topic)
    after = _prune(context, log, topic, meta._replace(next_offset=offset + 1), age_now_ms)
    assert after is not None, "the message just published is within any retention"
    _store(log, topic, before, after)
    return topics_pb2.TopicPublishResponse(header=kv_pb2.ResponseHeader(revision=context.index),
                                           offset=offset, first_offset=after.first_offset,
                                           publish_ms=clock_ms)


def expire(context: ApplyContext) -> None:
    """Retention by age, run once per applied entry: prunes the topics whose
    oldest message aged out by the lease clock, earliest first, within the
    entry's prune budget; trims the change log."""
    log = context.view.topic_log()
    due = log.expiry_first()
    if due is not None:
        age_now_ms = lease_clock(context.view)
        for _ in range(limits.TOPIC_PRUNE_PER_ENTRY_MAX):
            if due is None or due[0] > age_now_ms or context.topic_prune_left <= 0:
                break
            expiry_ms, topic = due
            before = log.meta_get(topic)
            assert before is not None and before.expiry_ms == expiry_ms, "expiries follow the metas"
            after = _prune(context, log, topic, before, age_now_ms)
            _store(log, topic, before, after)
            if after is not None and after.expiry_ms <= age_now_ms:
                break  # the budget ran out inside this topic; the next entry goes on
            due = log.expiry_first()
    horizon = context.index - limits.TOPIC_CHANGES_REVISIONS_MAX
    if horizon > 0 and context.index % _CHANGES_TRIM_EVERY_ENTRIES == 0:
        log.changes_trim(horizon, 2 * _CHANGES_TRIM_EVERY_ENTRIES)


def _prune(context: ApplyContext, log: TopicLog, topic: bytes, meta: TopicMeta,
           age_now_ms: int) -> TopicMeta | None:
    """Drops the topic's messages past its retention from the front, within
    the entry's budget (ages on the lease clock, now at age_now_ms);
    returns its new meta, or None if it holds nothing."""
    count_floor = meta.next_offset - meta.retain_messages
    doomed: list[int] = []
    oldest_kept_ms = None
    for offset, _, age_ms, _ in log.messages(topic, meta.first_offset):
        aged = age_ms + meta.retain_ms <= age_now_ms
        if (offset < count_floor or aged) and len(doomed) < context.topic_prune_left:
            doomed.append(offset)
            continue
        oldest_kept_ms = age_ms
        break
    for offset in doomed:
        log.message_delete(topic, offset)
    context.topic_prune_left -= len(doomed)
    if oldest_kept_ms is None:
        assert not doomed or doomed[-1] == meta.next_offset - 1, "messages are contiguous"
        return None
    first_offset = doomed[-1] + 1 if doomed else meta.first_offset
    return meta._replace(first_offset=first_offset, expiry_ms=oldest_kept_ms + meta.retain_ms)


def _store(log: TopicLog, topic: bytes, before: TopicMeta | None, after: TopicMeta | None) -> None:
    """Writes the topic's meta and keeps its expiry entry in step; a topic
    with nothing left is forgotten."""
    moved = before is None or after is None or before.expiry_ms != after.expiry_ms
    if before is not None and moved:
        log.expiry_delete(before.expiry_ms, topic)
    if after is None:
        log.meta_delete(topic)
        return
    if moved:
        log.expiry_put(after.expiry_ms, topic)
    log.meta_put(topic, after)


# -- reads --
def read(view: StoreView, request: topics_pb2.TopicReadRequest, revision: int
         ) -> topics_pb2.TopicReadResponse:
    """The topic's retained messages from `from_offset` on, at most `limit`
    and TOPIC_READ_BYTES_MAX bytes, with where the topic stands."""
    response = topics_pb2.TopicReadResponse(header=kv_pb2.ResponseHeader(revision=revision))
    meta = view.topic_log().meta_get(request.topic)
    if meta is None:
        # No later publish can take an offset at or below this revision.
        response.first_offset = response.next_offset = response.base_offset = revision + 1
        return response
    response.first_offset = meta.first_offset
    response.next_offset = meta.next_offset
    response.base_offset = meta.base_offset
    limit = min(request.limit or limits.TOPIC_READ_MESSAGES_MAX, limits.TOPIC_READ_MESSAGES_MAX)
    size_bytes = 0
    start = max(request.from_offset, meta.first_offset)
    for offset, publish_ms, _, message in view.topic_log().messages(request.topic, start):
        if len(response.messages) >= limit or (
                response.messages and size_bytes + len(message) > limits.TOPIC_READ_BYTES_MAX):
            response.more = True
            break
        response.messages.add(offset=offset, message=message, publish_ms=publish_ms)
        size_bytes += len(message)
    return response


OPS = {topics_pb2.TopicPublishRequest: publish}
READERS = {topics_pb2.TopicReadRequest: read}
