"""What the SDK's pub/sub shares between `Client` and `AsyncClient`
(`_pubsub`, `_pubsub_async`): the events and answers users see, the
requests, their decoding, and where a durable subscription resumes. No
channel, thread or event loop here.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Iterable, Union

import grpc

from tandemkv import errors, limits
from tandemkv.client import _operations as ops
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.client._retry import error_from_rpc
from tandemkv.v1 import pubsub_pb2

# Longest a publish_from waits for its node (it goes to one node only).
PUBLISH_FROM_TIMEOUT_S = 10.0
END_OF_REQUESTS = None  # closes a subscription's request stream
# Messages a best-effort subscription lets its node send ahead of what the
# caller has taken (the flow-control window; a node caps it at
# PUBSUB_SUBSCRIBER_WINDOW_MESSAGES_MAX). Beyond it, messages wait in the
# subscriber's bounded buffer on the node, whose overflow is a `Lagged`
# event, rather than unseen in the connection. Room is granted again each
# time the caller has taken half of it.
SUBSCRIPTION_WINDOW_MESSAGES = 1_024


@dataclasses.dataclass(frozen=True)
class Publisher:
    """Who published a message: a node, the incarnation it runs as (drawn at
    each start) and a session on it. A new publisher numbers from 1."""

    node: str
    incarnation: int
    session: int


@dataclasses.dataclass(frozen=True)
class Message:
    """A message a subscription received. Best-effort: `seq` counts
    `publisher`'s messages on `topic` from 1 (a jump is a loss between
    nodes). Durable: no publisher; `offset` is its place in the log."""

    topic: bytes
    payload: bytes
    publisher: Publisher | None
    seq: int
    # Durable messages: the offset in the topic's log and the log's time of
    # the publish (ms); 0 for best-effort ones (which have a publisher instead).
    offset: int = 0
    publish_ms: int = 0


@dataclasses.dataclass(frozen=True)
class Gap:
    """In a durable subscription, where retention dropped messages before
    it read them: those from `from_offset` up to `first_offset`."""

    from_offset: int
    first_offset: int


@dataclasses.dataclass(frozen=True)
class Lagged:
    """In place of `missed` messages that this subscription read too slowly
    to keep (its buffer on the node was full; the oldest went)."""

    missed: int


Event = Union[Message, Lagged, Gap]


@dataclasses.dataclass(frozen=True)
class Published:
    """What a publish did: the node that took it, the stamp it got, and how
    many subscribers on that node it was buffered for; for a durable one,
    its `offset` in the topic's log (and no publisher)."""

    node: str
    publisher: Publisher | None
    seq: int
    delivered_locally: int
    offset: int = 0


def _publisher(proto: pubsub_pb2.PublisherId) -> Publisher:
    return Publisher(proto.node, proto.incarnation, proto.session)


def decode_published(response: pubsub_pb2.PublishResponse) -> Published:
    if not response.HasField("publisher"):  # durable
        return Published(response.header.node, None, 0, 0, response.offset)
    return Published(response.header.node, _publisher(response.publisher), response.seq,
                     response.delivered_locally)


def publish_request(topic: BytesLike, message: BytesLike, local: bool = False,
                    skip_subscription: int | None = None) -> pubsub_pb2.PublishRequest:
    if skip_subscription == 0:
        raise errors.InvalidArgument("publish_from takes a best-effort subscription (a durable one has no id "
                                     "and every reader of a log reads all of it)")
    return pubsub_pb2.PublishRequest(topic=to_bytes(topic, "topic"), payload=to_bytes(message, "message"),
                                     local_only=local, skip_subscription=skip_subscription or 0)


def publish(topic: BytesLike, message: BytesLike, local: bool = False, durable: bool = False,
            request_id: bytes | None = None) -> ops.Operation:
    """A publish as an `Operation`. Best-effort: any node takes it, no
    leader; not sent again once its outcome is unknown (at most once).
    Durable: a write to the leader with a request id, retried with it
    (exactly once)."""
    request = publish_request(topic, message, local)
    if not durable:
        return ops.Operation("PubSub", "Publish", request, decode_published, write=True, local=True,
                             idempotent=False)
    request.mode = pubsub_pb2.DURABLE
    request.request_id = ops.new_request_id(request_id)
    return ops.Operation("PubSub", "Publish", request, decode_published, write=True)


# Publishes one publish stream has sent and not had answered; `send` waits
# for room beyond it.
PUBLISH_STREAM_IN_FLIGHT_MAX = 256


def publish_stream_request(topic: BytesLike, message: BytesLike, local: bool = False) -> pubsub_pb2.PublishRequest:
    """A request of a publish stream (best-effort: a durable publish has a
    request id and a leader of its own; use `publish(..., durable=True)`)."""
    return publish_request(topic, message, local)


def publish_stream_failed(error: grpc.RpcError | None, endpoint: str) -> errors.TandemKVError:
    """What the unanswered publishes of a broken publish stream raise: at
    most once, so `OutcomeUnknown` unless the node surely never took them
    (it could not be reached: `Unavailable`), or refused them (its status)."""
    if error is None:
        return errors.OutcomeUnknown(f"{endpoint} ended the publish stream (stopping?) before answering: "
                                     "the message may or may not have been published")
    return error_from_rpc(error, b"")


def next_endpoint(endpoints: list[str], endpoint: str) -> str:
    """The endpoint after `endpoint` (where a stream that could not reach it goes next)."""
    if endpoint not in endpoints:
        return endpoints[0]
    return endpoints[(endpoints.index(endpoint) + 1) % len(endpoints)]


class PublishBatches:
    """A publish stream's messages, sent and unsent, and their answers'
    futures (asyncio or concurrent.futures), in order. `next_request` takes
    what is queued (one request, or a batch of up to
    PUBSUB_PUBLISH_BATCH_MESSAGES_MAX); each response answers the oldest
    sent ones, as many as it carries. Used on one thread or loop at a time
    (the sync shell holds a lock around it)."""

    def __init__(self, batch_messages_max: int = limits.PUBSUB_PUBLISH_BATCH_MESSAGES_MAX):
        self._queued: collections.deque[tuple[pubsub_pb2.PublishRequest, Any]] = collections.deque()
        self._sent: collections.deque[Any] = collections.deque()
        self._batch_messages_max = batch_messages_max

    @property
    def queued(self) -> int:
        return len(self._queued)

    def queue(self, request: pubsub_pb2.PublishRequest, answer: Any) -> None:
        self._queued.append((request, answer))

    def next_request(self) -> pubsub_pb2.PublishRequest:
        """What is queued, as one request; its answers now count as sent."""
        assert self._queued, "nothing is queued"
        taken = [self._queued.popleft() for _ in range(min(len(self._queued), self._batch_messages_max))]
        self._sent.extend(answer for _, answer in taken)
        if len(taken) == 1:
            return taken[0][0]
        return pubsub_pb2.PublishRequest(batch=[request for request, _ in taken])

    def answered(self, response: pubsub_pb2.PublishResponse) -> None:
        """Resolves the oldest sent answers with `response` (a batch's: one each)."""
        for published in (response.batch or [response]):
            answer = self._sent.popleft()
            if not answer.done():
                answer.set_result(decode_published(published))

    def failed(self, error: errors.TandemKVError) -> None:
        """Fails every sent answer not given: the stream that carried them
        ended. What is still queued goes on the next stream."""
        while self._sent:
            answer = self._sent.popleft()
            if not answer.done():
                answer.set_exception(error)
                answer.exception()  # retrieved: a caller that only sent need not look

    def pending(self) -> list[Any]:
        return [*self._sent, *(answer for _, answer in self._queued)]


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


def first_request(topics: Any, prefixes: Any, durable: bool,
                  from_offset: int | None) -> pubsub_pb2.SubscribeRequest:
    """The request that opens a subscription."""
    request = subscribe_request(topics, prefixes)
    if not durable:
        if from_offset is not None:
            raise errors.InvalidArgument("from_offset is for durable subscriptions (durable=True): a "
                                         "best-effort one has no history")
        request.grant_messages = SUBSCRIPTION_WINDOW_MESSAGES
        return request
    if len(request.add_topics) != 1 or request.add_prefixes:
        raise errors.InvalidArgument("a durable subscription holds exactly one topic and no prefix: "
                                     "subscribe once per topic")
    if from_offset is not None and from_offset < 0:
        raise errors.InvalidArgument(f"from_offset is an offset, 0 or more; got {from_offset}")
    request.mode = pubsub_pb2.DURABLE
    if from_offset is None:
        request.from_now = True
    else:
        request.from_offset = from_offset
    return request


class Grants:
    """A best-effort subscription's side of flow control: counts the
    messages the caller takes, and says when to grant the node room again."""

    def __init__(self, durable: bool, window_messages: int = SUBSCRIPTION_WINDOW_MESSAGES):
        self.enabled = not durable  # a durable subscription takes no request after its first
        self._window_messages = window_messages
        self._taken = 0

    def taken(self, event: Event) -> pubsub_pb2.SubscribeRequest | None:
        """`event` taken; the request granting room again, when due."""
        if not self.enabled or isinstance(event, Lagged):
            return None
        self._taken += 1
        if self._taken * 2 < self._window_messages:
            return None
        granted, self._taken = self._taken, 0
        return pubsub_pb2.SubscribeRequest(grant_messages=granted)


class Position:
    """Where a durable subscription goes on from: the offset after the last
    message it delivered (or the first retained after a gap)."""

    def __init__(self, from_offset: int | None):
        self.next_offset = from_offset

    def passed(self, event: Event) -> None:
        if isinstance(event, Gap):
            self.next_offset = event.first_offset
        elif isinstance(event, Message) and event.publisher is None:
            self.next_offset = event.offset + 1


def events_of(response: pubsub_pb2.SubscribeResponse) -> list[Event]:
    events: list[Event] = []
    for event in response.events:
        kind = event.WhichOneof("kind")
        if kind == "lagged":
            events.append(Lagged(event.lagged))
        elif kind == "gap":
            events.append(Gap(event.gap.from_offset, event.gap.first_offset))
        else:
            m = event.message
            publisher = _publisher(m.publisher) if m.HasField("publisher") else None
            events.append(Message(m.topic, m.payload, publisher, m.seq, m.offset, m.publish_ms))
    return events


def stream_error(error: grpc.RpcError, endpoint: str, closed: bool) -> errors.TandemKVError | None:
    """What a broken subscription raises (None: the user closed it)."""
    if closed:
        return None
    if error.code() == grpc.StatusCode.CANCELLED:
        return errors.Unavailable(f"{endpoint} ended the subscription (stopping?): subscribe again")
    return _read_failed(error, endpoint)


def opening_failed(error: grpc.RpcError, endpoint: str = "the node") -> errors.TandemKVError:
    """An error opening a subscription; Unavailable: try the next node."""
    return _read_failed(error, endpoint)


def _read_failed(error: grpc.RpcError, endpoint: str) -> errors.TandemKVError:
    failure = error_from_rpc(error, b"")
    if isinstance(failure, errors.OutcomeUnknown):
        # A subscription changes nothing on the node, so a lost connection
        # leaves no outcome in doubt: the node went away.
        return errors.Unavailable(f"{endpoint}: the subscription's connection was lost ({error.details()}); "
                                  "subscribe again")
    return failure
