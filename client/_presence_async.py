"""`AsyncClient.presence`: presence for asyncio, with the semantics, bounds
and failure modes of `tandemkv.client._presence` (see there): the same
session book, listings and diffs (`_presence_core`), every call awaited,
one renewal task per client, a watch an async iterator that holds no
thread.

Example::

    async with AsyncClient() as client:
        async with await client.presence.track("room:1", "ann", {"status": "online"}):
            print(await client.presence.list("room:1"))
            async with await client.presence.watch("room:1") as watch:
                async for diff in watch:
                    print(diff.joins, diff.leaves)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator

import grpc

from tandemkv import errors
from tandemkv.client import _presence_core as core
from tandemkv.client._presence_core import Listing, PresenceDiff, SessionBook
from tandemkv.client._results import BytesLike
from tandemkv.v1 import presence_pb2

if TYPE_CHECKING:
    from tandemkv.client._async import AsyncClient


class AsyncTracked:
    """`Tracked` for asyncio: `await update(meta)`, `await untrack()`, `async with`."""

    def __init__(self, presence: AsyncPresence, topic: bytes, key: bytes, ref: str):
        self.presence, self.topic, self.key, self.ref = presence, topic, key, ref

    async def update(self, meta: Any) -> None:
        self.ref = await self.presence._update(self.topic, self.key, meta)

    async def untrack(self) -> None:
        await self.presence._untrack(self.topic, self.key)

    async def __aenter__(self) -> AsyncTracked:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.untrack()


class AsyncPresenceWatch:
    """`PresenceWatch` for asyncio: `state`, then `async for diff in watch`."""

    async def _open(self, client: AsyncClient, topic: BytesLike) -> AsyncPresenceWatch:
        self.topic = core.names(topic, b"-")[0]
        self.closed = False
        failure: errors.TandemKVError | None = None
        for endpoint in client._local.order():
            call = client.stub("Presence", endpoint).Watch(presence_pb2.PresenceWatchRequest(topic=self.topic))
            try:
                first = await call.read()
            except grpc.RpcError as error:
                failure = core.rpc_error(error)
                if isinstance(failure, (errors.Unavailable, errors.OutcomeUnknown)):
                    continue
                raise failure from None
            if first is grpc.aio.EOF:
                failure = errors.Unavailable(f"{endpoint} ended the watch (stopping?)")
                continue
            self._call, self.endpoint, self.node = call, endpoint, first.header.node
            self.state: Listing = core.listing_of(first.state.keys)
            client._local.answered(endpoint)
            return self
        assert failure is not None
        raise failure

    def __aiter__(self) -> AsyncIterator[PresenceDiff]:
        return self

    async def __anext__(self) -> PresenceDiff:
        try:
            response = await self._call.read()
        except (grpc.RpcError, asyncio.CancelledError) as error:
            if self.closed:
                raise StopAsyncIteration from None
            if isinstance(error, asyncio.CancelledError):
                raise
            raise core.rpc_error(error) from None
        if response is grpc.aio.EOF:
            if self.closed:
                raise StopAsyncIteration
            raise errors.Unavailable(f"{self.endpoint} ended the watch (stopping?): watch again")
        self.state, diff = core.watch_event(self.state, response, self.topic)
        return diff

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._call.cancel()

    async def __aenter__(self) -> AsyncPresenceWatch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class AsyncPresence:
    """`client.presence` on an `AsyncClient`; see `Presence`."""

    def __init__(self, client: AsyncClient, ttl_ms: int = 0):
        self.client = client
        self._book = SessionBook(ttl_ms)
        self._lock = asyncio.Lock()
        self._renewer: asyncio.Task | None = None
        self._failed: str | None = None

    async def track(self, topic: BytesLike, key: BytesLike, meta: Any = None) -> AsyncTracked:
        """See `Presence.track`."""
        topic_bytes, key_bytes = core.names(topic, key)
        encoded = core.encode_meta(meta)
        async with self._lock:
            self._book.already(topic_bytes, key_bytes)
            response = await self._with_session(lambda stub, book: stub.Track(
                book.track_request(topic_bytes, key_bytes, encoded), timeout=core.CALL_TIMEOUT_S))
            self._book.tracked[(topic_bytes, key_bytes)] = encoded
            if self._renewer is None or self._renewer.done():
                self._renewer = asyncio.get_running_loop().create_task(self._renew(), name="presence renewal")
        return AsyncTracked(self, topic_bytes, key_bytes, response.ref)

    async def list(self, topic: BytesLike) -> Listing:
        """See `Presence.list`."""
        return await self.client.run(core.list_operation(topic))

    async def watch(self, topic: BytesLike) -> AsyncPresenceWatch:
        """See `Presence.watch`."""
        return await AsyncPresenceWatch()._open(self.client, topic)

    async def close(self) -> None:
        """Ends the session and its renewal task (the client calls it when it closes)."""
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        async with self._lock:
            endpoint, session = self._book.lost()
            self._book.tracked.clear()
        if session:
            await self._close_quietly(endpoint, session)

    # -- inside -------------------------------------------------------------

    async def _update(self, topic: bytes, key: bytes, meta: Any) -> str:
        encoded = core.encode_meta(meta)
        async with self._lock:
            if (topic, key) not in self._book.tracked:
                raise errors.NotFound(f"key {key!r} in topic {topic!r} is not tracked (untracked?): track it")
            response = await self._with_session(lambda stub, book: stub.Update(
                book.track_request(topic, key, encoded), timeout=core.CALL_TIMEOUT_S))
            self._book.tracked[(topic, key)] = encoded
            return response.ref

    async def _untrack(self, topic: bytes, key: bytes) -> None:
        async with self._lock:
            if self._book.tracked.pop((topic, key), None) is None or not self._book.session:
                return
            await self._with_session(lambda stub, book: stub.Untrack(book.track_request(topic, key),
                                                                      timeout=core.CALL_TIMEOUT_S))

    async def _with_session(self, call: Any) -> Any:
        for attempt in (1, 2):
            await self._open_if_needed()
            try:
                return await call(self.client.stub("Presence", self._book.endpoint), self._book)
            except grpc.RpcError as error:
                failure = core.rpc_error(error)
                if attempt == 2 or not isinstance(failure, core.SESSION_LOST):
                    raise failure from None
                await self._lose()
        raise AssertionError("unreachable")

    async def _open_if_needed(self) -> None:
        if self._book.session:
            return
        failure: errors.TandemKVError | None = None
        for endpoint in self._book.order(self.client._local.order(), self._failed):
            stub = self.client.stub("Presence", endpoint)
            try:
                self._book.opened(endpoint, await stub.Open(self._book.open_request(),
                                                            timeout=core.CALL_TIMEOUT_S))
                for (topic, key), meta in list(self._book.tracked.items()):
                    await stub.Track(self._book.track_request(topic, key, meta), timeout=core.CALL_TIMEOUT_S)
                return
            except grpc.RpcError as error:
                failure = core.rpc_error(error)
                await self._lose()
                if not isinstance(failure, core.SESSION_LOST):
                    raise failure from None
        assert failure is not None
        raise failure

    async def _lose(self) -> None:
        endpoint, session = self._book.lost()
        self._failed = endpoint
        if session:
            await self._close_quietly(endpoint, session)

    async def _close_quietly(self, endpoint: str | None, session: int) -> None:
        try:
            await self.client.stub("Presence", endpoint).Close(
                presence_pb2.PresenceSessionRequest(session=session), timeout=core.RETRY_RENEWAL_S)
        except grpc.RpcError:
            pass

    async def _renew(self) -> None:
        wait_s = self._book.renew_every_s
        while True:
            await asyncio.sleep(wait_s)
            async with self._lock:
                if not self._book.tracked:
                    return  # nothing to keep alive; the next track starts another task
                try:
                    await self._with_session(lambda stub, book: stub.KeepAlive(book.session_request(),
                                                                               timeout=core.CALL_TIMEOUT_S))
                    wait_s = self._book.renew_every_s
                except errors.TandemKVError:
                    wait_s = core.RETRY_RENEWAL_S
