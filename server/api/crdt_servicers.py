"""gRPC servicers of the available plane: `Crdt` (the CRDT table API) and
`Gossip` (node-to-node frames), served on the node's client gRPC server.

Gossip shares the client port on purpose: every member already publishes
its client address, so no third port has to be configured, opened or
partitioned, and frames are authenticated by their own HMAC, not by the
transport.

The catalog calls (CreateTable, DropTable, ListTables) go through Raft like
any other write or read (`node.propose` / `node.query`). Update, Read,
Scan and Subscribe are served by this node's replica (`node.available`)
and never wait on Raft. Translation only: the plane decides every answer.
"""

from __future__ import annotations

from typing import Any, Callable

import grpc

from tandemkv import errors, limits
from tandemkv.server.api.coordination_servicers import StreamStops
from tandemkv.server.api.edge import abort, handle, node_timeout_s
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.node_plane import type_of
from tandemkv.server.strong.validation import check_table_name
from tandemkv.v1 import crdt_pb2, crdt_pb2_grpc

# Metadata key of a Deliver answer that rejected frames: the node's counts
# of rejected frames by reason ("bad_mac=2,clock_drift=1").
GOSSIP_REJECTED_METADATA_KEY = "tandemkv-gossip-rejected"
# Rejection reasons that mean "not from a member holding the key".
_AUTH_REASONS = frozenset({"bad_mac", "bad_version"})

_COUNTERS = (TableKind.G_COUNTER, TableKind.PN_COUNTER)
_REGISTERS = (TableKind.LWW_REGISTER, TableKind.MV_REGISTER)


def _plane(node: Any):
    plane = getattr(node, "available", None)
    if plane is None:
        raise errors.Unavailable("the available plane of this node is not running")
    return plane


def _serve(context: grpc.ServicerContext, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as error:  # noqa: BLE001 - every error becomes a status
        abort(context, error)
        raise AssertionError("context.abort returned")  # pragma: no cover


def _check_value(value: bytes, what: str) -> None:
    if len(value) > limits.CRDT_VALUE_BYTES_MAX:
        raise errors.InvalidArgument(
            f"{what} is {len(value)} bytes; the limit CRDT_VALUE_BYTES_MAX is "
            f"{limits.CRDT_VALUE_BYTES_MAX} bytes", limit="CRDT_VALUE_BYTES_MAX")


def mutation(request: crdt_pb2.CrdtUpdateRequest, kind: TableKind) -> tuple[str, tuple]:
    """The mutator and arguments an update asks of a table of `kind`;
    InvalidArgument for a malformed update, FailedPrecondition for one the
    type does not take."""
    op = request.WhichOneof("op")
    if op is None:
        raise errors.InvalidArgument("an update sets one of increment, add, remove, set, put, "
                                     "remove_key")
    for field in ("add", "remove", "set", "remove_key"):
        if op == field:
            _check_value(getattr(request, field), field)
    if op == "put":
        _check_value(request.put.key, "put.key")
        _check_value(request.put.value, "put.value")
    found = _MUTATIONS.get((op, kind))
    if found is None:
        raise errors.FailedPrecondition(
            f"table {request.table!r} is a {kind.value.upper()}; it takes no {op!r} update")
    return found(request)


def _increment(request) -> tuple[str, tuple]:
    if request.increment < 0:
        return "decrement", (-request.increment,)
    return "increment", (request.increment,)


def _grow(request) -> tuple[str, tuple]:
    if request.increment < 0:
        raise errors.FailedPrecondition(f"table {request.table!r} is a G_COUNTER: it only grows; "
                                        "use a PN_COUNTER to decrement")
    return "increment", (request.increment,)


_MUTATIONS: dict[tuple[str, TableKind], Callable[[Any], tuple[str, tuple]]] = {
    ("increment", TableKind.G_COUNTER): _grow,
    ("increment", TableKind.PN_COUNTER): _increment,
    ("add", TableKind.OR_SET): lambda r: ("add", (r.add,)),
    ("remove", TableKind.OR_SET): lambda r: ("remove", (r.remove,)),
    ("set", TableKind.LWW_REGISTER): lambda r: ("assign", (r.set,)),
    ("set", TableKind.MV_REGISTER): lambda r: ("assign", (r.set,)),
    ("put", TableKind.AW_LWW_MAP): lambda r: ("put", (r.put.key, r.put.value)),
    ("remove_key", TableKind.AW_LWW_MAP): lambda r: ("remove", (r.remove_key,)),
}


def value_to_proto(table: str, kind: TableKind, value: Any, node: str) -> crdt_pb2.CrdtValue:
    message = crdt_pb2.CrdtValue(table=table, type=type_of(kind), node=node)
    if kind in _COUNTERS:
        message.counter = value
        message.present = True
    elif kind == TableKind.LWW_REGISTER:
        message.register = value or b""
        message.present = value is not None
    elif kind == TableKind.AW_LWW_MAP:
        message.map.entries.extend(crdt_pb2.MapEntry(key=k, value=v) for k, v in sorted(value.items()))
        message.present = bool(value)
    else:
        message.values.items.extend(value)
        message.present = bool(value)
    return message


def scan_entries(kind: TableKind, value: Any, prefix: bytes,
                 limit: int) -> crdt_pb2.CrdtScanResponse:
    if kind == TableKind.OR_SET:
        items = [(member, b"") for member in value]
    elif kind == TableKind.AW_LWW_MAP:
        items = sorted(value.items())
    else:
        raise errors.FailedPrecondition(f"a {kind.value.upper()} has no members or keys to scan")
    if limit <= 0 or limit > limits.CRDT_SCAN_ENTRIES_MAX:
        limit = limits.CRDT_SCAN_ENTRIES_MAX
    matched = [(key, val) for key, val in items if key.startswith(prefix)]
    return crdt_pb2.CrdtScanResponse(
        entries=[crdt_pb2.MapEntry(key=k, value=v) for k, v in matched[:limit]],
        more=len(matched) > limit)


class CrdtServicer(crdt_pb2_grpc.CrdtServicer):
    def __init__(self, node: Any, stops: StreamStops | None = None):
        self._node = node
        self._stops = stops or StreamStops()

    def CreateTable(self, request, context):
        return self._catalog_write(context, request)

    def DropTable(self, request, context):
        return self._catalog_write(context, request)

    def ListTables(self, request, context):
        return handle(context, request, self._node.query)

    def Update(self, request, context):
        return _serve(context, lambda: self._update(request, context))

    def Read(self, request, context):
        return _serve(context, lambda: self._read(request.table))

    def Scan(self, request, context):
        def scan():
            check_table_name(request.table)
            _check_value(request.prefix, "prefix")
            kind, value = _plane(self._node).read(request.table)
            return scan_entries(kind, value, request.prefix, request.limit)
        return _serve(context, scan)

    def Subscribe(self, request, context):
        """The table's value now and after each change, until the client
        goes away or the server stops (a stream: held to STREAMS_OPEN_MAX)."""
        stop = self._stops.open(context)
        try:
            check_table_name(request.table)
            plane = _plane(self._node)
            plane.read(request.table)
            for kind, value in plane.changes(request.table, stop):
                yield value_to_proto(request.table, kind, value, plane.node_name)
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            abort(context, error)
        finally:
            stop.set()
            self._stops.close(stop)

    def _catalog_write(self, context, request):
        response = handle(context, request, self._node.propose)
        plane = getattr(self._node, "available", None)
        if plane is not None:
            plane.refresh_catalog()
        return response

    def _update(self, request, context) -> crdt_pb2.CrdtUpdateResponse:
        check_table_name(request.table)
        timeout_s = node_timeout_s(context)
        plane = _plane(self._node)
        kind = plane.tables().get(request.table)
        if kind is None:
            kind, _ = plane.read(request.table)  # follows the catalog, or NotFound
        operation, args = mutation(request, kind)
        plane.update(request.table, operation, *args, timeout_s=timeout_s)
        return crdt_pb2.CrdtUpdateResponse(node=plane.node_name)

    def _read(self, table: str) -> crdt_pb2.CrdtValue:
        check_table_name(table)
        plane = _plane(self._node)
        kind, value = plane.read(table)
        return value_to_proto(table, kind, value, plane.node_name)


class GossipServicer(crdt_pb2_grpc.GossipServicer):
    """Hands frames to the plane. Answers OK unless every frame of the call
    was rejected: UNAUTHENTICATED (bad MAC or version) or INVALID_ARGUMENT,
    with the node's rejection counts in trailing metadata."""

    def __init__(self, node: Any):
        self._node = node

    def Deliver(self, request, context):
        return _serve(context, lambda: self._deliver(request))

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
