"""What pub/sub moves: topics, publisher ids, messages and lag notices, and
the checks a topic or a message passes before anything holds it.

A message is stamped once, by the node its publisher is on, with the
publisher's id and a sequence number that counts that publisher's messages
on that topic from 1. Every copy of the message (one per subscriber, one
per peer node) carries the same stamp, so any receiver can tell a gap
(`GapCounter`, gaps.py) and how long it is, without asking anyone.

Topics are bytes (the SDK encodes text as UTF-8); prefix subscriptions
compare bytes. This module knows no I/O, no clock and no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

from tandemkv import limits
from tandemkv.errors import InvalidArgument

# Bytes a buffered message is counted at beyond its topic and payload: the
# stamp, the object and its place in a deque. Buffers and relay frames count
# with it, so many empty messages still fill a bytes bound.
MESSAGE_OVERHEAD_BYTES = 96


@dataclass(frozen=True, slots=True)
class PublisherId:
    """Who published: a node (its name and the incarnation it runs as, a
    number drawn at each start) and a session on it. A new incarnation or
    session is a new publisher: its sequence numbers start over at 1."""

    node: str
    incarnation: int
    session: int


@dataclass(frozen=True, slots=True)
class Message:
    """One published message as every subscriber and peer sees it. `seq`
    counts `publisher`'s messages on `topic`, from 1, with no holes at the
    source: a hole a receiver sees is a loss on the way."""

    topic: bytes
    payload: bytes
    publisher: PublisherId
    seq: int

    @property
    def counted_bytes(self) -> int:
        """What the message counts for against a bytes bound."""
        return len(self.topic) + len(self.payload) + MESSAGE_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class Lagged:
    """In a subscriber's stream, in place of `missed` messages it was too
    slow to take: its buffer was full, and they went (the oldest first)."""

    missed: int


def check_topic(topic: bytes, what: str = "topic") -> bytes:
    """`topic` if it is bytes within PUBSUB_TOPIC_BYTES_MAX; else
    InvalidArgument saying what to fix. A topic must not be empty; a prefix
    (`what="prefix"`) may be (it matches every topic)."""
    if not isinstance(topic, bytes):
        raise InvalidArgument(f"a {what} is bytes, not {type(topic).__name__}: encode text as UTF-8")
    if len(topic) > limits.PUBSUB_TOPIC_BYTES_MAX:
        raise InvalidArgument(f"a {what} is at most {limits.PUBSUB_TOPIC_BYTES_MAX} bytes, this one is "
                              f"{len(topic)}: use a shorter name", limit="PUBSUB_TOPIC_BYTES_MAX")
    if what == "topic" and not topic:
        raise InvalidArgument("a topic must not be empty: name what the message is about")
    return topic


def check_payload(payload: bytes) -> bytes:
    """`payload` if it is bytes within PUBSUB_MESSAGE_BYTES_MAX; else
    InvalidArgument saying what to fix."""
    if not isinstance(payload, bytes):
        raise InvalidArgument(f"a message is bytes, not {type(payload).__name__}: encode it first")
    if len(payload) > limits.PUBSUB_MESSAGE_BYTES_MAX:
        raise InvalidArgument(f"a message is at most {limits.PUBSUB_MESSAGE_BYTES_MAX} bytes, this one is "
                              f"{len(payload)}: send a reference to the data (a key) instead of the data",
                              limit="PUBSUB_MESSAGE_BYTES_MAX")
    return payload


def check_publisher(publisher: PublisherId) -> PublisherId:
    """`publisher` if its node name fits PUBSUB_NODE_NAME_BYTES_MAX and its
    numbers are unsigned 64-bit; else InvalidArgument (a peer's frame that
    carries such an id is refused whole)."""
    if len(publisher.node.encode()) > limits.PUBSUB_NODE_NAME_BYTES_MAX or not publisher.node:
        raise InvalidArgument(f"a publisher's node name is 1 to {limits.PUBSUB_NODE_NAME_BYTES_MAX} bytes",
                              limit="PUBSUB_NODE_NAME_BYTES_MAX")
    for number in (publisher.incarnation, publisher.session):
        if not 0 <= number < 1 << 64:
            raise InvalidArgument("a publisher's incarnation and session are unsigned 64-bit numbers")
    return publisher


# A message can always enter an empty buffer and an empty relay frame.
assert limits.PUBSUB_MESSAGE_BYTES_MAX + limits.PUBSUB_TOPIC_BYTES_MAX + MESSAGE_OVERHEAD_BYTES \
    <= min(limits.PUBSUB_SUBSCRIBER_BUFFER_BYTES_MAX, limits.PUBSUB_RELAY_FRAME_BYTES_MAX,
           limits.PUBSUB_RELAY_QUEUE_BYTES_MAX)
