"""The asyncio driver of the watch multiplexer (`_watch_mux_core`): a
reader task per Watch.Watches stream, in the client's event loop.

The reader task opens its stream's call, hands every response to the core
(which only appends to a buffer and sets the watch's event: the reader
never waits for a watch's user), and when the call breaks sleeps as the
core says and opens it again. Requests (creates and cancels) reach the
call through an asyncio queue.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import grpc

from tandemkv.client import _watch_mux_core as mux_core
from tandemkv.v1 import watch_pb2

_END = object()


class _Line:
    """The driver's side of one stream: its current call, its request
    queue and its reader task."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue = asyncio.Queue()
        self.call: Any = None
        self.task: asyncio.Task | None = None

    def renew(self) -> None:
        self.requests.put_nowait(_END)
        self.requests = asyncio.Queue()

    async def request_iterator(self) -> AsyncIterator[watch_pb2.WatchStreamRequest]:
        requests = self.requests
        while (request := await requests.get()) is not _END:
            yield request

    def close(self) -> None:
        self.requests.put_nowait(_END)
        if self.call is not None:
            self.call.cancel()


class AsyncWatchStreams:
    """Every watch of one `AsyncClient`, multiplexed; see the module docstring."""

    def __init__(self, client: Any):
        self._client = client
        self._mux = mux_core.WatchMux(client._router, client.retry)
        self._tasks: set[asyncio.Task] = set()

    @property
    def streams_open(self) -> int:
        """Watches streams this client holds now."""
        return len(self._mux.streams)

    def add(self, feed: mux_core.Feed) -> None:
        feed.handle = asyncio.Event()
        self._do(self._mux.add(feed))

    def remove(self, feed: mux_core.Feed) -> None:
        if not feed.finished:
            self._do(self._mux.remove(feed))

    def request_progress(self, feed: mux_core.Feed) -> None:
        self._do(self._mux.request_progress(feed))

    async def next_response(self, feed: mux_core.Feed) -> watch_pb2.WatchResponse | None:
        """The feed's next response with events; None once it is finished;
        raises its error after its buffered events (see `WatchStreams`)."""
        while True:
            response, actions = self._mux.take(feed)
            self._do(actions)
            if response is not None:
                if response.events:
                    return response
                continue
            if feed.finished:
                return None
            feed.handle.clear()
            await feed.handle.wait()

    async def close(self) -> None:
        """Ends every stream and waits for their readers."""
        self._do(self._mux.close())
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _do(self, actions: list[mux_core.Action]) -> None:
        for action in actions:
            if isinstance(action, mux_core.Wake):
                if action.feed.handle is not None:
                    action.feed.handle.set()
            elif isinstance(action, mux_core.Send):
                action.stream.handle.requests.put_nowait(action.request)
            elif isinstance(action, mux_core.Open):
                line = action.stream.handle = _Line()
                self._open_call(action.stream)
                line.task = asyncio.get_running_loop().create_task(self._read(action.stream))
                self._tasks.add(line.task)
                line.task.add_done_callback(self._tasks.discard)
            else:
                action.stream.handle.close()

    def _open_call(self, stream: mux_core.MuxStream) -> None:
        line = stream.handle
        line.call = self._client.stub("Watch", stream.endpoint).Watches(line.request_iterator())

    async def _read(self, stream: mux_core.MuxStream) -> None:
        line = stream.handle
        while True:
            rpc_error = None
            try:
                async for response in line.call:
                    self._do(self._mux.received(stream, response))
            except grpc.RpcError as error:
                rpc_error = error
            except asyncio.CancelledError:
                if not stream.closed:
                    raise
            delay_s, actions = self._mux.broke(stream, rpc_error)
            self._do(actions)
            if delay_s is None:
                return
            await self._client.retry.async_sleep(delay_s)
            if stream.closed:
                return
            line.renew()
            actions = self._mux.reopen(stream)
            self._open_call(stream)
            self._do(actions)
