"""gRPC servicers for leases, the registry, locks, elections and watches.

Unary RPCs go through `edge.handle` like the KV servicers: validate, check
the deadline, call the node. Three things differ:

- Lock Acquire and Election Campaign wait (`wait_ms`) inside the node; the
  wait is cut so that it ends, and the last proposal after it still fits,
  before the call's deadline (itself capped at DEADLINE_S_MAX).
- Registry Register of a taken name is not an error status: it answers OK
  with `registered=false` and the current owner's claim (value and token),
  which the SDK raises as `AlreadyExists` carrying `.owner` and `.token`.
- Streams (Lease KeepAlive, Election Observe, Watch) are exempt from the
  unary deadline cap, and end when the client goes away (cancel, deadline,
  connection loss) or the server stops: each gets a stop Event set by
  `context.add_callback` and by `StreamStops.stop_all`.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterator

import grpc

from tandemkv import errors, limits
from tandemkv.server.api.edge import abort, handle, node_timeout_s
from tandemkv.server.api.watch_streams import serve_watch_stream
from tandemkv.server.strong.validation import check_request
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import coordination_pb2_grpc, lease_pb2_grpc, watch_pb2, watch_pb2_grpc


log = logging.getLogger(__name__)


class StreamStops:
    """The stop Events of the open streams, so a stopping server ends them
    at once instead of holding its shutdown for the grace period. (The
    number of open streams is held to STREAMS_OPEN_MAX when they arrive, by
    the dispatcher's stream lane.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[threading.Event] = set()
        self._stopping = False

    def open(self, context: grpc.ServicerContext) -> threading.Event:
        """An Event set when this RPC ends (client cancel, deadline,
        connection loss) or the server stops."""
        stop = threading.Event()
        with self._lock:
            self._open.add(stop)
        if not context.add_callback(stop.set):
            stop.set()  # the RPC has already ended
        with self._lock:
            if self._stopping:
                stop.set()
        return stop

    @property
    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def close(self, stop: threading.Event) -> None:
        with self._lock:
            self._open.discard(stop)

    def stop_all(self) -> None:
        with self._lock:
            self._stopping = True
            for stop in self._open:
                stop.set()


def waiting_call(context: grpc.ServicerContext, request, node_call):
    """Runs a lock acquire or campaign with its wait cut to fit the call's
    deadline: each proposal gets a reserve, the wait gets the rest."""
    check_request(request)
    timeout_s = node_timeout_s(context)
    reserve_s = min(limits.CLAIM_PROPOSE_RESERVE_S_MAX, timeout_s * limits.CLAIM_PROPOSE_RESERVE_FRACTION)
    wait_ms_max = max(0, int((timeout_s - 2 * reserve_s) * 1000))
    capped = type(request)()
    capped.CopyFrom(request)
    capped.wait_ms = min(request.wait_ms, wait_ms_max)
    propose_s = reserve_s if capped.wait_ms else timeout_s
    return node_call(capped, timeout_s=propose_s)


def stream_timeout_s(context: grpc.ServicerContext) -> float:
    """One node call inside a stream: what is left of the stream's own
    deadline, capped like a unary call."""
    remaining_s = context.time_remaining()
    if remaining_s is None:
        return limits.DEADLINE_S_MAX
    return max(limits.DEADLINE_S_MIN, min(remaining_s, limits.DEADLINE_S_MAX))


class LeaseServicer(lease_pb2_grpc.LeaseServicer):
    def __init__(self, node, stops: StreamStops):
        self._node = node
        self._stops = stops

    def Grant(self, request, context):
        return handle(context, request, self._node.propose)

    def Revoke(self, request, context):
        return handle(context, request, self._node.propose)

    def TimeToLive(self, request, context):
        return handle(context, request, self._node.query)

    def List(self, request, context):
        return handle(context, request, self._node.query)

    def KeepAlive(self, request_iterator, context):
        """One renewal, one response, per request, until the client closes
        its side; the first failure ends the stream with its status."""
        stop = self._stops.open(context)
        try:
            for request in request_iterator:
                if stop.is_set():
                    return
                check_request(request)
                yield self._node.propose(request, timeout_s=stream_timeout_s(context))
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            _abort_stream(context, error)
        finally:
            self._stops.close(stop)


class RegistryServicer(coordination_pb2_grpc.RegistryServicer):
    def __init__(self, node):
        self._node = node

    def Register(self, request, context):
        return handle(context, request, self._node.propose)

    def Whereis(self, request, context):
        return handle(context, request, self._node.query)

    def Unregister(self, request, context):
        return handle(context, request, self._node.propose)

    def List(self, request, context):
        return handle(context, request, self._node.query)


class LockServicer(coordination_pb2_grpc.LockServicer):
    def __init__(self, node):
        self._node = node

    def Acquire(self, request, context):
        return handle(context, request, lambda r, timeout_s: waiting_call(
            context, r, self._node.lock_acquire))

    def Release(self, request, context):
        return handle(context, request, self._node.propose)


class ElectionServicer(coordination_pb2_grpc.ElectionServicer):
    def __init__(self, node, stops: StreamStops):
        self._node = node
        self._stops = stops

    def Campaign(self, request, context):
        return handle(context, request, lambda r, timeout_s: waiting_call(
            context, r, self._node.campaign))

    def Proclaim(self, request, context):
        return handle(context, request, self._node.propose)

    def Resign(self, request, context):
        return handle(context, request, self._node.propose)

    def Leader(self, request, context):
        return handle(context, request, self._node.query)

    def Observe(self, request: co.LeaderRequest, context) -> Iterator[co.LeaderResponse]:
        yield from _stream(self._stops, context, request,
                           lambda stop: self._node.observe(request.election, stop=stop))


class WatchServicer(watch_pb2_grpc.WatchServicer):
    def __init__(self, node, stops: StreamStops):
        self._node = node
        self._stops = stops

    def Watch(self, request: watch_pb2.WatchRequest, context) -> Iterator[watch_pb2.WatchResponse]:
        yield from _stream(self._stops, context, request,
                           lambda stop: self._node.watch(request, stop=stop))

    def Watches(self, requests, context) -> Iterator[watch_pb2.WatchStreamResponse]:
        stop = self._stops.open(context)
        try:
            yield from serve_watch_stream(self._node, requests, stop)
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            _abort_stream(context, error)
        finally:
            stop.set()
            self._stops.close(stop)


def _stream(stops: StreamStops, context, request, open_stream):
    """Validates `request`, then relays `open_stream(stop)` until it ends,
    the client goes away or the server stops."""
    stop = stops.open(context)
    try:
        check_request(request)
        for response in open_stream(stop):
            if stop.is_set():
                return
            yield response
    except Exception as error:  # noqa: BLE001 - every error becomes a status
        _abort_stream(context, error)
    finally:
        stop.set()
        stops.close(stop)


def _abort_stream(context: grpc.ServicerContext, error: BaseException) -> None:
    """Ends a stream with `error`'s status. A client that went away (cancel,
    deadline, connection loss) is how streams end, not an error: nothing is
    logged and there is no one left to answer."""
    if isinstance(error, grpc.RpcError) and not context.is_active():
        return
    if not isinstance(error, errors.TandemKVError):
        log.exception("unexpected error in a stream")
    abort(context, error)
