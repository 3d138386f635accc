"""Watch.Watches: many watches on one stream.

The stream's requests (create and cancel, by watch ids the client picks)
are read by a thread of their own; its responses are sent from one
`WatchSession` of the node, which wakes this stream's sender when any of
its watches has something. Every watch gets a `created` (or a `canceled`
with the reason its create was refused), then its responses in revision
order; a cancel is answered `canceled`. A malformed request ends the
stream with INVALID_ARGUMENT; a refused create ends only its watch.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Iterable, Iterator

import grpc

from tandemkv import errors
from tandemkv.server.api.edge import status_for_error
from tandemkv.v1 import watch_pb2

# Longest one wait of the sender before it looks at the stream's stop flag.
SENDER_WAIT_SLICE_S = 0.5


def serve_watch_stream(node, requests: Iterable[watch_pb2.WatchStreamRequest],
                       stop: threading.Event) -> Iterator[watch_pb2.WatchStreamResponse]:
    """The responses of one Watch.Watches stream until `stop` is set;
    raises the InvalidArgument of a malformed request."""
    woken = threading.Event()
    session = node.watch_session(woken.set)
    control: collections.deque[watch_pb2.WatchStreamResponse] = collections.deque()
    failure: list[BaseException] = []

    def read_requests() -> None:
        try:
            for request in requests:
                if stop.is_set():
                    return
                control.extend(_apply_request(session, request))
                woken.set()
        except errors.InvalidArgument as error:  # a malformed request ends the stream
            failure.append(error)
        except grpc.RpcError:
            pass  # the client went away
        finally:
            woken.set()

    reader = threading.Thread(target=read_requests, name="watch-stream-requests", daemon=True)
    reader.start()
    try:
        while not stop.is_set():
            woken.clear()
            if failure:
                raise failure[0]
            while control:
                yield control.popleft()
            ready, due = session.poll()
            for watch_id, response in ready:
                yield watch_pb2.WatchStreamResponse(watch_id=watch_id, response=response)
            if not ready:
                wait_s = SENDER_WAIT_SLICE_S if due is None else due - time.monotonic()
                woken.wait(max(0.0, min(wait_s, SENDER_WAIT_SLICE_S)))
    finally:
        stop.set()
        session.close()


def _apply_request(session, request: watch_pb2.WatchStreamRequest) -> list[watch_pb2.WatchStreamResponse]:
    kind = request.WhichOneof("kind")
    if kind == "create":
        watch_id = request.create.watch_id
        try:
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
    raise errors.InvalidArgument("a WatchStreamRequest sets neither create nor cancel; set one")
