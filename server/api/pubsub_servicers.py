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
  their order for every subscriber); one answer per request, in order.
- `Subscribe`: one subscription per stream. The first request (topics and
  prefixes to add) opens it and is answered with its id; each later
  request adds or removes topics and prefixes and is answered with the id
  again; events follow in order, a `lagged` event standing where a slow
  reader's full buffer dropped messages. A request the hub refuses (a topic
  over PUBSUB_TOPIC_BYTES_MAX, a node out of subscriptions) ends the stream
  with its status. The stream lasts until the client cancels it or the
  server stops, whether or not the client closed its side.
- `Relay`: node to node (pubsub_relay.py); counted as a stream like the
  others.

`DURABLE` is refused with FAILED_PRECONDITION: durable topics live on the
strong plane (`node.topics` on an embedded node, docs/durable-topics.md)
and this service does not carry them yet. A node whose server was built
without a plane (a test's fake node) answers UNAVAILABLE, after reading a
stream's first request, so a malformed one is still INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import collections
from typing import AsyncIterable, AsyncIterator

import grpc
import grpc.aio

from tandemkv import errors
from tandemkv.server.api.edge import abort
from tandemkv.server.api.streams import StreamStop, StreamStops, until_stopped
from tandemkv.server.available.pubsub import Lagged, Message, Publisher
from tandemkv.server.available.pubsub_plane import PubSubPlane, Subscription
from tandemkv.v1 import kv_pb2, pubsub_pb2, pubsub_pb2_grpc

_DURABLE_REFUSED = ("durable delivery is not served by the PubSub service yet: publish with mode "
                    "BEST_EFFORT, or use durable topics on an embedded node (node.topics, "
                    "docs/durable-topics.md)")


def check_mode(mode: int) -> None:
    """BEST_EFFORT passes; DURABLE is FailedPrecondition, any other value
    InvalidArgument, each saying what to use."""
    if mode == pubsub_pb2.BEST_EFFORT:
        return
    if mode == pubsub_pb2.DURABLE:
        raise errors.FailedPrecondition(_DURABLE_REFUSED)
    raise errors.InvalidArgument(f"unknown delivery mode {mode}; use 0 (BEST_EFFORT)")


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


class PubSubServicer(pubsub_pb2_grpc.PubSubServicer):
    def __init__(self, plane: PubSubPlane | None, stops: StreamStops):
        self._plane = plane
        self._stops = stops

    def _require_plane(self) -> PubSubPlane:
        if self._plane is None:
            raise errors.Unavailable("pub/sub is not running on this node; use another node")
        return self._plane

    def _publish(self, publisher: Publisher | None,
                 request: pubsub_pb2.PublishRequest) -> pubsub_pb2.PublishResponse:
        check_mode(request.mode)
        plane = self._require_plane()
        published = plane.publish(request.topic, request.payload, publisher=publisher,
                                  skip=request.skip_subscription or None, local_only=request.local_only)
        message = published.message
        return pubsub_pb2.PublishResponse(
            header=kv_pb2.ResponseHeader(node=plane.node), seq=message.seq,
            publisher=message_to_proto(message).publisher, delivered_locally=published.delivered)

    async def Publish(self, request, context):
        try:
            return self._publish(None, request)
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            await abort(context, error)

    async def PublishStream(self, request_iterator, context):
        async for response in self._stops.serve(
                context, None, lambda stop: self._publish_stream(request_iterator, stop)):
            yield response

    async def _publish_stream(self, requests: AsyncIterable, stop: StreamStop) -> AsyncIterator:
        publisher: Publisher | None = None
        async for request in until_stopped(stop, requests):
            if publisher is None:
                check_mode(request.mode)
                publisher = self._require_plane().open_publisher()
            yield self._publish(publisher, request)

    async def Subscribe(self, request_iterator, context):
        async for response in self._stops.serve(
                context, None, lambda stop: self._subscribe(request_iterator, stop)):
            yield response

    async def _subscribe(self, request_iterator: AsyncIterable, stop: StreamStop) -> AsyncIterator:
        requests = until_stopped(stop, request_iterator).__aiter__()
        try:
            first = await requests.__anext__()
        except StopAsyncIteration:
            return  # the client left (or the server stops) before asking for anything
        plane = self._require_plane()
        subscription = plane.subscribe(tuple(first.add_topics), tuple(first.add_prefixes))
        loop = asyncio.get_running_loop()
        stop.add_callback(lambda: _wake_threadsafe(loop, subscription))
        answers: collections.deque[pubsub_pb2.SubscribeResponse] = collections.deque()
        failure: list[BaseException] = []

        def apply(request: pubsub_pb2.SubscribeRequest) -> None:
            subscription.add(tuple(request.add_topics), tuple(request.add_prefixes))
            subscription.remove(tuple(request.remove_topics), tuple(request.remove_prefixes))

        async def read_requests() -> None:
            try:
                async for request in requests:
                    apply(request)
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
                events = await subscription.next_events()
                if events:
                    yield pubsub_pb2.SubscribeResponse(events=[event_to_proto(e) for e in events])
        finally:
            if reader is not None:
                reader.cancel()
            subscription.close()

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

