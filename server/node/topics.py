"""The durable-topics half of the `Node` API, `node.topics`: publish to a
topic's log through Raft, read it from an offset, and subscribe from an
offset (a generator, or an async iterator that holds no thread).

A publish is a write like any other (`node.propose`): linearizable, exactly
once by request id, acknowledged once the entry is durable on a majority;
it returns the message's offset. A read is a read like any other
(`node.query`, linearizable by default). The model, offsets, retention and
gaps are the pure core's (tandemkv.server.strong.topics); this file only
waits.

Subscriptions read this node's applied state (as a stale read does) from
their offset, a page at a time (TOPIC_READ_MESSAGES_MAX messages,
TOPIC_READ_BYTES_MAX bytes), and wait for news between pages. The page is
the subscription's whole buffer: a subscriber that falls behind holds no
more than it, and simply reads on from its offset later, since the log
keeps the messages, not the subscription. If retention dropped messages
before the subscriber read them, it is told with a `TopicGap` before the
next message; nothing is skipped silently.

What wakes a waiting subscription is the topic hub: one thread per node
(started with the first subscription) reads which topics each applied
entry published to (the log's recent-publishes table) and wakes only their
subscribers, through a threading.Event's `set` or a `LoopWaker`
(watch_hub.py) for asyncio readers; so a waiting subscription costs memory,
not a thread, and a publish costs the hub one wake-up per subscriber of
its topic.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import threading
from typing import TYPE_CHECKING, AsyncIterator, Callable, Iterator

from tandemkv import limits
from tandemkv.errors import ResourceExhausted
from tandemkv.server.node.watch_hub import LoopWaker
from tandemkv.server.strong import topics as core
from tandemkv.v1 import kv_pb2, topics_pb2
from tandemkv.v1.topics_pb2 import TopicMessage

if TYPE_CHECKING:
    from tandemkv.server.node.node import Node

LINEARIZABLE = kv_pb2.LINEARIZABLE
# Longest one wait of a subscriber or of the hub thread before it looks at
# its stop flags again.
TOPIC_WAIT_SLICE_S = 0.5
# Revisions the hub may fall behind before it wakes every subscriber rather
# than trust the recent-publishes table (which keeps TOPIC_CHANGES_REVISIONS_MAX).
_HUB_LAG_REVISIONS_MAX = limits.TOPIC_CHANGES_REVISIONS_MAX // 2

# An offset no message reaches (offsets are Raft indexes at most).
_PAST_EVERY_OFFSET = 2**63


@dataclasses.dataclass(frozen=True)
class TopicGap:
    """Messages from `from_offset` up to `first_offset` are gone before this
    subscriber read them (retention dropped them, or the topic emptied and
    was forgotten meanwhile); the next message is at `first_offset` or
    later. At most `first_offset - from_offset` messages were missed: that
    many exactly while the topic was not forgotten in between."""

    from_offset: int
    first_offset: int


class TopicHub:
    """Which subscriptions wait on which topic, and the thread that wakes
    them when an applied entry published to it."""

    def __init__(self, node: "Node", head: int):
        self._node = node
        self.lock = threading.Lock()
        self.head = head
        self._waiting: dict[bytes, set[Callable[[], None]]] = collections.defaultdict(set)
        self.count = 0

    def add(self, topic: bytes, wake: Callable[[], None]) -> None:
        with self.lock:
            if self.count >= limits.TOPIC_SUBSCRIPTIONS_MAX:
                raise ResourceExhausted(
                    f"this node already serves TOPIC_SUBSCRIPTIONS_MAX={limits.TOPIC_SUBSCRIPTIONS_MAX} "
                    "topic subscriptions; close some or subscribe through another node")
            self._waiting[topic].add(wake)
            self.count += 1

    def remove(self, topic: bytes, wake: Callable[[], None]) -> None:
        with self.lock:
            waiting = self._waiting.get(topic)
            if waiting is None or wake not in waiting:
                return
            waiting.discard(wake)
            self.count -= 1
            if not waiting:
                del self._waiting[topic]

    def _moved_since_head(self, state) -> tuple[int, bool, set[bytes]]:
        """The last applied revision, whether every subscriber must look
        (the hub fell too far behind), and the topics published to since
        the hub's head."""
        moved: set[bytes] = set()
        with state.read_view() as view:
            head = view.last_applied()
            everyone = head - self.head > _HUB_LAG_REVISIONS_MAX
            if head > self.head and self.count and not everyone:
                for revision, topic in view.topic_log().changes(self.head + 1):
                    if revision > head:
                        break
                    moved.add(topic)
        return head, everyone, moved

    def run(self) -> None:
        """The hub thread: after each applied batch, wakes the subscribers
        of the topics it published to."""
        node = self._node
        while not node._stopping.is_set():
            try:
                node._wait_applied_after(self.head, TOPIC_WAIT_SLICE_S)
                state = node._state
                if state is None or node._stopping.is_set():
                    return
                head, everyone, moved = self._moved_since_head(state)
            except Exception:
                if node._stopping.is_set():
                    return  # the store closed under the read: the node is stopping
                raise
            if head <= self.head:
                continue
            with self.lock:
                self.head = head
                if everyone:
                    wakes = [w for waiting in self._waiting.values() for w in waiting]
                else:
                    wakes = [w for topic in moved for w in self._waiting.get(topic, ())]
            for wake in wakes:
                wake()


class _Cursor:
    """A subscription's place in its topic: the offset to read next, and
    whether a hole before the first retained offset is news to its reader."""

    def __init__(self, topic: bytes, from_offset: int | None):
        self.topic = topic
        self.position = from_offset
        # From the first retained (from_offset 0) or the next (None) message
        # nothing is owed yet; from an offset given, everything from it is.
        self.owed = bool(from_offset)

    def request(self) -> topics_pb2.TopicReadRequest:
        if self.position is None:
            # Placed at the next message: where the topic stands, after
            # every publish acknowledged before the subscription began (a
            # linearizable read, so a lagging node does not replay them).
            return topics_pb2.TopicReadRequest(topic=self.topic, from_offset=_PAST_EVERY_OFFSET,
                                               consistency=kv_pb2.LINEARIZABLE)
        return topics_pb2.TopicReadRequest(topic=self.topic, from_offset=self.position,
                                           consistency=kv_pb2.STALE)

    def events(self, page: topics_pb2.TopicReadResponse) -> list:
        """The page's gap notice and messages, in order; moves the cursor."""
        if self.position is None:  # from the next message on
            self.position = page.next_offset
            # What a held topic publishes next is owed; an absent one's
            # next life may begin anywhere past this position.
            self.owed = page.first_offset != page.next_offset
            return []
        events: list = []
        if self.position == 0:
            self.position = page.first_offset
        if self.position < page.first_offset:
            # A topic that was absent when this cursor was placed and has
            # lost nothing of its new life owes no gap.
            fresh = not self.owed and self.position <= page.base_offset == page.first_offset
            if not fresh:
                events.append(TopicGap(self.position, page.first_offset))
            self.position = page.first_offset
        for message in page.messages:
            if message.offset >= self.position:
                events.append(message)
                self.position = message.offset + 1
                self.owed = True
        return events


class NodeTopics:
    """`node.topics`: publish, read and subscribe to durable topics."""

    def __init__(self, node: "Node"):
        self._node = node
        self._hub: TopicHub | None = None
        self._hub_lock = threading.Lock()

    # -- writes and reads --
    def publish(self, topic: bytes, message: bytes, *, retain_messages: int = 0, retain_ms: int = 0,
                request_id: bytes | None = None, timeout_s: float | None = None
                ) -> topics_pb2.TopicPublishResponse:
        """Appends `message` to `topic`'s log; returns its offset. Retention
        (0: the topic's setting, the defaults for a new topic) applies from
        this publish on. Raises InvalidArgument (limits), Unavailable (not
        applied: retry), OutcomeUnknown (retry with its request id)."""
        return self._node.propose(_publish_request(topic, message, retain_messages, retain_ms, request_id),
                                  timeout_s=timeout_s)

    async def publish_async(self, topic: bytes, message: bytes, *, retain_messages: int = 0,
                            retain_ms: int = 0, request_id: bytes | None = None,
                            timeout_s: float | None = None) -> topics_pb2.TopicPublishResponse:
        request = _publish_request(topic, message, retain_messages, retain_ms, request_id)
        return await self._node.propose_async(request, timeout_s=timeout_s)

    def read(self, topic: bytes, from_offset: int = 0, *, limit: int = 0,
             consistency: int = LINEARIZABLE, timeout_s: float | None = None
             ) -> topics_pb2.TopicReadResponse:
        """Retained messages from `from_offset` (0: the first retained) on;
        `first_offset` above `from_offset` means the ones between are gone."""
        request = topics_pb2.TopicReadRequest(topic=topic, from_offset=from_offset, limit=limit,
                                              consistency=consistency)
        return self._node.query(request, timeout_s=timeout_s)

    async def read_async(self, topic: bytes, from_offset: int = 0, *, limit: int = 0,
                         consistency: int = LINEARIZABLE, timeout_s: float | None = None
                         ) -> topics_pb2.TopicReadResponse:
        request = topics_pb2.TopicReadRequest(topic=topic, from_offset=from_offset, limit=limit,
                                              consistency=consistency)
        return await self._node.query_async(request, timeout_s=timeout_s)

    # -- subscriptions --
    def subscribe(self, topic: bytes, from_offset: int | None = None,
                  stop: threading.Event | None = None) -> Iterator[TopicMessage | TopicGap]:
        """Messages of `topic` in offset order from `from_offset` (0: the
        first retained; None: the first published after this call, which
        needs a quorum), with a `TopicGap` wherever retention dropped
        messages first; until `stop` is set or the node stops. Pages after
        the first are read from this node's applied state. Resume after a
        reconnect with the last offset + 1."""
        core.check_topic(topic)
        cursor = _Cursor(topic, from_offset)
        woken = threading.Event()
        hub = self._topic_hub()
        hub.add(topic, woken.set)
        try:
            while not self._node._stopped(stop):
                woken.clear()
                page = self._node.query(cursor.request())
                yield from cursor.events(page)
                if not page.more:
                    woken.wait(TOPIC_WAIT_SLICE_S)
        finally:
            hub.remove(topic, woken.set)

    async def subscribe_async(self, topic: bytes, from_offset: int | None = None
                              ) -> AsyncIterator[TopicMessage | TopicGap]:
        """`subscribe` for asyncio: waits on the event loop, holds no thread;
        ends when the node stops or the caller stops iterating."""
        core.check_topic(topic)
        cursor = _Cursor(topic, from_offset)
        woken = asyncio.Event()
        wake = LoopWaker(asyncio.get_running_loop()).waker_for(woken)
        hub = self._topic_hub()
        hub.add(topic, wake)
        try:
            while not self._node._stopping.is_set():
                woken.clear()
                page = await self._node.query_async(cursor.request())
                for event in cursor.events(page):
                    yield event
                if not page.more:
                    try:
                        await asyncio.wait_for(woken.wait(), TOPIC_WAIT_SLICE_S)
                    except TimeoutError:
                        pass
        finally:
            hub.remove(topic, wake)

    def _topic_hub(self) -> TopicHub:
        with self._hub_lock:
            if self._hub is None:
                self._hub = TopicHub(self._node, self._node._applied_index())
                threading.Thread(target=self._hub.run, name="topic-hub", daemon=True).start()
            return self._hub


def _publish_request(topic: bytes, message: bytes, retain_messages: int, retain_ms: int,
                     request_id: bytes | None) -> topics_pb2.TopicPublishRequest:
    return topics_pb2.TopicPublishRequest(topic=topic, message=message, retain_messages=retain_messages,
                                          retain_ms=retain_ms, request_id=request_id or b"")
