"""The open streams of one server, and the bridge that serves a node's
blocking stream from the event loop.

Every stream runs as a task on the server's event loop. Watches, watch
streams and lease keepalives wait there without a thread (see
watch_streams.py and coordination_servicers.py). Election observes and CRDT
subscriptions are still blocking generators of the node: `relay` runs each
on a thread of a pool of its own while the stream is open, held to
THREADED_STREAMS_OPEN_MAX by the dispatcher's lane, so they can never take
the threads that unary calls use.

`stop_all` ends every open stream at once when the server stops, instead of
holding the shutdown for its grace period: each stream's `StreamStop` is
set, which a blocking generator sees at its next look and which wakes a
stream waiting on the loop, so every stream ends with an OK status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from typing import Any, AsyncIterator, Callable, Iterator

import grpc
import grpc.aio

from tandemkv import errors
from tandemkv.server.api.edge import abort
from tandemkv.server.node.watch_hub import LoopWaker
from tandemkv.server.strong.validation import check_request

log = logging.getLogger(__name__)

_END = object()


class StreamStop(threading.Event):
    """A stream's stop flag: a threading.Event that also calls back (say, to
    wake a stream waiting on the loop) when set."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: list[Callable[[], None]] = []
        self._callbacks_lock = threading.Lock()

    def add_callback(self, callback: Callable[[], None]) -> None:
        with self._callbacks_lock:
            self._callbacks.append(callback)
        if self.is_set():
            callback()

    def set(self) -> None:
        super().set()
        with self._callbacks_lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()


class StreamStops:
    """The stop flags of the open streams."""

    def __init__(self, threads: int = 1) -> None:
        self._lock = threading.Lock()
        self._open: set[StreamStop] = set()
        self._stopping = False
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads,
                                                           thread_name_prefix="tandemkv-stream")

    def open(self) -> StreamStop:
        """The stop flag of a new stream; set when the server stops."""
        stop = StreamStop()
        with self._lock:
            self._open.add(stop)
            if self._stopping:
                stop.set()
        return stop

    def close(self, stop: StreamStop) -> None:
        stop.set()
        with self._lock:
            self._open.discard(stop)

    @property
    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def stop_all(self) -> None:
        with self._lock:
            self._stopping = True
            opened = list(self._open)
        for stop in opened:
            stop.set()
        self._pool.shutdown(wait=False)

    async def serve(self, context: grpc.aio.ServicerContext, request: Any,
                    open_stream: Callable[[StreamStop], AsyncIterator]) -> AsyncIterator:
        """Validates `request` (None: nothing to validate), then yields what
        `open_stream(stop)` yields until it ends, the client goes away or
        the server stops; an error ends the stream with its status."""
        stop = self.open()
        try:
            if request is not None:
                check_request(request)
            async for item in open_stream(stop):
                yield item
        except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            await abort_stream(context, error)
        finally:
            self.close(stop)

    def relay(self, context: grpc.aio.ServicerContext, request: Any,
              open_stream: Callable[[StreamStop], Iterator]) -> AsyncIterator:
        """`serve` for the node's blocking generator `open_stream(stop)`,
        advanced on this server's stream threads."""
        return self.serve(context, request, lambda stop: self._bridged(open_stream, stop))

    async def _bridged(self, open_stream: Callable[[StreamStop], Iterator], stop: StreamStop) -> AsyncIterator:
        loop = asyncio.get_running_loop()
        iterator = await loop.run_in_executor(self._pool, lambda: iter(open_stream(stop)))
        while not stop.is_set():
            item = await loop.run_in_executor(self._pool, next, iterator, _END)
            if item is _END:
                return
            yield item


async def until_stopped(stop: StreamStop, items: AsyncIterator) -> AsyncIterator:
    """What `items` (a client's request stream) yields, until it ends or
    `stop` is set, whichever comes first."""
    stopped = asyncio.Event()
    stop.add_callback(LoopWaker(asyncio.get_running_loop()).waker_for(stopped))
    iterator = items.__aiter__()
    stop_wait = asyncio.ensure_future(stopped.wait())
    item: asyncio.Future | None = None
    try:
        while not stop.is_set():
            item = asyncio.ensure_future(iterator.__anext__())
            await asyncio.wait((item, stop_wait), return_when=asyncio.FIRST_COMPLETED)
            if not item.done():
                return
            try:
                yield item.result()
            except StopAsyncIteration:
                return
    finally:
        stop_wait.cancel()
        if item is not None:
            if item.done():
                if not item.cancelled():
                    item.exception()  # retrieved: the stream is over either way
            else:
                item.cancel()


async def abort_stream(context: grpc.aio.ServicerContext, error: BaseException) -> None:
    """Ends a stream with `error`'s status. A client that went away (cancel,
    deadline, connection loss) is how streams end, not an error: nothing is
    logged and there is no one left to answer."""
    if isinstance(error, grpc.RpcError) and (context.cancelled() or context.done()):
        return
    if not isinstance(error, errors.TandemKVError):
        log.exception("unexpected error in a stream")
    await abort(context, error)
