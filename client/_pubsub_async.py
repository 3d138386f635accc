"""`AsyncClient.pubsub`: best-effort pub/sub for asyncio, with the semantics
and failure modes of `tandemkv.client._pubsub` (see there): the same
requests, answers and events, every call awaited, a subscription an async
iterator that holds no thread.

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

    def __init__(self, from_offset: int | None = None) -> None:
        self._position = Position(from_offset)
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

    async def subscribe(self, topics: Iterable[BytesLike] | BytesLike = (), *,
                        prefixes: Iterable[BytesLike] | BytesLike = (), durable: bool = False,
                        from_offset: int | None = None) -> AsyncSubscription:
        opening = shared.first_request(topics, prefixes, durable, from_offset)
        return await AsyncSubscription(from_offset)._open(self.client, opening)
