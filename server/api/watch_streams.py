"""Watch.Watch and Watch.Watches, served on the event loop without a
thread: each stream holds one `WatchSession` of the node, whose watches wake
the stream's task through the loop (`LoopWaker`: one callback per loop and
burst of wake-ups, whatever the number of watches), and the task polls the
session, which never blocks on anything but a bounded history read.

Watch.Watches carries many watches on one stream: its requests (create and
cancel, by watch ids the client picks) are read by a second task, and the
stream ends when the client closes its side; every
watch gets a `created` (or a `canceled` with the reason its create was
refused), then its responses in revision order; a cancel is answered
`canceled`. A progress request (etcd's WatchProgressRequest) is answered
by one response with watch id -1 for the whole stream, now and, if it set
an interval, every interval after: the revision every caught-up watch has
seen, and the ids of those not caught up yet. A malformed request ends the
stream with INVALID_ARGUMENT; a refused create ends only its watch.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import AsyncIterable, AsyncIterator, Callable

import grpc

from tandemkv import errors
from tandemkv.server.api.edge import status_for_error
from tandemkv.server.api.streams import StreamStop
from tandemkv.server.node.watch_hub import LoopWaker
from tandemkv.server.node.watches import STREAM_PROGRESS_WATCH_ID
from tandemkv.v1 import watch_pb2

# Longest one wait of a stream's task before it looks at its stop flag.
STREAM_WAIT_SLICE_S = 0.5


class _Woken:
    """An asyncio.Event the node's threads can set, through the loop."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.wake = LoopWaker(asyncio.get_running_loop()).waker_for(self.event)

    async def wait(self, due: float | None) -> None:
        wait_s = STREAM_WAIT_SLICE_S if due is None else min(STREAM_WAIT_SLICE_S, due - time.monotonic())
        try:
            await asyncio.wait_for(self.event.wait(), max(0.0, wait_s))
        except TimeoutError:
            pass


async def serve_watch(node, request: watch_pb2.WatchRequest,
                      stop: StreamStop) -> AsyncIterator[watch_pb2.WatchResponse]:
    """The responses of one Watch.Watch until `stop` is set or the watch
    ends (compacted)."""
    woken = _Woken()
    stop.add_callback(woken.wake)
    session = node.watch_session(woken.wake)
    try:
        session.create(0, request)
        while not stop.is_set() and session.open_count:
            woken.event.clear()
            ready, due = session.poll()
            for _, response in ready:
                yield response
            if not ready:
                await woken.wait(due)
    finally:
        session.close()


async def serve_watch_stream(node, requests: AsyncIterable[watch_pb2.WatchStreamRequest],
                             stop: StreamStop, authorize: Callable[[watch_pb2.WatchRequest], object] | None = None,
                             ) -> AsyncIterator[watch_pb2.WatchStreamResponse]:
    """The responses of one Watch.Watches stream until `stop` is set;
    raises the InvalidArgument of a malformed request. `authorize(create)`
    raises the refusal of one watch (auth: the stream's caller lacks read
    on its keys), which cancels that watch only."""
    woken = _Woken()
    stop.add_callback(woken.wake)
    session = node.watch_session(woken.wake)
    control: collections.deque[watch_pb2.WatchStreamResponse] = collections.deque()
    failure: list[BaseException] = []
    requests_over = asyncio.Event()

    async def read_requests() -> None:
        try:
            async for request in requests:
                control.extend(_apply_request(session, request, authorize))
                woken.event.set()
        except errors.InvalidArgument as error:  # a malformed request ends the stream
            failure.append(error)
        except grpc.RpcError:
            pass  # the client went away
        finally:
            requests_over.set()
            woken.event.set()

    reader = asyncio.ensure_future(read_requests())
    try:
        while not stop.is_set():
            woken.event.clear()
            if failure:
                raise failure[0]
            if requests_over.is_set() and not control:
                # The client closed its side (as etcd's watch streams do, a
                # stream ends with its requests): nothing more can be asked
                # of it, and a client that moved on must not hold its slot.
                return
            while control:
                yield control.popleft()
            ready, due = session.poll()
            progress = session.stream_progress()  # after the poll: it covers what the poll took
            for watch_id, response in ready:
                yield watch_pb2.WatchStreamResponse(watch_id=watch_id, response=response)
            if progress is not None:
                yield watch_pb2.WatchStreamResponse(watch_id=STREAM_PROGRESS_WATCH_ID,
                                                    response=progress.response,
                                                    progress_excluded=progress.excluded)
            if not ready and progress is None and not control and not failure:
                await woken.wait(due)
    finally:
        reader.cancel()
        session.close()


def _apply_request(session, request: watch_pb2.WatchStreamRequest,
                   authorize: Callable[[watch_pb2.WatchRequest], object] | None = None,
                   ) -> list[watch_pb2.WatchStreamResponse]:
    kind = request.WhichOneof("kind")
    if kind == "create":
        watch_id = request.create.watch_id
        try:
            if authorize is not None:
                authorize(request.create.request)
            session.create(watch_id, request.create.request)
        except errors.TandemKVError as error:
            code, message, _ = status_for_error(error)
            return [watch_pb2.WatchStreamResponse(watch_id=watch_id, canceled=True, cancel_reason=message,
                                                  cancel_code=code.value[0])]
        return [watch_pb2.WatchStreamResponse(watch_id=watch_id, created=True)]
    if kind == "cancel":
        watch_id = request.cancel.watch_id
        if session.cancel(watch_id):
            return [watch_pb2.WatchStreamResponse(watch_id=watch_id, canceled=True, cancel_reason="canceled")]
        return [watch_pb2.WatchStreamResponse(
            watch_id=watch_id, canceled=True, cancel_reason=f"no open watch has id {watch_id}",
            cancel_code=grpc.StatusCode.NOT_FOUND.value[0])]
    if kind == "progress":  # answered by the stream's next poll
        session.request_progress(request.progress.interval_ms)
        return []
    raise errors.InvalidArgument("a WatchStreamRequest sets none of create, cancel and progress; set one")
