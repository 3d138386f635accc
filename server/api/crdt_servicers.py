"""gRPC servicers of the available plane: `Crdt` (the CRDT table API) and
`Gossip` (a hook to inject gossip frames), served on the node's client
gRPC server.

Translation only: each `Crdt` call turns the request into a `node.crdt`
call (`server/node/crdt.py`), which decides every answer, and the answer
back into its wire shape; errors become statuses at the edge. An update's
op becomes one typed mutation (`mutation_from_proto`).

Nodes gossip over UDP (`available/transport.py`), never through this
server. `Gossip.Deliver` hands frames to the plane as a datagram would,
but answers with the verdict: tests and operators use it to inject
frames (forged, tampered, far-future) and see how the node judged them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import grpc
import grpc.aio

from tandemkv import errors, limits
from tandemkv.server.api.streams import StreamStops
from tandemkv.server.api.edge import abort, handle, node_timeout_s
from tandemkv.server.available.crdt import mutations
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.node_plane import kind_of, type_of
from tandemkv.server.node.crdt import TableValue
from tandemkv.v1 import crdt_pb2, crdt_pb2_grpc

# Metadata key of a Deliver answer that rejected frames: the node's counts
# of rejected frames by reason ("bad_mac=2,clock_drift=1").
GOSSIP_REJECTED_METADATA_KEY = "tandemkv-gossip-rejected"
# Rejection reasons that mean "not from a member holding the key".
_AUTH_REASONS = frozenset({"bad_mac", "bad_version"})

_COUNTERS = (TableKind.G_COUNTER, TableKind.PN_COUNTER)


def _plane(node: Any):
    plane = getattr(node, "available", None)
    if plane is None:
        raise errors.Unavailable("the available plane of this node is not running")
    return plane


async def _serve(context: grpc.aio.ServicerContext, call: Callable[[], Any]) -> Any:
    """Runs `call` (a node call that may wait: a gossip verdict, a catalog
    write) on the loop's executor; every error becomes a status."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, call)
    except grpc.aio.AbortError:
        raise
    except Exception as error:  # noqa: BLE001 - every error becomes a status
        await abort(context, error)
        raise AssertionError("context.abort returned")  # pragma: no cover


def mutation_from_proto(request: crdt_pb2.CrdtUpdateRequest) -> mutations.Mutation:
    """The mutation an update asks for; InvalidArgument if it sets no op
    or a value over CRDT_VALUE_BYTES_MAX. Which kinds take it is the
    node's check."""
    op = request.WhichOneof("op")
    if op == "increment":
        if request.increment < 0:
            return mutations.Decrement(-request.increment)
        return mutations.Increment(request.increment)
    if op == "add":
        return mutations.Add(request.add)
    if op == "remove":
        return mutations.Remove(request.remove)
    if op == "set":
        return mutations.Assign(request.set)
    if op == "put":
        return mutations.Put(request.put.key, request.put.value)
    if op == "remove_key":
        return mutations.RemoveKey(request.remove_key)
    assert op in (None, "remove_entry"), f"update op {op!r} has no mutation"
    if op == "remove_entry":
        raise errors.InvalidArgument("remove_entry removes a key of a keyed table: set `key` too")
    raise errors.InvalidArgument("an update sets one of increment, add, remove, set, put, "
                                 "remove_key, remove_entry")


def _key(request: Any, field: str = "key") -> bytes | None:
    """An optional bytes field: None when unset (the empty key is a key)."""
    return getattr(request, field) if request.HasField(field) else None


def value_to_proto(read: TableValue) -> crdt_pb2.CrdtValue:
    message = crdt_pb2.CrdtValue(table=read.table, type=type_of(read.kind), node=read.node)
    if read.key is not None:
        message.key = read.key
    value = read.value
    if read.resync:
        message.resync = True
    elif value is None and read.key is not None:
        pass  # an absent key: no value, present=false
    elif read.kind in _COUNTERS:
        message.counter = value
        message.present = True
    elif read.kind == TableKind.LWW_REGISTER:
        message.register = value or b""
        message.present = value is not None
    elif read.kind == TableKind.AW_LWW_MAP:
        message.map.entries.extend(crdt_pb2.MapEntry(key=k, value=v) for k, v in sorted(value.items()))
        message.present = bool(value)
    else:
        message.values.items.extend(value)
        message.present = bool(value)
    return message


class CrdtServicer(crdt_pb2_grpc.CrdtServicer):
    def __init__(self, node: Any, stops: StreamStops | None = None):
        self._node = node
        self._stops = stops or StreamStops()

    async def CreateTable(self, request, context):
        return await handle(context, request, lambda r, timeout_s: self._node.crdt.create_table(
            r.name, kind_of(r.type), keyed=r.keyed, request_id=r.request_id, timeout_s=timeout_s))

    async def DropTable(self, request, context):
        return await handle(context, request, lambda r, timeout_s: self._node.crdt.drop_table(
            r.name, request_id=r.request_id, timeout_s=timeout_s))

    async def ListTables(self, request, context):
        return await handle(context, request, lambda r, timeout_s: self._node.crdt.list_tables(
            consistency=r.consistency, timeout_s=timeout_s))

    async def Update(self, request, context):
        def update():
            key = _key(request)
            if request.WhichOneof("op") == "remove_entry" and key is not None:
                node = self._node.crdt.remove_entry(request.table, key, timeout_s=node_timeout_s(context))
            else:
                node = self._node.crdt.update(request.table, mutation_from_proto(request), key=key,
                                              timeout_s=node_timeout_s(context))
            return crdt_pb2.CrdtUpdateResponse(node=node)
        return await _serve(context, update)

    async def Read(self, request, context):
        return await _serve(context, lambda: value_to_proto(self._node.crdt.read(request.table, _key(request))))

    async def Scan(self, request, context):
        def scan():
            if self._node.crdt.is_keyed(request.table):
                keyed = self._node.crdt.scan_keys(request.table, request.prefix, after=_key(request, "after"),
                                                  limit=request.limit)
                response = crdt_pb2.CrdtScanResponse(values=[value_to_proto(v) for v in keyed.values],
                                                     more=keyed.resume_after is not None)
                if keyed.resume_after is not None:
                    response.resume_after = keyed.resume_after
                return response
            if request.HasField("after"):
                raise errors.InvalidArgument(f"table {request.table!r} is a single-value table: `after` "
                                             "pages through a keyed table's keys; leave it unset")
            page = self._node.crdt.scan(request.table, request.prefix, request.limit)
            return crdt_pb2.CrdtScanResponse(
                entries=[crdt_pb2.MapEntry(key=k, value=v) for k, v in page.entries],
                more=page.more)
        return await _serve(context, scan)

    async def Subscribe(self, request, context):
        """The table's value now, then the latest after each change saved
        on this node, until the client goes away, the server stops or the
        table is dropped (NOT_FOUND). A slow client skips values in between,
        never gets a stale one after the last change. The stream waits on
        the event loop, woken by the plane's thread (`node.crdt.value_feed`):
        an open subscription holds no thread.

        With `key` or `prefix` (a keyed table): each changed key's new
        value, after the key's value now (`key`) or a `resync` message
        (`prefix`); a client that falls CRDT_KEY_FEED_PENDING_KEYS_MAX
        changed keys behind gets `resync` and the changes it missed are
        dropped, never silently."""
        key, prefix = _key(request), _key(request, "prefix")
        if key is None and prefix is None:
            async for value in self._stops.serve_feed(
                    context, None, lambda wake: self._node.crdt.value_feed(request.table, wake)):
                yield value_to_proto(value)
            return
        async for values in self._stops.serve_feed(
                context, None, lambda wake: self._node.crdt.key_feed(request.table, wake, key=key, prefix=prefix)):
            for value in values:
                yield value_to_proto(value)


class GossipServicer(crdt_pb2_grpc.GossipServicer):
    """The frame-injection hook (see the module docs): hands frames to the
    plane and answers OK unless every frame of the call was rejected:
    UNAUTHENTICATED (bad MAC or version) or INVALID_ARGUMENT, with the
    node's rejection counts in trailing metadata."""

    def __init__(self, node: Any):
        self._node = node

    async def Deliver(self, request, context):
        return await _serve(context, lambda: self._deliver(request))

    def _deliver(self, request) -> crdt_pb2.GossipAck:
        if len(request.frames) > limits.GOSSIP_DELIVER_FRAMES_MAX:
            raise errors.InvalidArgument(
                f"{len(request.frames)} frames in one call; the limit GOSSIP_DELIVER_FRAMES_MAX "
                f"is {limits.GOSSIP_DELIVER_FRAMES_MAX}", limit="GOSSIP_DELIVER_FRAMES_MAX")
        verdict = _plane(self._node).deliver(list(request.frames))
        rejected = sum(verdict.rejected.values()) if verdict else 0
        if verdict is None or rejected == 0 or rejected < len(request.frames):
            return crdt_pb2.GossipAck()
        totals = ",".join(f"{k}={v}" for k, v in sorted(verdict.rejected_total.items()))
        reasons = ",".join(f"{k}={v}" for k, v in sorted(verdict.rejected.items()))
        message = (f"{rejected} of {len(request.frames)} gossip frames rejected ({reasons}); "
                   f"rejected on this node so far: {totals}")
        kind = errors.Unauthenticated if _AUTH_REASONS & set(verdict.rejected) else errors.InvalidArgument
        error = kind(message)
        # Sent along with the status (see edge.status_for_error).
        error.trailing_metadata = ((GOSSIP_REJECTED_METADATA_KEY, totals),)
        raise error
