"""`AsyncClient.pubsub`: best-effort pub/sub for asyncio, with the semantics
and failure modes of `tandemkv.client._pubsub` (see there): the same
requests, answers and events, every call awaited, a subscription an async
iterator that holds no thread.

Beyond the sync face: `publish_stream()` (`AsyncPublishStream`) keeps
many publishes in flight on one stream, answered in order, for a
publisher that sends more than one message per round trip.

Example::

    async with AsyncClient() as client:
        async with await client.pubsub.subscribe("room:1") as sub:
            await client.pubsub.publish("room:1", "hello")
            async for event in sub:
                print(event)            # Message(...) or Lagged(missed=n)
                break
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable

import grpc

from tandemkv import errors
from tandemkv.client import _pubsub_core as shared
from tandemkv.client._pubsub_core import Event, Lagged, Position, Published
from tandemkv.client._results import BytesLike
from tandemkv.client._retry import error_from_rpc

if TYPE_CHECKING:
    from tandemkv.client._async import AsyncClient


class AsyncSubscription:
    """`Subscription` for asyncio: `async for event in subscription`. Open
    it with `await client.pubsub.subscribe(...)`."""

    def __init__(self, from_offset: int | None = None, durable: bool = False) -> None:
        self._position = Position(from_offset)
        self._grants = shared.Grants(durable)
        self._pending: collections.deque[Event] = collections.deque()
        self.closed = False
        self.lagged_total = 0
        self._requests: asyncio.Queue = asyncio.Queue()

    async def _open(self, client: AsyncClient, opening: Any) -> AsyncSubscription:
        failure: errors.TandemKVError | None = None
        for endpoint in client._local.order():
            self._requests = asyncio.Queue()
            self._requests.put_nowait(opening)
            call = client.stub("PubSub", endpoint).Subscribe(self._request_stream(self._requests))
            try:
                first = await call.read()
            except grpc.RpcError as error:
                failure = shared.opening_failed(error)
                if isinstance(failure, (errors.Unavailable, errors.OutcomeUnknown)):
                    continue
                raise failure from None
            if first is grpc.aio.EOF:
                failure = errors.Unavailable(f"{endpoint} ended the subscription (stopping?)")
                continue
            self._call, self.endpoint = call, endpoint
            self.id, self.node = first.subscription_id, first.header.node
            client._local.answered(endpoint)
            return self
        assert failure is not None
        raise failure

    @staticmethod
    async def _request_stream(requests: asyncio.Queue) -> AsyncIterator:
        while (request := await requests.get()) is not shared.END_OF_REQUESTS:
            yield request

    def add(self, topics: Any = (), prefixes: Any = ()) -> None:
        """See `Subscription.add`."""
        self._requests.put_nowait(shared.subscribe_request(topics, prefixes))

    def remove(self, topics: Any = (), prefixes: Any = ()) -> None:
        self._requests.put_nowait(shared.subscribe_request(topics, prefixes, remove=True))

    def __aiter__(self) -> AsyncSubscription:
        return self

    async def __anext__(self) -> Event:
        while not self._pending:
            if self.closed:
                raise StopAsyncIteration
            try:
                response = await self._call.read()
            except grpc.RpcError as error:
                failure = shared.stream_error(error, self.endpoint, self.closed)
                if failure is None:
                    raise StopAsyncIteration from None
                raise failure from None
            except asyncio.CancelledError:
                if self.closed:
                    raise StopAsyncIteration from None
                raise
            if response is grpc.aio.EOF:
                if self.closed:
                    raise StopAsyncIteration
                raise errors.Unavailable(f"{self.endpoint} ended the subscription (stopping?): subscribe again")
            self._pending.extend(shared.events_of(response))
        event = self._pending.popleft()
        grant = self._grants.taken(event)
        if grant is not None and not self.closed:
            self._requests.put_nowait(grant)
        if isinstance(event, Lagged):
            self.lagged_total += event.missed
        self._position.passed(event)
        return event

    @property
    def next_offset(self) -> int | None:
        """See `Subscription.next_offset`."""
        return self._position.next_offset

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._requests.put_nowait(shared.END_OF_REQUESTS)
            self._call.cancel()

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class AsyncPubSub:
    """`PubSub` for `AsyncClient`; see `tandemkv.client._pubsub.PubSub`."""

    def __init__(self, client: AsyncClient):
        self.client = client

    async def publish(self, topic: BytesLike, message: BytesLike, *, local: bool = False, durable: bool = False,
                      request_id: bytes | None = None) -> Published:
        return await self.client.run(shared.publish(topic, message, local, durable, request_id))

    async def publish_from(self, subscription: AsyncSubscription, topic: BytesLike, message: BytesLike, *,
                           local: bool = False) -> Published:
        request = shared.publish_request(topic, message, local, subscription.id)
        try:
            return shared.decode_published(await self.client.stub("PubSub", subscription.endpoint).Publish(
                request, timeout=shared.PUBLISH_FROM_TIMEOUT_S))
        except grpc.RpcError as error:
            raise error_from_rpc(error, b"") from None

    def publish_stream(self, in_flight_max: int = shared.PUBLISH_STREAM_IN_FLIGHT_MAX) -> AsyncPublishStream:
        """A stream of best-effort publishes with up to `in_flight_max` in
        flight, answered in order: one publisher, whose messages every
        subscriber sees in the order sent. Far faster than `publish` in a
        loop, which waits a round trip per message. See
        `AsyncPublishStream`."""
        return AsyncPublishStream(self.client, in_flight_max)

    async def subscribe(self, topics: Iterable[BytesLike] | BytesLike = (), *,
                        prefixes: Iterable[BytesLike] | BytesLike = (), durable: bool = False,
                        from_offset: int | None = None) -> AsyncSubscription:
        opening = shared.first_request(topics, prefixes, durable, from_offset)
        return await AsyncSubscription(from_offset, durable)._open(self.client, opening)


class AsyncPublishStream:
    """Many publishes in flight on one `PublishStream`, answered in order:
    `client.pubsub.publish_stream()`. The stream is one publisher on its
    node (one session): every subscriber sees its messages in the order
    they were sent, and `seq` numbers them without holes.

    `send` returns once the message is queued (waiting while
    `in_flight_max` are unanswered) with a future of its `Published`;
    `publish` sends and awaits the answer. Any number of tasks may share a
    stream; messages go in the order `send` was called. What is queued
    while a request is being written goes in the next one, as a batch (at
    most PUBSUB_PUBLISH_BATCH_MESSAGES_MAX), answered by one response.

    Failure modes: best-effort and at most once, as `publish`. When the
    stream breaks, every unanswered publish raises `OutcomeUnknown` (it may
    have been published), or `Unavailable` if the node could not be reached
    (none was); nothing is sent again. What was still queued goes on a new
    stream, on the next node if that one could not be reached: a new
    publisher, numbering from 1.

    Example::

        async with client.pubsub.publish_stream() as stream:
            answers = [await stream.send("prices", tick) for tick in ticks]
            await stream.flush()                  # every answer is in
            print(answers[-1].result().seq)
    """

    def __init__(self, client: AsyncClient, in_flight_max: int = shared.PUBLISH_STREAM_IN_FLIGHT_MAX):
        if in_flight_max < 1:
            raise errors.InvalidArgument(f"in_flight_max is 1 or more; got {in_flight_max}")
        self._client = client
        self._room = asyncio.Semaphore(in_flight_max)
        self._batches = shared.PublishBatches()
        self._writer: asyncio.Task | None = None
        self._call: Any = None
        self.endpoint = ""
        self.closed = False

    async def send(self, topic: BytesLike, message: BytesLike, *, local: bool = False) -> asyncio.Future:
        """Queues one message; the future of its `Published`. Bad input
        raises here (`InvalidArgument`), before anything is sent."""
        request = shared.publish_stream_request(topic, message, local)
        if self.closed:
            raise errors.InvalidArgument("this publish stream is closed: open another")
        await self._room.acquire()
        answer = asyncio.get_running_loop().create_future()
        answer.add_done_callback(lambda _: self._room.release())
        self._batches.queue(request, answer)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        return answer

    async def publish(self, topic: BytesLike, message: BytesLike, *, local: bool = False) -> Published:
        """Sends one message and waits for its answer."""
        return await (await self.send(topic, message, local=local))

    async def flush(self) -> None:
        """Waits until every message sent so far is answered (or failed)."""
        pending = self._batches.pending()
        if pending:
            await asyncio.wait(pending)

    async def _write(self) -> None:
        """Writes what is queued, a batch a request, while there is some."""
        while self._batches.queued:
            request = self._batches.next_request()
            call = self._call if self._call is not None else self._open()
            try:
                await call.write(request)
            except (grpc.RpcError, asyncio.InvalidStateError):
                await self._ended(call)  # the reader fails what was not answered, this batch too

    def _open(self) -> Any:
        self.endpoint = self._client._local.order()[0]
        self._call = self._client.stub("PubSub", self.endpoint).PublishStream()
        self._call_reader = asyncio.ensure_future(self._read(self._call, self.endpoint))
        return self._call

    async def _ended(self, call: Any) -> None:
        if self._call is call:
            await asyncio.gather(self._call_reader, return_exceptions=True)

    async def _read(self, call: Any, endpoint: str) -> None:
        """Answers the oldest unanswered publishes with each response; when
        the call ends, fails the rest and lets the next write open another."""
        failure: grpc.RpcError | None = None
        answered = 0
        try:
            while (response := await call.read()) is not grpc.aio.EOF:
                answered += 1
                self._batches.answered(response)
        except grpc.RpcError as error:
            failure = error
        except asyncio.CancelledError:
            failure = None
        if self._call is call:
            self._call = None
        error = shared.publish_stream_failed(failure, endpoint)
        local = self._client._local
        if answered:
            local.answered(endpoint)
        elif isinstance(error, errors.Unavailable):
            local.answered(shared.next_endpoint(local.endpoints, endpoint))
        self._batches.failed(error)

    async def close(self) -> None:
        """Waits for the answers of what was sent, then ends the stream."""
        if self.closed:
            return
        self.closed = True
        await self.flush()
        call = self._call
        if call is not None:
            try:
                await call.done_writing()
            except (grpc.RpcError, asyncio.InvalidStateError):
                pass
            await self._ended(call)

    async def __aenter__(self) -> AsyncPublishStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
