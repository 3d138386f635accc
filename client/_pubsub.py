"""Pub/sub in the SDK: `client.pubsub` (`PubSub`) and its `Subscription`,
with asyncio twins in `_pubsub_async`; the requests, answers and events
both share are built here.

Semantics (best-effort, the available plane; docs/pubsub.md): a publish
goes to one node (the first endpoint that answers, kept while it answers),
which hands the message to its own subscribers and once to every other
node; it never waits on Raft, so it works without a quorum and on both
sides of a partition. Every subscriber of the topic, or of a prefix of it,
on every reachable node receives it. Each subscriber sees one publisher's
messages in the order published (a publisher is one node's unary calls,
in the order that node takes them). There is no history: a subscription
receives what is published after it opened.

Failure modes: delivery is at most once, and never silently short. A
subscriber that reads too slowly for its bounded buffer
(PUBSUB_SUBSCRIBER_BUFFER_MESSAGES_MAX / _BYTES_MAX on the node) gets a
`Lagged(missed)` event where the oldest messages went. A loss between
nodes (a peer's full queue, a broken connection) shows as a jump in a
publisher's `seq` on a topic. A publish that fails with UNAVAILABLE was
not taken and is retried on the next endpoint; one whose outcome is
unknown (a deadline, a lost connection) raises `OutcomeUnknown` and is
not sent again, since a retry could deliver it twice. A subscription whose
node goes away ends with `Unavailable`: open another (messages published
meanwhile are not replayed). `DURABLE` delivery is not served here yet.
"""

from __future__ import annotations

import dataclasses
import queue
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Union

import grpc

from tandemkv import errors
from tandemkv.client import _operations as ops
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.client._retry import error_from_rpc
from tandemkv.v1 import pubsub_pb2

if TYPE_CHECKING:
    from tandemkv.client._sync import Client

# Longest a publish_from waits for its node (it goes to one node only).
PUBLISH_FROM_TIMEOUT_S = 10.0
_END = None  # closes a subscription's request stream


@dataclasses.dataclass(frozen=True)
class Publisher:
    """Who published a message: a node, the incarnation it runs as (drawn at
    each start) and a session on it. A new publisher numbers from 1."""

    node: str
    incarnation: int
    session: int


@dataclasses.dataclass(frozen=True)
class Message:
    """A message a subscription received. `seq` counts `publisher`'s
    messages on `topic` from 1: a jump is a loss between nodes."""

    topic: bytes
    payload: bytes
    publisher: Publisher
    seq: int


@dataclasses.dataclass(frozen=True)
class Lagged:
    """In place of `missed` messages that this subscription read too slowly
    to keep (its buffer on the node was full; the oldest went)."""

    missed: int


Event = Union[Message, Lagged]


@dataclasses.dataclass(frozen=True)
class Published:
    """What a publish did: the node that took it, the stamp it got, and how
    many subscribers on that node it was buffered for."""

    node: str
    publisher: Publisher
    seq: int
    delivered_locally: int


def _publisher(proto: pubsub_pb2.PublisherId) -> Publisher:
    return Publisher(proto.node, proto.incarnation, proto.session)


def _published(response: pubsub_pb2.PublishResponse) -> Published:
    return Published(response.header.node, _publisher(response.publisher), response.seq,
                     response.delivered_locally)


def publish_request(topic: BytesLike, message: BytesLike, local: bool = False,
                    skip_subscription: int = 0) -> pubsub_pb2.PublishRequest:
    return pubsub_pb2.PublishRequest(topic=to_bytes(topic, "topic"), payload=to_bytes(message, "message"),
                                     local_only=local, skip_subscription=skip_subscription)


def publish(topic: BytesLike, message: BytesLike, local: bool = False) -> ops.Operation:
    """A publish as an `Operation`: any node takes it, no leader; not sent
    again once its outcome is unknown (at most once)."""
    return ops.Operation("PubSub", "Publish", publish_request(topic, message, local), _published,
                         write=True, local=True, idempotent=False)


def topic_list(topics: Iterable[BytesLike] | BytesLike, what: str) -> list[bytes]:
    """Topics (or prefixes) as bytes; one str or bytes is one topic."""
    if isinstance(topics, (str, bytes, bytearray, memoryview)):
        topics = [topics]
    return [to_bytes(topic, what) for topic in topics]


def subscribe_request(topics: Iterable[BytesLike] | BytesLike = (), prefixes: Iterable[BytesLike] | BytesLike = (),
                      *, remove: bool = False) -> pubsub_pb2.SubscribeRequest:
    topic_bytes, prefix_bytes = topic_list(topics, "topic"), topic_list(prefixes, "prefix")
    if remove:
        return pubsub_pb2.SubscribeRequest(remove_topics=topic_bytes, remove_prefixes=prefix_bytes)
    return pubsub_pb2.SubscribeRequest(add_topics=topic_bytes, add_prefixes=prefix_bytes)


def events_of(response: pubsub_pb2.SubscribeResponse) -> list[Event]:
    events: list[Event] = []
    for event in response.events:
        if event.WhichOneof("kind") == "lagged":
            events.append(Lagged(event.lagged))
        else:
            m = event.message
            events.append(Message(m.topic, m.payload, _publisher(m.publisher), m.seq))
    return events


def stream_error(error: grpc.RpcError, endpoint: str, closed: bool) -> errors.TandemKVError | None:
    """What a broken subscription raises (None: the user closed it)."""
    if closed:
        return None
    if error.code() == grpc.StatusCode.CANCELLED:
        return errors.Unavailable(f"{endpoint} ended the subscription (stopping?): subscribe again")
    return error_from_rpc(error, b"")


def opening_failed(error: grpc.RpcError) -> errors.TandemKVError:
    """An error opening a subscription; Unavailable: try the next node."""
    return error_from_rpc(error, b"")


class Subscription:
    """An open subscription on one node: iterate it for `Message` and
    `Lagged` events, in order. `id` names it on `node` (for
    `publish_from`). Change what it holds with `add` and `remove`; `close`
    it (or use `with`) when done. Iteration ends after `close`; it raises
    `Unavailable` (or the node's error) when the stream breaks."""

    def __init__(self, client: Client, topics: Any, prefixes: Any):
        first_request = subscribe_request(topics, prefixes)
        self._pending: list[Event] = []
        self.closed = False
        self.lagged_total = 0
        failure: errors.TandemKVError | None = None
        for endpoint in client._local.order():
            self._requests: queue.SimpleQueue = queue.SimpleQueue()
            self._requests.put(first_request)
            call = client.stub("PubSub", endpoint).Subscribe(iter(self._requests.get, _END))
            try:
                first = next(call)
            except grpc.RpcError as error:
                self._requests.put(_END)  # ends the thread that sends the requests
                failure = opening_failed(error)
                if isinstance(failure, (errors.Unavailable, errors.OutcomeUnknown)):
                    continue  # that node is down: the next one
                raise failure from None
            self._call, self.endpoint = call, endpoint
            self.id, self.node = first.subscription_id, first.header.node
            client._local.answered(endpoint)
            return
        assert failure is not None
        raise failure

    def add(self, topics: Any = (), prefixes: Any = ()) -> None:
        """Adds topics and prefixes (one str or bytes is one); a refused one
        (over PUBSUB_TOPIC_BYTES_MAX, say) ends the subscription with
        `InvalidArgument` at the next read."""
        self._requests.put(subscribe_request(topics, prefixes))

    def remove(self, topics: Any = (), prefixes: Any = ()) -> None:
        self._requests.put(subscribe_request(topics, prefixes, remove=True))

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        while not self._pending:
            try:
                response = next(self._call)
            except StopIteration:
                self._requests.put(_END)
                if self.closed:
                    raise
                raise errors.Unavailable(f"{self.endpoint} ended the subscription (stopping?): subscribe again") \
                    from None
            except grpc.RpcError as error:
                self._requests.put(_END)
                failure = stream_error(error, self.endpoint, self.closed)
                if failure is None:
                    raise StopIteration from None
                raise failure from None
            self._pending = events_of(response)
        event = self._pending.pop(0)
        if isinstance(event, Lagged):
            self.lagged_total += event.missed
        return event

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._requests.put(_END)
            self._call.cancel()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PubSub:
    """`client.pubsub`: best-effort publish and subscribe (see the module
    docs for what is promised and how it fails).

    Example::

        with Client() as client, client.pubsub.subscribe(["room:1"], prefixes=["alerts:"]) as sub:
            client.pubsub.publish("room:1", "hello")
            for event in sub:
                if isinstance(event, Lagged):
                    print(f"missed {event.missed} messages")
                    continue
                print(event.topic, event.payload)
                break
    """

    def __init__(self, client: Client):
        self.client = client

    def publish(self, topic: BytesLike, message: BytesLike, *, local: bool = False) -> Published:
        """Sends `message` to every subscriber of `topic` (or of a prefix of
        it) on every node. `local=True`: only to the subscribers of the
        node that takes it (Phoenix's local_broadcast). Raises
        `InvalidArgument` for an empty topic, a topic over
        PUBSUB_TOPIC_BYTES_MAX or a message over PUBSUB_MESSAGE_BYTES_MAX."""
        return self.client.run(publish(topic, message, local))

    def publish_from(self, subscription: Subscription, topic: BytesLike, message: BytesLike, *,
                     local: bool = False) -> Published:
        """`publish`, but not to `subscription` (the sender's own), as
        Phoenix's broadcast_from: sent to the node that holds it, and only
        there (no other node knows that subscription). That subscription
        sees the node publisher's numbers jump over what it skipped."""
        request = publish_request(topic, message, local, subscription.id)
        try:
            return _published(self.client.stub("PubSub", subscription.endpoint).Publish(
                request, timeout=PUBLISH_FROM_TIMEOUT_S))
        except grpc.RpcError as error:
            raise error_from_rpc(error, b"") from None

    def subscribe(self, topics: Iterable[BytesLike] | BytesLike = (), *,
                  prefixes: Iterable[BytesLike] | BytesLike = ()) -> Subscription:
        """A subscription to `topics` and to every topic starting with one
        of `prefixes` (b"" matches every topic), on the first node that
        answers; open once it returns. See `Subscription`."""
        return Subscription(self.client, topics, prefixes)
