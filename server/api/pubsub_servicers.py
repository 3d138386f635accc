"""The `PubSub` servicer: best-effort publish and subscribe on the node's
`PubSubPlane` (server/available/pubsub_plane.py), and the relay between
nodes (`Relay`, the plane's `RelayReceiver`).

Translation only: the plane decides every answer (stamps, buffers, lag
notices, what goes to peers); this file turns requests into its calls and
its events into responses, and errors into statuses. Everything runs on
the server's event loop, the plane's loop, so no call holds a thread.

- `Publish`: one message from the node's own publisher; the answer gives
  its stamp and how many subscribers on this node it was buffered for.
- `PublishStream`: one publisher session per stream (its messages keep
  their order for every subscriber); one answer per request, in order. A
  request may carry a batch of publishes (at most
  PUBSUB_PUBLISH_BATCH_MESSAGES_MAX), checked whole, then published in
  order and answered by one response: one read and one write for many
  messages instead of one each.
- `Subscribe`: one subscription per stream. The first request (topics and
  prefixes to add) opens it and is answered with its id; each later
  request adds or removes topics and prefixes and is answered with the id
  again; events follow in order, a `lagged` event standing where a slow
  reader's full buffer dropped messages. A request the hub refuses (a topic
  over PUBSUB_TOPIC_BYTES_MAX, a node out of subscriptions) ends the stream
  with its status. The stream lasts until the client cancels it or the
  server stops, whether or not the client closed its side. Flow control:
  a client that grants messages (`grant_messages`, first request) is sent
  no more than it granted (`Window`); the rest waits in the subscriber's
  bounded buffer, whose overflow is a `lagged` event, so nothing piles up
  unseen in the connection. Each message is encoded once, whatever the
  number of subscribers it goes to (`events_response`).
- `Relay`: node to node (pubsub_relay.py); its streams have a lane of
  their own (PEER_STREAMS_OPEN_MAX, dispatch.py).

`DURABLE` goes to the strong plane's topic logs, `node.topics`
(server/node/topics.py, docs/durable-topics.md): a publish is a Raft write
(awaited on the loop, exactly once by its request id) answered with its
offset; a subscription holds one topic, reads it from an offset through
`node.topics.subscribe_async` (no thread while it waits), and sends each
message with its offset, and a `gap` event where retention dropped
messages it had not read. A node whose server was built without a plane
or topics (a test's fake node) answers UNAVAILABLE, after reading a
stream's first request, so a malformed one is still INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import collections
from typing import AsyncIterable, AsyncIterator

import grpc
import grpc.aio

from tandemkv import errors, limits
from tandemkv.server.api.edge import abort, node_timeout_s
from tandemkv.server.api.streams import StreamStop, StreamStops, until_stopped
from tandemkv.server.available.pubsub import Lagged, Message, Publisher, check_payload, check_topic
from tandemkv.server.available.pubsub_plane import NEXT_EVENTS_MAX, PubSubPlane, Subscription
from tandemkv.server.node.topics import TopicGap
from tandemkv.v1 import kv_pb2, pubsub_pb2, pubsub_pb2_grpc, topics_pb2

# An offset past every message (offsets are Raft indexes): a read from it
# answers only where the topic stands.
_PAST_EVERY_OFFSET = 2**63


def is_durable(mode: int) -> bool:
    """Whether `mode` is DURABLE; InvalidArgument for an unknown mode."""
    if mode not in (pubsub_pb2.BEST_EFFORT, pubsub_pb2.DURABLE):
        raise errors.InvalidArgument(f"unknown delivery mode {mode}; use 0 (BEST_EFFORT) or 1 (DURABLE)")
    return mode == pubsub_pb2.DURABLE


def durable_event(event: topics_pb2.TopicMessage | TopicGap, topic: bytes) -> pubsub_pb2.SubscriptionEvent:
    if isinstance(event, TopicGap):
        return pubsub_pb2.SubscriptionEvent(gap=pubsub_pb2.RetentionGap(from_offset=event.from_offset,
                                                                        first_offset=event.first_offset))
    return pubsub_pb2.SubscriptionEvent(message=pubsub_pb2.PubSubMessage(
        topic=topic, payload=event.message, offset=event.offset, publish_ms=event.publish_ms))


def check_durable_subscription(request: pubsub_pb2.SubscribeRequest) -> bytes:
    """The topic of a DURABLE subscription's first request; InvalidArgument
    unless it names exactly one topic and nothing else."""
    if len(request.add_topics) != 1 or request.add_prefixes or request.remove_topics or request.remove_prefixes:
        raise errors.InvalidArgument("a DURABLE subscription holds exactly one topic (one add_topics, no "
                                     "prefixes, nothing to remove): open one stream per topic")
    if request.from_now and request.from_offset:
        raise errors.InvalidArgument("set from_offset or from_now, not both")
    return request.add_topics[0]


def check_batch(request: pubsub_pb2.PublishRequest) -> None:
    """InvalidArgument, saying what to fix, unless `request` is a batch of at
    most PUBSUB_PUBLISH_BATCH_MESSAGES_MAX best-effort publishes, each with
    a topic and a payload within their limits and no batch of its own, and
    sets nothing beside it: checked whole, so a batch is all or nothing."""
    if request.topic or request.payload or request.mode or request.local_only or request.skip_subscription \
            or request.request_id:
        raise errors.InvalidArgument("a publish request with a batch sets nothing else: put each message, "
                                     "with its options, in the batch")
    if len(request.batch) > limits.PUBSUB_PUBLISH_BATCH_MESSAGES_MAX:
        raise errors.InvalidArgument(f"a batch holds at most {limits.PUBSUB_PUBLISH_BATCH_MESSAGES_MAX} "
                                     f"publishes, this one {len(request.batch)}: split it",
                                     limit="PUBSUB_PUBLISH_BATCH_MESSAGES_MAX")
    for inner in request.batch:
        if inner.batch:
            raise errors.InvalidArgument("a publish in a batch has no batch of its own")
        if is_durable(inner.mode) or inner.request_id:
            raise errors.InvalidArgument("a batch is of BEST_EFFORT publishes: send a DURABLE one in a request "
                                         "of its own")
        check_topic(inner.topic)
        check_payload(inner.payload)


def message_to_proto(message: Message) -> pubsub_pb2.PubSubMessage:
    publisher = message.publisher
    return pubsub_pb2.PubSubMessage(
        topic=message.topic, payload=message.payload, seq=message.seq,
        publisher=pubsub_pb2.PublisherId(node=publisher.node, incarnation=publisher.incarnation,
                                         session=publisher.session))


def event_to_proto(event: Message | Lagged) -> pubsub_pb2.SubscriptionEvent:
    if isinstance(event, Lagged):
        return pubsub_pb2.SubscriptionEvent(lagged=event.missed)
    return pubsub_pb2.SubscriptionEvent(message=message_to_proto(event))


class Window:
    """A best-effort subscription's flow control: the messages its client
    granted and has not been sent yet (a `lagged` notice needs no grant: a
    take holds at most one). A stream whose first request granted none has
    no window (clients before flow control): it sends whatever its
    subscriber has, as fast as the connection takes it."""

    def __init__(self, granted: int):
        self.enabled = granted > 0
        self.granted = min(granted, limits.PUBSUB_SUBSCRIBER_WINDOW_MESSAGES_MAX)

    def grant(self, messages: int) -> None:
        """More room, from a later request; outstanding grants are capped at
        PUBSUB_SUBSCRIBER_WINDOW_MESSAGES_MAX (more would only move the
        backlog out of the bounded buffer)."""
        self.granted = min(self.granted + messages, limits.PUBSUB_SUBSCRIBER_WINDOW_MESSAGES_MAX)

    @property
    def closed(self) -> bool:
        return self.enabled and self.granted == 0

    @property
    def messages_max(self) -> int:
        return min(self.granted, NEXT_EVENTS_MAX) if self.enabled else NEXT_EVENTS_MAX

    def sent(self, events: list[Message | Lagged]) -> None:
        if self.enabled:
            messages = len(events) - isinstance(events[0], Lagged)
            assert messages <= self.granted, (messages, self.granted)
            self.granted -= messages


class EncodedResponse:
    """A SubscribeResponse already encoded: the dispatcher's serializer
    (dispatch.py) asks it for its bytes, as it asks a message. Encoded
    responses concatenate: a response's bytes followed by another's are the
    encoding of one response holding both's events."""

    __slots__ = ("_encoded",)

    def __init__(self, encoded: bytes):
        self._encoded = encoded

    def SerializeToString(self) -> bytes:  # noqa: N802 - the protobuf name the serializer calls
        return self._encoded


# Each recent message encoded as a one-event response, by the message's
# identity: a message to N subscribers is encoded once, not N times, and a
# response to a subscriber is the join of its events' bytes. An entry holds
# its message, so the identity cannot be reused while the entry lives; the
# cache is emptied whenever it passes ENCODED_MESSAGES_MAX.
ENCODED_MESSAGES_MAX = 8_192
_encoded: dict[int, tuple[Message, bytes]] = {}


def events_response(events: list[Message | Lagged]) -> EncodedResponse:
    """One response carrying `events`, each message encoded once for all
    the subscribers it goes to."""
    parts = []
    for event in events:
        if isinstance(event, Lagged):
            parts.append(pubsub_pb2.SubscribeResponse(events=[event_to_proto(event)]).SerializeToString())
            continue
        entry = _encoded.get(id(event))
        if entry is None:
            if len(_encoded) >= ENCODED_MESSAGES_MAX:
                _encoded.clear()
            encoded = pubsub_pb2.SubscribeResponse(events=[event_to_proto(event)]).SerializeToString()
            entry = _encoded[id(event)] = (event, encoded)
        parts.append(entry[1])
    return EncodedResponse(b"".join(parts))


class PubSubServicer(pubsub_pb2_grpc.PubSubServicer):
    def __init__(self, node: object, plane: PubSubPlane | None, stops: StreamStops):
        self._topics = getattr(node, "topics", None)
        self._plane = plane
        self._node_name = plane.node if plane is not None else ""
        self._stops = stops

    def _require_topics(self):
        if self._topics is None:
            raise errors.Unavailable("durable topics are not served by this node; use another node")
        return self._topics

    async def _publish_durable(self, request: pubsub_pb2.PublishRequest,
                               context: grpc.aio.ServicerContext) -> pubsub_pb2.PublishResponse:
        if request.local_only or request.skip_subscription:
            raise errors.InvalidArgument("local_only and skip_subscription are for BEST_EFFORT: every "
                                         "subscriber of a durable topic reads all of its log")
        published = await self._require_topics().publish_async(
            request.topic, request.payload, request_id=request.request_id or None,
            timeout_s=node_timeout_s(context))
        return pubsub_pb2.PublishResponse(header=published.header, offset=published.offset)

    def _require_plane(self) -> PubSubPlane:
        if self._plane is None:
            raise errors.Unavailable("pub/sub is not running on this node; use another node")
        return self._plane

    def _publish(self, publisher: Publisher | None,
                 request: pubsub_pb2.PublishRequest) -> pubsub_pb2.PublishResponse:
        if request.request_id:
            raise errors.InvalidArgument("request_id is for DURABLE publishes: a BEST_EFFORT one is at most "
                                         "once and never retried")
        plane = self._require_plane()
        published = plane.publish(request.topic, request.payload, publisher=publisher,
                                  skip=request.skip_subscription or None, local_only=request.local_only)
        message = published.message
        return pubsub_pb2.PublishResponse(
            header=kv_pb2.ResponseHeader(node=plane.node), seq=message.seq,
            publisher=message_to_proto(message).publisher, delivered_locally=published.delivered)

    def _publish_batch(self, publisher: Publisher, request: pubsub_pb2.PublishRequest) -> pubsub_pb2.PublishResponse:
        """A stream request's batch, checked whole, then published in order."""
        check_batch(request)
        return pubsub_pb2.PublishResponse(header=kv_pb2.ResponseHeader(node=self._require_plane().node),
                                          batch=[self._publish(publisher, inner) for inner in request.batch])

    async def Publish(self, request, context):
        try:
            if request.batch:
                raise errors.InvalidArgument("a batch of publishes goes on PublishStream; Publish takes one")
            if is_durable(request.mode):
                return await self._publish_durable(request, context)
            return self._publish(None, request)
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            await abort(context, error)

    async def PublishStream(self, request_iterator, context):
        async for response in self._stops.serve(
                context, None, lambda stop: self._publish_stream(request_iterator, context, stop)):
            yield response

    async def _publish_stream(self, requests: AsyncIterable, context: grpc.aio.ServicerContext,
                              stop: StreamStop) -> AsyncIterator:
        publisher: Publisher | None = None
        async for request in until_stopped(stop, requests):
            if request.batch:
                if publisher is None:
                    publisher = self._require_plane().open_publisher()
                yield self._publish_batch(publisher, request)
                continue
            if is_durable(request.mode):
                yield await self._publish_durable(request, context)
                continue
            if publisher is None:
                publisher = self._require_plane().open_publisher()
            yield self._publish(publisher, request)

    async def Subscribe(self, request_iterator, context):
        async for response in self._stops.serve(
                context, None, lambda stop: self._subscribe(request_iterator, context, stop)):
            yield response

    async def _subscribe(self, request_iterator: AsyncIterable, context: grpc.aio.ServicerContext,
                         stop: StreamStop) -> AsyncIterator:
        requests = until_stopped(stop, request_iterator).__aiter__()
        try:
            first = await requests.__anext__()
        except StopAsyncIteration:
            return  # the client left (or the server stops) before asking for anything
        if is_durable(first.mode):
            async for response in self._subscribe_durable(first, requests, context, stop):
                yield response
            return
        if first.from_offset or first.from_now:
            raise errors.InvalidArgument("from_offset and from_now are for DURABLE subscriptions: a "
                                         "BEST_EFFORT one has no history")
        plane = self._require_plane()
        subscription = plane.subscribe(tuple(first.add_topics), tuple(first.add_prefixes))
        loop = asyncio.get_running_loop()
        stop.add_callback(lambda: _wake_threadsafe(loop, subscription))
        answers: collections.deque[pubsub_pb2.SubscribeResponse] = collections.deque()
        failure: list[BaseException] = []
        window = Window(first.grant_messages)

        def apply(request: pubsub_pb2.SubscribeRequest) -> bool:
            """Applies a later request; whether it is to be answered."""
            window.grant(request.grant_messages)
            subscription.add(tuple(request.add_topics), tuple(request.add_prefixes))
            subscription.remove(tuple(request.remove_topics), tuple(request.remove_prefixes))
            return bool(request.add_topics or request.add_prefixes or request.remove_topics
                        or request.remove_prefixes or not request.grant_messages)

        async def read_requests() -> None:
            try:
                async for request in requests:
                    if apply(request):
                        answers.append(self._named(plane, subscription))
                    subscription.wake()
            except errors.TandemKVError as error:  # a refused request ends the stream
                failure.append(error)
                subscription.wake()

        reader: asyncio.Task | None = None
        try:
            subscription.remove(tuple(first.remove_topics), tuple(first.remove_prefixes))
            yield self._named(plane, subscription)
            reader = asyncio.ensure_future(read_requests())
            while not (stop.is_set() or subscription.closed):
                if failure:
                    raise failure[0]
                while answers:
                    yield answers.popleft()
                if window.closed:
                    await subscription.woken()  # a grant wakes it
                    continue
                events = await subscription.next_events(window.messages_max)
                if events:
                    window.sent(events)
                    yield events_response(events)
        finally:
            if reader is not None:
                reader.cancel()
            subscription.close()

    async def _subscribe_durable(self, first: pubsub_pb2.SubscribeRequest, requests: AsyncIterator,
                                 context: grpc.aio.ServicerContext, stop: StreamStop) -> AsyncIterator:
        topic = check_durable_subscription(first)
        topics = self._require_topics()
        start = first.from_offset
        if first.from_now:
            # Placed before the first response, so that everything published
            # once the client holds it is delivered: where the topic stands
            # after every publish acknowledged so far (a linearizable read);
            # a topic that holds nothing is read from its first message, so
            # its next life owes no gap.
            page = await topics.read_async(topic, _PAST_EVERY_OFFSET, limit=1, timeout_s=node_timeout_s(context))
            start = 0 if page.first_offset == page.next_offset else page.next_offset
        events = topics.subscribe_async(topic, start)
        # Ends the events on a stop, or on a later request (refused).
        ended = StreamStop()
        stop.add_callback(ended.set)
        failure: list[BaseException] = []

        async def refuse_requests() -> None:
            async for _ in requests:
                failure.append(errors.InvalidArgument(
                    "a DURABLE subscription takes no request after its first: open another stream"))
                ended.set()
                return

        reader = asyncio.ensure_future(refuse_requests())
        try:
            yield pubsub_pb2.SubscribeResponse(header=kv_pb2.ResponseHeader(node=self._node_name))
            async for event in until_stopped(ended, events):
                yield pubsub_pb2.SubscribeResponse(events=[durable_event(event, topic)])
            if failure:
                raise failure[0]
        finally:
            reader.cancel()
            try:
                await events.aclose()  # runs its finally: the topic hub forgets it
            except RuntimeError:
                pass  # still running its cancellation, which closes it as well

    @staticmethod
    def _named(plane: PubSubPlane, subscription: Subscription) -> pubsub_pb2.SubscribeResponse:
        return pubsub_pb2.SubscribeResponse(header=kv_pb2.ResponseHeader(node=plane.node),
                                            subscription_id=subscription.id)

    async def Relay(self, request_iterator, context):
        async for reply in self._stops.serve(context, None,
                                             lambda stop: self._relay(request_iterator, context, stop)):
            yield reply

    async def _relay(self, request_iterator: AsyncIterable, context: grpc.aio.ServicerContext,
                     stop: StreamStop) -> AsyncIterator:
        frames = until_stopped(stop, request_iterator)
        if self._plane is None:
            async for _ in frames:
                break  # read one: a malformed frame is INVALID_ARGUMENT still
        plane = self._require_plane()
        async for reply in plane.receiver.Relay(frames, context):
            yield reply


def _wake_threadsafe(loop: asyncio.AbstractEventLoop, subscription: Subscription) -> None:
    """Wakes a subscription's reader from any thread (a server stopping)."""
    try:
        loop.call_soon_threadsafe(subscription.wake)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass

