"""How a call reaches a servicer: every RPC of every service the node
serves, registered from the service descriptors (so no method is forgotten),
admitted or refused on arrival by its lane, and decoded inside the handler.

Bytes in: grpcio hands each handler the request's raw bytes (no
deserializer), and `wire.decode` turns them into the request message, so
malformed bytes are INVALID_ARGUMENT with a message, counted, and never a
traceback or leaked memory (grpcio's own decoding failure is all three).
Every method is registered request-streaming: grpcio then calls the
handler at once, without waiting for the message in a pool thread, so the
handler always runs and always releases its slot; unary methods read their
one message themselves.

Lanes, each held to a named limit and counted when the call is looked up
(on grpcio's polling thread, before any pool thread is taken):
- operator: Health.Check, Cluster.Status and Cluster.Members, with
  OPERATOR_RPCS_MAX slots and threads of their own, so an operator can
  still see an overloaded node;
- streams: every client- or server-streaming RPC (watches, keepalives,
  observes, CRDT subscriptions, health watches, reflection), held to
  STREAMS_OPEN_MAX and also counted in CONCURRENT_RPCS_MAX;
- calls: every other RPC, held to CONCURRENT_RPCS_MAX.
A call over its lane's limit is answered RESOURCE_EXHAUSTED by a refusal
that reads nothing and runs on a small pool of its own, so shedding never
queues behind the calls it sheds.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent import futures
from typing import Any, Callable, Iterable, Iterator

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from tandemkv import errors, limits
from tandemkv.server.api.edge import abort
from tandemkv.server.api.wire import MalformedRequest, decode

# At most one log line per this many seconds about malformed requests (the
# count goes on; the line says how many came since the last one).
MALFORMED_LOG_INTERVAL_S = 60.0

LANE_CALLS = "calls"
LANE_STREAMS = "streams"
LANE_OPERATOR = "operator"

OPERATOR_METHODS = frozenset({
    "/grpc.health.v1.Health/Check",
    "/tandemkv.v1.Cluster/Status",
    "/tandemkv.v1.Cluster/Members",
})

log = logging.getLogger(__name__)


class Admission:
    """In-flight calls per lane against each lane's limit."""

    def __init__(self, calls_max: int, streams_max: int, operator_max: int) -> None:
        self._lock = threading.Lock()
        self._limits = {LANE_CALLS: calls_max, LANE_STREAMS: streams_max, LANE_OPERATOR: operator_max}
        self._open = {LANE_CALLS: 0, LANE_STREAMS: 0, LANE_OPERATOR: 0}

    def enter(self, lane: str) -> str | None:
        """Takes a slot in `lane` (a stream also takes a call slot), or says
        why not."""
        charged = (LANE_STREAMS, LANE_CALLS) if lane == LANE_STREAMS else (lane,)
        with self._lock:
            for name in charged:
                if self._open[name] >= self._limits[name]:
                    return _refusal_message(name, self._limits[name])
            for name in charged:
                self._open[name] += 1
        return None

    def leave(self, lane: str) -> None:
        charged = (LANE_STREAMS, LANE_CALLS) if lane == LANE_STREAMS else (lane,)
        with self._lock:
            for name in charged:
                assert self._open[name] > 0, f"{name} lane left more often than entered"
                self._open[name] -= 1

    def open_count(self, lane: str) -> int:
        with self._lock:
            return self._open[lane]


def _refusal_message(lane: str, limit: int) -> str:
    if lane == LANE_STREAMS:
        return (f"this node has STREAMS_OPEN_MAX={limit} streams open (watches, lease keepalives, "
                "election observes, CRDT subscriptions); close streams you no longer need, share "
                "one watch over a key range, or connect to another node")
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


class _Behavior:
    """A callable grpcio runs in `experimental_thread_pool` (grpcio's
    documented per-behavior pool)."""

    def __init__(self, function: Callable, pool: futures.ThreadPoolExecutor) -> None:
        self._function = function
        self.experimental_thread_pool = pool

    def __call__(self, request_iterator, context):
        return self._function(request_iterator, context)


class Dispatcher(grpc.GenericRpcHandler):
    """The one generic handler of the server: looks up the method, admits
    the call to its lane or refuses it, and wraps the servicer's method."""

    def __init__(self, services: Iterable[Service], admission: Admission,
                 pools: dict[str, futures.ThreadPoolExecutor], refusal_pool: futures.ThreadPoolExecutor,
                 malformed: MalformedRequests) -> None:
        self._admission = admission
        self._malformed = malformed
        self._refusal_pool = refusal_pool
        self._methods: dict[str, tuple[str, grpc.RpcMethodHandler]] = {}
        for service in services:
            for method in service.descriptor.methods:
                path = f"/{service.descriptor.full_name}/{method.name}"
                lane = _lane(path, method)
                call = _servicer_method(service.servicer, method)
                function = self._wrap(path, lane, method, call)
                behavior = _Behavior(function, pools[lane])
                registered = (grpc.stream_stream_rpc_method_handler if method.server_streaming
                              else grpc.stream_unary_rpc_method_handler)
                self._methods[path] = (lane, registered(behavior, response_serializer=_serialize))

    @property
    def method_paths(self) -> list[str]:
        return sorted(self._methods)

    def service(self, handler_call_details):
        found = self._methods.get(handler_call_details.method)
        if found is None:
            return None
        lane, handler = found
        refused = self._admission.enter(lane)
        if refused is None:
            return handler
        return grpc.stream_stream_rpc_method_handler(_Behavior(
            lambda _requests, context: abort(context, errors.ResourceExhausted(refused)),
            self._refusal_pool))

    def _wrap(self, path: str, lane: str, method: MethodDescriptor, call: Callable):
        request_class = message_factory.GetMessageClass(method.input_type)
        admission, malformed = self._admission, self._malformed

        def decoded(raw: bytes):
            try:
                return decode(request_class, raw)
            except MalformedRequest as error:
                malformed.count(path, error)
                raise

        def decoded_stream(raw_requests: Iterator[bytes]):
            try:
                for raw in raw_requests:
                    yield decoded(raw)
            except grpc.RpcError:
                return  # the client went away: for the servicer, the requests end

        def argument(raw_requests, context):
            if method.client_streaming:
                return decoded_stream(raw_requests)
            raw = next(raw_requests, None)  # an RpcError here (client gone) ends the call quietly
            if raw is None:
                abort(context, errors.InvalidArgument(
                    f"{path} takes exactly one request message; the client sent none"))
            return decoded(raw)

        def unary_response(raw_requests, context):
            release = _once(lambda: admission.leave(lane))
            try:
                return call(argument(raw_requests, context), context)
            except errors.InvalidArgument as error:  # a malformed request among them
                abort(context, error)
            finally:
                release()

        def stream_response(raw_requests, context):
            release = _once(lambda: admission.leave(lane))
            if not context.add_callback(release):
                release()
            return _relay(release, lambda: call(argument(raw_requests, context), context), context)

        return stream_response if method.server_streaming else unary_response


def _relay(release: Callable[[], None], open_stream: Callable[[], Iterator], context):
    """Yields what the servicer's stream yields; a malformed or invalid
    request (possibly a later one of a client stream) ends it as
    INVALID_ARGUMENT."""
    try:
        yield from open_stream()
    except errors.InvalidArgument as error:  # a malformed request among them
        abort(context, error)
    finally:
        release()


def _once(function: Callable[[], None]) -> Callable[[], None]:
    lock = threading.Lock()
    done = [False]

    def run_once() -> None:
        with lock:
            if done[0]:
                return
            done[0] = True
        function()
    return run_once


def _lane(path: str, method: MethodDescriptor) -> str:
    if path in OPERATOR_METHODS:
        return LANE_OPERATOR
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
            return getattr(servicer, method.name)
    raise AssertionError(f"{type(servicer).__name__} has no method {method.name}")


def _serialize(response) -> bytes:
    return response.SerializeToString()


def build_pools(call_threads: int) -> tuple[dict[str, futures.ThreadPoolExecutor], futures.ThreadPoolExecutor]:
    """The thread pools of the lanes (calls and streams share one, sized so
    open streams never starve other calls) and the refusal pool."""
    calls = futures.ThreadPoolExecutor(max_workers=call_threads, thread_name_prefix="tandemkv-rpc")
    operator = futures.ThreadPoolExecutor(max_workers=limits.OPERATOR_THREADS,
                                          thread_name_prefix="tandemkv-operator")
    refusals = futures.ThreadPoolExecutor(max_workers=limits.REFUSAL_THREADS,
                                          thread_name_prefix="tandemkv-refusal")
    return {LANE_CALLS: calls, LANE_STREAMS: calls, LANE_OPERATOR: operator}, refusals
