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
  connection loss: their task is cancelled) or the server stops
  (`StreamStops.stop_all`, streams.py). All of them wait on the event
  loop without a thread: Observe on the node's feed of the election's
  leader (`node.leader_feed`), sending the leader now and then the latest
  after each change (a slow client skips leaders in between, never gets a
  stale one after the last change).
"""

from __future__ import annotations

from typing import AsyncIterator

import grpc
import grpc.aio

from tandemkv import limits
from tandemkv.server.api.edge import handle, node_timeout_s
from tandemkv.server.api.streams import StreamStops, until_stopped
from tandemkv.server.api.watch_streams import serve_watch, serve_watch_stream
from tandemkv.server.strong.validation import check_request
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import coordination_pb2_grpc, lease_pb2_grpc, watch_pb2, watch_pb2_grpc


def waiting_call(context: grpc.aio.ServicerContext, request, node_call):
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


def stream_timeout_s(context: grpc.aio.ServicerContext) -> float:
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

    async def Grant(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def Revoke(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def TimeToLive(self, request, context):
        return await handle(context, request, self._node.query_async)

    async def List(self, request, context):
        return await handle(context, request, self._node.query_async)

    async def KeepAlive(self, request_iterator, context):
        """One renewal, one response, per request, until the client closes
        its side; the first failure ends the stream with its status."""
        async def renewals(stop):
            async for request in until_stopped(stop, request_iterator):
                check_request(request)
                yield await self._node.propose_async(request, timeout_s=stream_timeout_s(context))

        async for response in self._stops.serve(context, None, renewals):
            yield response


class RegistryServicer(coordination_pb2_grpc.RegistryServicer):
    def __init__(self, node):
        self._node = node

    async def Register(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def Whereis(self, request, context):
        return await handle(context, request, self._node.query_async)

    async def Unregister(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def List(self, request, context):
        return await handle(context, request, self._node.query_async)


class LockServicer(coordination_pb2_grpc.LockServicer):
    def __init__(self, node):
        self._node = node

    async def Acquire(self, request, context):
        return await handle(context, request, lambda r, timeout_s: waiting_call(
            context, r, self._node.lock_acquire))

    async def Release(self, request, context):
        return await handle(context, request, self._node.propose_async)


class ElectionServicer(coordination_pb2_grpc.ElectionServicer):
    def __init__(self, node, stops: StreamStops):
        self._node = node
        self._stops = stops

    async def Campaign(self, request, context):
        return await handle(context, request, lambda r, timeout_s: waiting_call(
            context, r, self._node.campaign))

    async def Proclaim(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def Resign(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def Leader(self, request, context):
        return await handle(context, request, self._node.query_async)

    async def Observe(self, request: co.LeaderRequest, context) -> AsyncIterator[co.LeaderResponse]:
        """The leader now, then the latest after each change (see the
        module docs)."""
        async for response in self._stops.serve_feed(
                context, request, lambda wake: self._node.leader_feed(request.election, wake)):
            yield response


WATCH_METHOD = "/tandemkv.v1.Watch/Watch"


class WatchServicer(watch_pb2_grpc.WatchServicer):
    def __init__(self, node, stops: StreamStops, gate=None):
        self._node = node
        self._stops = stops
        # The auth gate (None: every watch allowed): Watches is opened by any
        # signed-in caller and each watch it creates is checked as a Watch.
        self._gate = gate

    async def Watch(self, request: watch_pb2.WatchRequest, context) -> AsyncIterator[watch_pb2.WatchResponse]:
        async for response in self._stops.serve(
                context, request, lambda stop: serve_watch(self._node, request, stop)):
            yield response

    async def Watches(self, requests, context) -> AsyncIterator[watch_pb2.WatchStreamResponse]:
        gate = self._gate
        authorize = None if gate is None else (
            lambda create: gate.check_call(WATCH_METHOD, create, context))
        async for response in self._stops.serve(
                context, None, lambda stop: serve_watch_stream(self._node, requests, stop, authorize)):
            yield response
