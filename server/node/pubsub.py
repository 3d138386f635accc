"""The best-effort pub/sub half of the `Node` API, `node.pubsub`: publish to
a topic, subscribe to topics and prefixes, on this node's `PubSubPlane`
(server/available/pubsub_plane.py), which relays each message once to
every other member. Durable topics (ordered through Raft, replayable from
an offset) are `node.topics` (topics.py).

The plane runs on the node's event loop (`node.loop`) and is not
thread-safe, so every call here runs there: from another thread a call
waits for the loop's answer (microseconds: nothing here waits on Raft or
on a peer); from asyncio code on another loop the `*_async` forms wait
holding no thread; on the node's loop itself they run at once.

A subscription is iterable both ways: `for event in sub` in a thread (each
`next` waits at most TOPIC_WAIT_SLICE_S at a time on the loop, so `close`
from another thread ends it), `async for event in sub` in asyncio. Events
are `Message` (topic, payload, publisher, seq) and `Lagged(missed)` where
the subscriber's bounded buffer dropped the oldest: never a silent gap.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import TYPE_CHECKING, AsyncIterator, Iterator

from tandemkv.errors import Unavailable
from tandemkv.server.available.pubsub import Lagged, Message, PublisherId
from tandemkv.server.available.pubsub_plane import PubSubPlane, Subscription
from tandemkv.server.node.event_loop import NodeLoop

if TYPE_CHECKING:
    from tandemkv.server.node.node import Node

# Longest one wait of a thread reading a subscription before it looks at
# whether the subscription was closed.
SUBSCRIPTION_WAIT_SLICE_S = 0.5

Event = Message | Lagged

__all__ = ["Event", "Lagged", "Message", "NodePubSub", "NodeSubscription", "PublishReceipt", "PublisherId"]


@dataclasses.dataclass(frozen=True)
class PublishReceipt:
    """What a publish did here: the message as stamped (its publisher id and
    per-topic `seq` let a subscriber count a gap) and the local subscribers
    it was buffered for. Peers are reached later (best effort)."""

    message: Message
    delivered_locally: int


class NodeSubscription:
    """One subscriber on this node; close it when done (its buffer goes)."""

    def __init__(self, loop: NodeLoop, subscription: Subscription):
        self._loop = loop
        self._subscription = subscription
        self._pending: collections.deque[Event] = collections.deque()
        self.id = subscription.id

    @property
    def closed(self) -> bool:
        return self._subscription.closed

    def add(self, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> None:
        self._loop.call(self._subscription.add, tuple(topics), tuple(prefixes))

    def remove(self, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> None:
        self._loop.call(self._subscription.remove, tuple(topics), tuple(prefixes))

    def poll(self, timeout_s: float | None = None) -> list[Event]:
        """The events waiting now, oldest first, after waiting up to
        `timeout_s` for one (None: until there is one or it closes); []
        when the wait ran out or the subscription is closed."""
        if self._pending or self._ended():
            return self._take_pending()
        return self._loop.run(self._subscription.next_events(timeout_s=timeout_s))

    async def poll_async(self, timeout_s: float | None = None) -> list[Event]:
        if self._pending or self._ended():
            return self._take_pending()
        return await self._loop.run_async(self._subscription.next_events(timeout_s=timeout_s))

    def _ended(self) -> bool:
        return self.closed or self._loop.closed

    def _take_pending(self) -> list[Event]:
        events = list(self._pending)
        self._pending.clear()
        return events

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        while not self._pending:
            if self._ended():
                raise StopIteration
            self._pending.extend(self._loop.run(
                self._subscription.next_events(timeout_s=SUBSCRIPTION_WAIT_SLICE_S)))
        return self._pending.popleft()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while not self._pending:
            if self._ended():
                raise StopAsyncIteration
            # No slice needed: close() wakes the wait on the loop.
            self._pending.extend(await self._loop.run_async(self._subscription.next_events()))
        return self._pending.popleft()

    def close(self) -> None:
        """Ends the subscription; a reader waiting on it returns."""
        if not self._loop.closed:
            self._loop.call(self._subscription.close)

    def __enter__(self) -> NodeSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class NodePubSub:
    def __init__(self, node: Node):
        self._node = node

    def publish(self, topic: bytes, message: bytes, *, local_only: bool = False) -> PublishReceipt:
        """Buffers `message` for every subscriber of `topic` on this node,
        and unless `local_only` sends it once to each other member, whose
        subscribers get it in this node's publish order. Returns at once:
        a peer that is down or cut off misses it (each subscriber there can
        count the gap from `seq`). `InvalidArgument` for an empty or
        oversized topic or payload (PUBSUB_TOPIC_BYTES_MAX,
        PUBSUB_MESSAGE_BYTES_MAX), `Unavailable` while the node is not
        running."""
        loop, plane = self._parts()
        return loop.call(_publish, plane, topic, message, None, local_only)

    async def publish_async(self, topic: bytes, message: bytes, *, local_only: bool = False) -> PublishReceipt:
        loop, plane = self._parts()
        return await loop.call_async(_publish, plane, topic, message, None, local_only)

    def publish_from(self, subscription: NodeSubscription, topic: bytes, message: bytes, *,
                     local_only: bool = False) -> PublishReceipt:
        """`publish`, except that `subscription` (the sender's own) does not
        get the message, as Phoenix's broadcast_from."""
        loop, plane = self._parts()
        return loop.call(_publish, plane, topic, message, subscription.id, local_only)

    async def publish_from_async(self, subscription: NodeSubscription, topic: bytes, message: bytes, *,
                                 local_only: bool = False) -> PublishReceipt:
        loop, plane = self._parts()
        return await loop.call_async(_publish, plane, topic, message, subscription.id, local_only)

    def subscribe(self, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> NodeSubscription:
        """A subscriber to `topics` and to every topic starting with one of
        `prefixes`, from now on (best effort has no history). Its buffer
        holds PUBSUB_SUBSCRIBER_BUFFER_MESSAGES_MAX events (and _BYTES_MAX); past it the
        oldest go and the reader gets `Lagged(missed)` in their place.
        `ResourceExhausted` when the node has PUBSUB_SUBSCRIBERS_MAX."""
        loop, plane = self._parts()
        return NodeSubscription(loop, loop.call(plane.subscribe, tuple(topics), tuple(prefixes)))

    async def subscribe_async(self, topics: tuple[bytes, ...] = (),
                              prefixes: tuple[bytes, ...] = ()) -> NodeSubscription:
        loop, plane = self._parts()
        return NodeSubscription(loop, await loop.call_async(plane.subscribe, tuple(topics), tuple(prefixes)))

    def status(self) -> dict[str, object]:
        """The plane's counters: subscribers, buffered events, and per peer
        the relay's queue, drops and connection state."""
        loop, plane = self._parts()
        return loop.call(plane.status)

    def _parts(self) -> tuple[NodeLoop, PubSubPlane]:
        loop, plane = self._node.loop, self._node.pubsub_plane
        if loop is None or plane is None or loop.closed:
            raise Unavailable(f"node {self._node.config.name} is not running: pub/sub starts with node.start()")
        return loop, plane


def _publish(plane: PubSubPlane, topic: bytes, message: bytes, skip: int | None,
             local_only: bool) -> PublishReceipt:
    published = plane.publish(topic, message, skip=skip, local_only=local_only)
    return PublishReceipt(published.message, published.delivered)
