"""The open streams of one server, and how they wait on the event loop.

Every stream runs as a task on the server's event loop and holds no thread
while it waits. Watches and watch streams wait on their watch session
(watch_streams.py), lease keepalives on the client's requests
(`until_stopped`), election observes and CRDT subscriptions on a feed of
the node (`serve_feed`, tandemkv.server.feeds): the node's thread that
follows applied state, or the available plane's thread, offers each new
value to the feed and wakes the stream through the loop; the stream sends
the latest value, so a slow client skips values and never gets a stale one
after the last change.

`stop_all` ends every open stream at once when the server stops, instead of
holding the shutdown for its grace period: each stream's `StreamStop` is
set, which wakes the stream waiting on the loop, so every stream ends with
an OK status.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, AsyncIterator, Callable

import grpc
import grpc.aio

from tandemkv import errors
from tandemkv.server.api.edge import abort
from tandemkv.server.feeds import Feed
from tandemkv.server.node.watch_hub import LoopWaker
from tandemkv.server.strong.validation import check_request

log = logging.getLogger(__name__)


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

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[StreamStop] = set()
        self._stopping = False
        # Wakes the streams waiting on feeds: one loop callback per burst
        # of wake-ups, however many streams a change wakes.
        self._waker: LoopWaker | None = None

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

    def serve_feed(self, context: grpc.aio.ServicerContext, request: Any,
                   open_feed: Callable[[Callable[[], None]], Feed]) -> AsyncIterator:
        """`serve` for a feed of the node, `open_feed(wake)`: the value now,
        then the latest after each change, until the feed ends, the client
        goes away or the server stops. The feed is opened on the loop (a
        read of local state, as a stale read is), then the stream waits on
        the loop: no thread, from the first value to the last."""
        return self.serve(context, request, lambda stop: self._fed(open_feed, stop))

    async def _fed(self, open_feed: Callable[[Callable[[], None]], Feed], stop: StreamStop) -> AsyncIterator:
        loop = asyncio.get_running_loop()
        if self._waker is None:
            self._waker = LoopWaker(loop)
        woken = asyncio.Event()
        wake = self._waker.waker_for(woken)
        stop.add_callback(wake)
        feed = open_feed(wake)
        try:
            while not (stop.is_set() or feed.over):
                woken.clear()
                value = feed.take()
                if value is None:
                    await woken.wait()
                else:
                    yield value
        finally:
            feed.close()


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
