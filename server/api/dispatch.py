"""How a call reaches a servicer: every RPC of every service the node
serves, registered from the service descriptors (so no method is forgotten),
admitted or refused on arrival by its lane, and decoded inside the handler.

Bytes in: grpcio hands each handler the request's raw bytes (no
deserializer), and `wire.decode` turns them into the request message, so
malformed bytes are INVALID_ARGUMENT with a message, counted, and never a
traceback or leaked memory (grpcio's own decoding failure is all three).
Streaming methods are admitted when grpcio looks them up and refused
before anything of them is read; grpcio then calls their handler at once,
so it always runs and always releases its slot. Unary methods are
registered unary (fewer event loop turns per call than a unary call read
as a stream): grpcio reads the one message, at most GRPC_MESSAGE_BYTES_MAX,
before it runs the handler, and skips the handler of a call cancelled
before that, so a unary call takes its slot in the handler. Every handler is a
coroutine (or an async generator) on the server's event loop: a call that
waits on the node awaits it, or runs on the loop's executor (the server's
call threads) when the node's call blocks.

Lanes, each held to a named limit and counted when the call is looked up
(on the event loop, before anything else runs for it):
- operator: Health.Check, Cluster.Status and Cluster.Members, held to
  OPERATOR_RPCS_MAX apart from the other lanes and answered on the loop
  itself, so an operator can still see an overloaded node; and
  Maintenance.Snapshot (a backup, which works off the loop);
- streams: every client- or server-streaming RPC (watches, watch streams,
  keepalives, election observes, CRDT subscriptions, health watches,
  reflection), which hold no thread while they wait: held to
  STREAMS_OPEN_MAX, a memory bound;
- peers: the streams other members open to this node (the pub/sub relay),
  held to PEER_STREAMS_OPEN_MAX apart from the clients' streams;
- calls: every other RPC, held to CONCURRENT_RPCS_MAX.
A call over its lane's limit is answered RESOURCE_EXHAUSTED: a stream by a
refusal that reads nothing, a unary call once its message is read.

Auth: once admitted and decoded, every call asks the gate (the node's
`auth.gate.check_call`, server/api/auth_calls.py) before its handler runs:
UNAUTHENTICATED without credentials, PERMISSION_DENIED naming the
permission missing. A client-streaming call is asked with no request (its
messages are not read yet); a server-streaming one with its request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import threading
import time
from typing import Any, AsyncIterator, Callable, Iterable

import grpc
import grpc.aio
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from tandemkv import errors, limits
from tandemkv.server.api.edge import abort
from tandemkv.server.api.wire import MalformedRequest, decode
from tandemkv.server.observe.context import bind_request

# At most one log line per this many seconds about malformed requests (the
# count goes on; the line says how many came since the last one).
MALFORMED_LOG_INTERVAL_S = 60.0

LANE_CALLS = "calls"
LANE_STREAMS = "streams"
LANE_OPERATOR = "operator"
LANE_PEERS = "peers"

# Streams other members open to this node, in a lane of their own; and presence's
# frames from them (a node that clients keep busy must still hear its peers' heartbeats).
PEER_METHODS = frozenset({"/tandemkv.v1.PubSub/Relay", "/tandemkv.v1.Presence/Exchange"})

OPERATOR_METHODS = frozenset({
    "/grpc.health.v1.Health/Check",
    "/tandemkv.v1.Cluster/Status",
    "/tandemkv.v1.Cluster/Members",
    "/tandemkv.v1.Maintenance/Snapshot",
})

log = logging.getLogger(__name__)


class Admission:
    """In-flight calls per lane against each lane's limit."""

    def __init__(self, calls_max: int, streams_max: int, operator_max: int,
                 peers_max: int = limits.PEER_STREAMS_OPEN_MAX) -> None:
        self._lock = threading.Lock()
        self._limits = {LANE_CALLS: calls_max, LANE_STREAMS: streams_max, LANE_OPERATOR: operator_max,
                        LANE_PEERS: peers_max}
        self._open = dict.fromkeys(self._limits, 0)

    def enter(self, lane: str) -> str | None:
        """Takes a slot in `lane`, or says why not."""
        with self._lock:
            if self._open[lane] >= self._limits[lane]:
                return _refusal_message(lane, self._limits[lane])
            self._open[lane] += 1
        return None

    def leave(self, lane: str) -> None:
        with self._lock:
            assert self._open[lane] > 0, f"{lane} lane left more often than entered"
            self._open[lane] -= 1

    def open_count(self, lane: str) -> int:
        with self._lock:
            return self._open[lane]


def _refusal_message(lane: str, limit: int) -> str:
    if lane == LANE_STREAMS:
        return (f"this node has STREAMS_OPEN_MAX={limit} streams open (watches, lease keepalives, "
                "election observes, CRDT subscriptions); close streams you no longer need, put many "
                "watches on one Watch.Watches stream, or connect to another node")
    if lane == LANE_PEERS:
        return (f"this node has PEER_STREAMS_OPEN_MAX={limit} relay streams from other members open; "
                "a member reconnecting will retry")
    if lane == LANE_OPERATOR:
        return (f"this node is serving OPERATOR_RPCS_MAX={limit} health and status calls; "
                "poll less often")
    return (f"this node is serving CONCURRENT_RPCS_MAX={limit} calls; retry with backoff or "
            "connect to another node")


class MalformedRequests:
    """Counts malformed requests by method; logs one line at most every
    MALFORMED_LOG_INTERVAL_S, never a traceback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_method: dict[str, int] = {}
        self._unlogged = 0
        self._logged_at = float("-inf")

    def count(self, method: str, error: MalformedRequest) -> None:
        with self._lock:
            self.by_method[method] = self.by_method.get(method, 0) + 1
            self._unlogged += 1
            now = time.monotonic()
            if now - self._logged_at < MALFORMED_LOG_INTERVAL_S:
                return
            self._logged_at, unlogged, self._unlogged = now, self._unlogged, 0
        log.warning("%d malformed request(s) answered INVALID_ARGUMENT since the last report "
                    "(%d in all); latest on %s: %s", unlogged, self.total, method, error.message)

    @property
    def total(self) -> int:
        return sum(self.by_method.values())


@dataclasses.dataclass(frozen=True)
class Service:
    """A service descriptor and the object serving it (one method per RPC)."""

    descriptor: ServiceDescriptor
    servicer: Any


class Dispatcher(grpc.GenericRpcHandler):
    """The one generic handler of the server: looks up the method, admits
    the call to its lane or refuses it, and wraps the servicer's method."""

    def __init__(self, services: Iterable[Service], admission: Admission,
                 malformed: MalformedRequests, observer: Callable | None = None,
                 gate: Callable[[str, Any, Any], Any] | None = None) -> None:
        self._admission = admission
        # Asked before every handler: gate(path, request, context) raises
        # Unauthenticated or PermissionDenied; None: every call is allowed.
        self._gate = gate
        self._malformed = malformed
        # Told of every call as it starts: observer(path, context, streaming)
        # (the node's metrics and spans, server/observe/); None: not observed.
        self._observer = observer
        self._methods: dict[str, tuple[str, grpc.RpcMethodHandler]] = {}
        for service in services:
            for method in service.descriptor.methods:
                path = f"/{service.descriptor.full_name}/{method.name}"
                lane = _lane(path, method)
                call = _servicer_method(service.servicer, method)
                function = self._wrap(path, lane, method, call)
                if method.server_streaming:
                    registered = grpc.stream_stream_rpc_method_handler
                elif method.client_streaming:
                    registered = grpc.stream_unary_rpc_method_handler
                else:
                    # Read as one message: a unary call costs fewer event
                    # loop turns than the same call read as a stream.
                    registered = grpc.unary_unary_rpc_method_handler
                self._methods[path] = (lane, registered(function, response_serializer=_serialize))

    @property
    def method_paths(self) -> list[str]:
        return sorted(self._methods)

    def service(self, handler_call_details):
        found = self._methods.get(handler_call_details.method)
        if found is None:
            return None
        lane, handler = found
        if handler.request_streaming is False and handler.response_streaming is False:
            return handler  # admitted in the handler, once its message is read
        refused = self._admission.enter(lane)
        if refused is None:
            return handler

        async def refuse(_requests, context):
            await abort(context, errors.ResourceExhausted(refused))
        return grpc.stream_stream_rpc_method_handler(refuse)

    def _wrap(self, path: str, lane: str, method: MethodDescriptor, call: Callable):
        request_class = message_factory.GetMessageClass(method.input_type)
        admission, malformed, observer, gate = self._admission, self._malformed, self._observer, self._gate
        streaming = method.client_streaming or method.server_streaming

        async def admitted(request, context) -> None:
            if gate is None:
                return
            try:
                gate(path, None if method.client_streaming else request, context)
            except (errors.Unauthenticated, errors.PermissionDenied) as refusal:
                await abort(context, refusal)

        def decoded(raw: bytes):
            try:
                return decode(request_class, raw)
            except MalformedRequest as error:
                malformed.count(path, error)
                raise

        async def decoded_stream(raw_requests) -> AsyncIterator:
            try:
                async for raw in raw_requests:
                    yield decoded(raw)
            except grpc.RpcError:
                return  # the client went away: for the servicer, the requests end

        async def argument(raw_requests, context):
            if method.client_streaming:
                return decoded_stream(raw_requests)
            async for raw in raw_requests:
                return decoded(raw)
            await abort(context, errors.InvalidArgument(
                f"{path} takes exactly one request message; the client sent none"))

        async def unary(raw: bytes, context):
            # grpcio reads a unary call's message before it runs the handler
            # and skips the handler for a call cancelled before that, so the
            # slot is taken here, where it is certain to be given back.
            if observer is not None:
                observer(path, context, streaming)
            refused = admission.enter(lane)
            if refused is not None:
                await abort(context, errors.ResourceExhausted(refused))
            try:
                request = decoded(raw)
                bind_request(request)  # its log lines carry its request id
                await admitted(request, context)
                return await call(request, context)
            except errors.InvalidArgument as error:  # a malformed request
                await abort(context, error)
            finally:
                admission.leave(lane)

        async def unary_response(raw_requests, context):
            if observer is not None:
                observer(path, context, streaming)
            try:
                request = await argument(raw_requests, context)
                await admitted(request, context)
                return await call(request, context)
            except errors.InvalidArgument as error:  # a malformed request among them
                await abort(context, error)
            finally:
                admission.leave(lane)

        async def stream_response(raw_requests, context):
            # A stream the client cancels is cancelled inside grpcio's write
            # of a response, and the generators are left suspended, not
            # closed: so the slot is given back, and the servicer's
            # generator closed (its finally blocks run), when the call is
            # done, not when the generators are collected.
            if observer is not None:
                observer(path, context, streaming)
            release = _once(lambda: admission.leave(lane))
            context.add_done_callback(lambda _context: release())
            try:
                request = await argument(raw_requests, context)
                await admitted(request, context)
                responses = call(request, context)
                context.add_done_callback(lambda _context: _close_soon(responses))
                async for response in responses:
                    yield response
            except errors.InvalidArgument as error:  # a malformed request among them
                await abort(context, error)
            finally:
                release()

        async def stream_written(raw_requests, context):
            # A servicer that writes its responses itself (the standard
            # health service's Watch).
            if observer is not None:
                observer(path, context, streaming)
            release = _once(lambda: admission.leave(lane))
            context.add_done_callback(lambda _context: release())
            try:
                request = await argument(raw_requests, context)
                await admitted(request, context)
                await call(request, context)
            except errors.InvalidArgument as error:
                await abort(context, error)
            finally:
                release()

        if not method.server_streaming:
            return unary_response if method.client_streaming else unary
        return stream_response if inspect.isasyncgenfunction(call) else stream_written


def _once(function: Callable[[], None]) -> Callable[[], None]:
    done = [False]

    def run_once() -> None:  # on the event loop only: no lock needed
        if not done[0]:
            done[0] = True
            function()
    return run_once


def _close_soon(responses: AsyncIterator) -> None:
    """Closes a servicer's response generator that the call left suspended
    (runs its finally blocks), on the event loop."""
    closing = asyncio.ensure_future(responses.aclose())
    closing.add_done_callback(lambda done: done.cancelled() or done.exception())


def _lane(path: str, method: MethodDescriptor) -> str:
    if path in OPERATOR_METHODS:
        return LANE_OPERATOR
    if path in PEER_METHODS:
        return LANE_PEERS
    if method.client_streaming or method.server_streaming:
        return LANE_STREAMS
    return LANE_CALLS


def _servicer_method(servicer: Any, method: MethodDescriptor) -> Callable:
    """The servicer's method for `method`; a method still inherited from a
    generated `*_pb2_grpc` base (UNIMPLEMENTED) is a bug, caught at build."""
    for owner in type(servicer).__mro__:
        if method.name in owner.__dict__:
            assert not owner.__module__.endswith("_pb2_grpc"), (
                f"{type(servicer).__name__} does not implement {method.full_name}")
            function = getattr(servicer, method.name)
            assert inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function), (
                f"{type(servicer).__name__}.{method.name} must be async: it runs on the event loop")
            return function
    raise AssertionError(f"{type(servicer).__name__} has no method {method.name}")


def _serialize(response) -> bytes:
    return response.SerializeToString()
