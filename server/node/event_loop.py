"""`NodeLoop`: the event loop a node's asyncio parts run on, in a thread of
its own: the best-effort pub/sub plane, the presence plane, and the gRPC
server that serves the node (server/api/server.py builds its `grpc.aio`
server on the loop of the node it serves), so the servicers and the planes
share one loop and a call never hops between loops.

Its default executor holds the call threads: what a servicer runs off the
loop because it blocks in the node (lock and campaign waits, CRDT catalog
changes), at most `call_threads` at once.

Other threads reach the loop through `run` (a coroutine) and `call` (a
plain function, for the planes' methods, which are not thread-safe and
must run on their loop); asyncio code on another loop through
`run_async` and `call_async`, which wait without holding a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import Any, Awaitable, Callable, TypeVar

from tandemkv import limits
from tandemkv.errors import Unavailable

T = TypeVar("T")

# Longest `close` waits for the loop's threads to end.
LOOP_STOP_WAIT_S = 10.0
# How often a thread waiting on the loop looks whether the loop still runs.
RUN_CHECK_S = 1.0


class NodeLoop:
    def __init__(self, call_threads: int = limits.GRPC_CALL_THREADS_MAX, name: str = "tandemkv-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
            max_workers=call_threads, thread_name_prefix="tandemkv-rpc"))
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self.closed = False

    def on_loop(self) -> bool:
        """Whether the caller runs on this loop's thread."""
        return threading.get_ident() == self._thread.ident

    def run(self, coroutine: Awaitable[T], timeout_s: float | None = None) -> T:
        """Runs `coroutine` on the loop and waits for its result (from
        another thread: on the loop itself, await it instead). A loop that
        has stopped gives `Unavailable`, never a wait without end."""
        assert not self.on_loop(), "NodeLoop.run would wait on its own thread"
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)  # type: ignore[arg-type]
        except RuntimeError as error:  # the loop is closed
            coroutine.close()  # type: ignore[attr-defined]
            raise Unavailable("the node has stopped") from error
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            slice_s = RUN_CHECK_S if deadline is None else min(RUN_CHECK_S, max(0.0, deadline - time.monotonic()))
            try:
                return future.result(slice_s)
            except concurrent.futures.TimeoutError:
                if not self._thread.is_alive():
                    future.cancel()
                    raise Unavailable("the node has stopped") from None
                if deadline is not None and time.monotonic() >= deadline:
                    future.cancel()
                    raise

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the loop, its result or its exception here;
        called on the loop, it runs at once."""
        if self.on_loop():
            return function(*args)
        return self.run(_called(function, args))

    async def run_async(self, coroutine: Awaitable[T]) -> T:
        """Awaits `coroutine` on this loop from any loop: directly on this
        one, else through a future, holding no thread."""
        if self.on_loop():
            return await coroutine
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)  # type: ignore[arg-type]
        except RuntimeError as error:  # the loop is closed
            coroutine.close()  # type: ignore[attr-defined]
            raise Unavailable("the node has stopped") from error
        return await asyncio.wrap_future(future)

    async def call_async(self, function: Callable[..., T], *args: Any) -> T:
        """`call` for asyncio callers: at once on this loop, else a hop
        that holds no thread."""
        if self.on_loop():
            return function(*args)
        return await self.run_async(_called(function, args))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.run(self.loop.shutdown_default_executor(), LOOP_STOP_WAIT_S)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(LOOP_STOP_WAIT_S)
        if not self._thread.is_alive():
            self.loop.close()


async def _called(function: Callable[..., T], args: tuple) -> T:
    return function(*args)
