"""`Hub`: one node's best-effort pub/sub, without I/O. It holds the node's
subscribers (their topics and prefixes, their bounded buffers) and its
publishers' sequence numbers; the running part (pubsub_plane.py) wakes
readers and carries messages to peers.

    hub = Hub("n1", incarnation)                 # incarnation: drawn at each start
    me = hub.open_publisher()
    sub = hub.subscribe(topics=(b"room:1",), prefixes=(b"user:",))
    done = hub.publish(me, b"room:1", b"hi")     # stamped, buffered for each match
    for reader in done.readable: wake(reader)    # had nothing to read before
    hub.take(sub, 100)                           # [Lagged(n)?, Message, ...]
    hub.deliver(message_from_a_peer)             # stamped elsewhere; local delivery only

A message is buffered once per matching subscriber, the same object for
all, so a message to many subscribers costs its bytes once. Each
subscriber sees one publisher's messages in the order the hub was given
them: buffers are FIFO and only ever drop from the head (buffer.py).

`skip` (publish_from) leaves one subscriber out, the sender's own: that
subscriber sees its own publisher's numbers jump, as it should (it sent
those). Local-only messages are numbered in a session of their own, so the
peers, who never see them, see no hole in the publisher's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from tandemkv import limits
from tandemkv.errors import NotFound, ResourceExhausted

from tandemkv.server.available.pubsub.buffer import SubscriberBuffer
from tandemkv.server.available.pubsub.index import SubscriptionIndex
from tandemkv.server.available.pubsub.messages import (Lagged, Message, PublisherId, check_payload,
                                                       check_topic)


@dataclass(frozen=True, slots=True)
class Published:
    """What a publish or a delivery did on this node."""

    message: Message
    # Local subscribers the message was buffered for.
    delivered: int
    # Those of them that had nothing to read before it: wake their readers.
    readable: tuple[int, ...]


class Publisher:
    """A publisher session: stamps each message with the next number of its
    topic. Past `topics_max` distinct topics it goes on as a new session (a
    new publisher id, numbers from 1), so its counters stay bounded; its
    messages keep their order, since one node hands them on in order."""

    def __init__(self, hub: Hub, session: int, topics_max: int):
        self._hub = hub
        self._topics_max = topics_max
        self.id = PublisherId(hub.node, hub.incarnation, session)
        self._last_seq: dict[bytes, int] = {}
        self._local_only: Publisher | None = None

    def stamp(self, topic: bytes, payload: bytes) -> Message:
        seq = self._last_seq.get(topic)
        if seq is None and len(self._last_seq) >= self._topics_max:
            self.id = PublisherId(self.id.node, self.id.incarnation, self._hub.new_session())
            self._last_seq.clear()
        seq = self._last_seq.get(topic, 0) + 1
        self._last_seq[topic] = seq
        return Message(topic, payload, self.id, seq)

    @property
    def local_only(self) -> Publisher:
        """The session that numbers this publisher's local-only messages."""
        if self._local_only is None:
            self._local_only = Publisher(self._hub, self._hub.new_session(), self._topics_max)
        return self._local_only


class Hub:
    def __init__(self, node: str, incarnation: int, *,
                 buffer_messages_max: int = limits.PUBSUB_SUBSCRIBER_BUFFER_MESSAGES_MAX,
                 buffer_bytes_max: int = limits.PUBSUB_SUBSCRIBER_BUFFER_BYTES_MAX,
                 subscribers_max: int = limits.PUBSUB_SUBSCRIBERS_MAX,
                 subscriptions_max: int = limits.PUBSUB_SUBSCRIPTIONS_MAX,
                 publisher_topics_max: int = limits.PUBSUB_PUBLISHER_TOPICS_MAX):
        assert 0 <= incarnation < 1 << 64, incarnation
        self.node = node
        self.incarnation = incarnation
        self._index = SubscriptionIndex(subscriptions_max)
        self._buffers: dict[int, SubscriberBuffer] = {}
        self._buffer_bounds = (buffer_messages_max, buffer_bytes_max)
        self._subscribers_max = subscribers_max
        self._publisher_topics_max = publisher_topics_max
        self._last_subscriber = 0
        self._last_session = 0
        self.published_total = 0
        self.received_total = 0
        self._missed_by_gone = 0

    # --- publishers ---------------------------------------------------------

    def new_session(self) -> int:
        self._last_session += 1
        return self._last_session

    def open_publisher(self) -> Publisher:
        return Publisher(self, self.new_session(), self._publisher_topics_max)

    def publish(self, publisher: Publisher, topic: bytes, payload: bytes, *, skip: int | None = None,
                local_only: bool = False) -> Published:
        """Stamps a message of `publisher` and buffers it for every local
        subscriber of `topic` but `skip`. The caller relays
        `Published.message` to the peers unless `local_only`."""
        check_topic(topic)
        check_payload(payload)
        assert publisher._hub is self, "a publisher publishes on the hub that opened it"
        stamper = publisher.local_only if local_only else publisher
        self.published_total += 1
        return self._buffer(stamper.stamp(topic, payload), skip)

    def deliver(self, message: Message) -> Published:
        """Buffers a message stamped on another node (a peer relayed it) for
        every local subscriber of its topic."""
        self.received_total += 1
        return self._buffer(message, None)

    def _buffer(self, message: Message, skip: int | None) -> Published:
        readable = []
        delivered = 0
        for subscriber in self._index.match(message.topic):
            if subscriber == skip:
                continue
            delivered += 1
            if self._buffers[subscriber].push(message):
                readable.append(subscriber)
        return Published(message, delivered, tuple(readable))

    # --- subscribers --------------------------------------------------------

    def subscribe(self, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> int:
        """A new subscriber holding `topics` and `prefixes`; its id."""
        if len(self._buffers) >= self._subscribers_max:
            raise ResourceExhausted(f"this node has {len(self._buffers)} subscribers, the most it takes "
                                    "(PUBSUB_SUBSCRIBERS_MAX): subscribe on another node")
        topics, prefixes = self._checked(topics, prefixes)
        self._last_subscriber += 1
        subscriber = self._last_subscriber
        self._index.add_subscriber(subscriber)
        try:
            self._index.add(subscriber, topics, prefixes)
        except Exception:
            self._index.remove_subscriber(subscriber)
            raise
        self._buffers[subscriber] = SubscriberBuffer(*self._buffer_bounds)
        return subscriber

    def add(self, subscriber: int, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> None:
        self._index.add(subscriber, *self._checked(topics, prefixes))

    def remove(self, subscriber: int, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> None:
        self._index.remove(subscriber, *self._checked(topics, prefixes))

    def unsubscribe(self, subscriber: int) -> None:
        """Ends a subscriber; what it had not taken goes with it."""
        self._index.remove_subscriber(subscriber)
        self._missed_by_gone += self._buffers.pop(subscriber).missed_total

    def take(self, subscriber: int, messages_max: int, bytes_max: int | None = None) -> list[Message | Lagged]:
        return self._buffer_of(subscriber).take(messages_max, bytes_max)

    def readable(self, subscriber: int) -> bool:
        return self._buffer_of(subscriber).readable

    def topics_of(self, subscriber: int) -> tuple[frozenset[bytes], frozenset[bytes]]:
        return self._index.topics_of(subscriber)

    def status(self) -> dict[str, int]:
        buffers = self._buffers.values()
        return {
            "subscribers": len(self._buffers),
            "subscriptions": self._index.subscriptions,
            "published": self.published_total,
            "received_from_peers": self.received_total,
            "buffered_messages": sum(len(buffer) for buffer in buffers),
            "buffered_bytes": sum(buffer.buffered_bytes for buffer in buffers),
            "missed_by_slow_subscribers": self._missed_by_gone + sum(buffer.missed_total for buffer in buffers),
        }

    def _buffer_of(self, subscriber: int) -> SubscriberBuffer:
        buffer = self._buffers.get(subscriber)
        if buffer is None:
            raise NotFound(f"no subscriber {subscriber} on this node: it ended, or never began")
        return buffer

    @staticmethod
    def _checked(topics, prefixes) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        return (tuple(check_topic(topic) for topic in topics),
                tuple(check_topic(prefix, "prefix") for prefix in prefixes))
