"""The two drivers of the pipeline (`_pipeline`): they send flights and
wait for answers; the `Coalescer` decides what goes in which flight.

`ThreadPipeline` (for `Client`, used from many threads): a caller whose
operation goes at once sends it itself, as a blocking plain call; flights
formed from a queue are sent with gRPC's non-blocking `.future()`, and the
callback that lands one starts the next, so no caller's thread ever
carries other callers' work. Callers that queued wait on a
`concurrent.futures.Future`.

`AsyncPipeline` (for `AsyncClient`, used from many tasks): the same, with
a task per flight formed from a queue and an `asyncio.Future` per queued
caller.

Both take the client's plain send (`send_plain(endpoint, operation,
timeout_s)`) and its stubs (`stub(service, endpoint)`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Awaitable, Callable

import grpc

from tandemkv.client import _operations as ops
from tandemkv.client._pipeline import (
    PIPELINE_HANDOVER_S_MAX, Coalescer, Flight, Pending, PipelineRpcError, not_sent,
)

Stub = Callable[[str, str], Any]


class _ThreadWaiter:
    def __init__(self) -> None:
        self.future: concurrent.futures.Future = concurrent.futures.Future()

    def claim(self) -> bool:
        return self.future.set_running_or_notify_cancel()

    def resolve(self, response: Any) -> None:
        if not self.future.done():
            self.future.set_result(response)

    def reject(self, error: grpc.RpcError) -> None:
        if not self.future.done():
            self.future.set_exception(error)


def _method(stub: Stub, flight: Flight) -> tuple[Any, Any]:
    """The RPC method of `flight` and its request."""
    if flight.batched:
        return stub("Batch", flight.endpoint).Call, flight.request()
    operation = flight.pendings[0].operation
    return getattr(stub(operation.service, flight.endpoint), operation.method), operation.request


class ThreadPipeline:
    def __init__(self, stub: Stub, send_plain: Callable[[str, ops.Operation, float], Any],
                 coalescer: Coalescer | None = None):
        self.coalescer = coalescer or Coalescer()
        self._stub = stub
        self._send_plain = send_plain
        self.closed = False

    def send(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        """One attempt of `operation`: its response, or the `grpc.RpcError`
        its own call would have raised."""
        pending = Pending(endpoint, operation, timeout_s, _ThreadWaiter())
        if self.coalescer.submit(pending) is not None:
            try:
                return self._send_plain(endpoint, operation, timeout_s)
            finally:
                self._start(self.coalescer.landed(endpoint))
        future = pending.waiter.future  # type: ignore[attr-defined]
        try:
            return future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            pass
        if future.cancel():  # still queued: it never left
            raise pending.gave_up() from None
        try:
            return future.result(timeout=PIPELINE_HANDOVER_S_MAX)
        except concurrent.futures.TimeoutError:
            raise pending.gave_up() from None

    def close(self) -> None:
        """Flights formed from now on are not sent (the channels are closing)."""
        self.closed = True

    def _start(self, flight: Flight | None) -> None:
        while flight is not None and self.closed:
            flight.fail(not_sent(flight.endpoint, "the client is closed"))
            flight = self.coalescer.landed(flight.endpoint)
        if flight is None:
            return
        method, request = _method(self._stub, flight)
        try:
            call = method.future(request, timeout=flight.timeout_s())
        except Exception as error:  # noqa: BLE001 - a closed channel refuses at once
            self._land(flight, error)
            return
        call.add_done_callback(lambda done: self._landed(flight, done))

    def _landed(self, flight: Flight, call: Any) -> None:
        # Runs on a gRPC thread: hands the answers over, then starts the
        # next flight (non-blocking).
        try:
            response = call.result()
        except Exception as error:  # noqa: BLE001 - RpcError, or the call was cancelled
            self._land(flight, error)
            return
        flight.settle(response)
        self._start(self.coalescer.landed(flight.endpoint))

    def _land(self, flight: Flight, error: BaseException) -> None:
        self.coalescer.batch_failed(flight, _as_rpc_error(error, flight.endpoint))
        self._start(self.coalescer.landed(flight.endpoint))


class _LoopWaiter:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future = loop.create_future()

    def claim(self) -> bool:
        return not self.future.done()

    def resolve(self, response: Any) -> None:
        if not self.future.done():
            self.future.set_result(response)

    def reject(self, error: grpc.RpcError) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class AsyncPipeline:
    def __init__(self, stub: Stub, send_plain: Callable[[str, ops.Operation, float], Awaitable[Any]],
                 coalescer: Coalescer | None = None):
        self.coalescer = coalescer or Coalescer()
        self._stub = stub
        self._send_plain = send_plain
        self._flights: set[asyncio.Task] = set()  # held so that they are not collected
        self.closed = False

    async def send(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        """One attempt of `operation`; see `ThreadPipeline.send`."""
        pending = Pending(endpoint, operation, timeout_s, _LoopWaiter(asyncio.get_running_loop()))
        if self.coalescer.submit(pending) is not None:
            try:
                return await self._send_plain(endpoint, operation, timeout_s)
            finally:
                self._land_soon(endpoint)
        # A cancelled caller cancels the future it awaits: a queued one is then not sent.
        timer = asyncio.get_running_loop().call_later(timeout_s, self._overdue, pending, True)
        try:
            return await pending.waiter.future  # type: ignore[attr-defined]
        finally:
            timer.cancel()

    @staticmethod
    def _overdue(pending: Pending, first: bool) -> None:
        """The caller's attempt timeout passed: a queued operation fails as
        not sent (a flight formed later skips it); one in a flight gets
        PIPELINE_HANDOVER_S_MAX more, then fails with an unknown outcome."""
        if pending.waiter.future.done():  # type: ignore[attr-defined]
            return
        if pending.sent and first:
            asyncio.get_running_loop().call_later(PIPELINE_HANDOVER_S_MAX, AsyncPipeline._overdue, pending, False)
            return
        pending.waiter.reject(pending.gave_up())

    def _start(self, flight: Flight | None) -> None:
        while flight is not None and self.closed:
            flight.fail(not_sent(flight.endpoint, "the client is closed"))
            flight = self.coalescer.landed(flight.endpoint)
        if flight is None:
            return
        task = asyncio.get_running_loop().create_task(self._fly(flight))
        self._flights.add(task)
        task.add_done_callback(self._flights.discard)

    async def _fly(self, flight: Flight) -> None:
        method, request = _method(self._stub, flight)
        try:
            response = await method(request, timeout=flight.timeout_s())
        except asyncio.CancelledError as error:
            # The loop is ending: what waits behind this flight is not sent.
            self.coalescer.batch_failed(flight, _as_rpc_error(error, flight.endpoint))
            while (queued := self.coalescer.landed(flight.endpoint)) is not None:
                queued.fail(not_sent(flight.endpoint, "the event loop is ending"))
            raise
        except Exception as error:  # noqa: BLE001 - every failure lands
            self.coalescer.batch_failed(flight, _as_rpc_error(error, flight.endpoint))
        else:
            flight.settle(response)
        self._land_soon(flight.endpoint)

    def _land_soon(self, endpoint: str) -> None:
        """The flight to `endpoint` has landed; the next one forms after the
        callers it answered have run. They asked again in that turn, so
        their next operations join the next flight instead of the first of
        them going alone while the rest wait behind it (which halved the
        rate at many calls in flight: a batch, one call, a batch, ...)."""
        asyncio.get_running_loop().call_soon(lambda: self._start(self.coalescer.landed(endpoint)))

    def closing(self) -> None:
        """Flights formed from now on are not sent (the channels are closing)."""
        self.closed = True

    async def close(self) -> None:
        """Waits for the flights in the air (their channels are closing)."""
        self.closed = True
        if self._flights:
            await asyncio.wait(set(self._flights), timeout=PIPELINE_HANDOVER_S_MAX)


def _as_rpc_error(error: BaseException, endpoint: str) -> grpc.RpcError:
    if isinstance(error, grpc.RpcError) and hasattr(error, "code"):
        return error
    # A cancelled call (the client is closing): it may have reached the server.
    return PipelineRpcError(grpc.StatusCode.CANCELLED, f"the call to {endpoint} was cancelled ({error!r})")
