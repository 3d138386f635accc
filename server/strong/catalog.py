"""The catalog of CRDT tables (name -> type), kept on the strong plane so
every node agrees on a table's type. Part of the pure state machine (see
state_machine.py for its rules). Only the catalog lives here; the tables'
contents belong to the available plane and never go through Raft."""

from __future__ import annotations

from tandemkv import limits
from tandemkv.v1 import crdt_pb2, kv_pb2, raft_pb2

from tandemkv.server.strong.context import ApplyContext, CommandFailed
from tandemkv.server.strong.view import StoreView

# Tag of the catalog in the tagged claims storage.
TABLES = b"t"


def _header(context: ApplyContext) -> kv_pb2.ResponseHeader:
    return kv_pb2.ResponseHeader(revision=context.index)


def tables(view: StoreView) -> list[crdt_pb2.CrdtTable]:
    return [crdt_pb2.CrdtTable.FromString(raw) for _, raw in view.claim_scan(TABLES, b"", None)]


def _create_table(context: ApplyContext, request: crdt_pb2.CreateTableRequest):
    view = context.view
    name = request.name.encode()
    raw = view.claim_get(TABLES, name)
    if raw is not None:
        existing = crdt_pb2.CrdtTable.FromString(raw)
        if existing.type != request.type:
            raise CommandFailed(
                raft_pb2.FAILED_PRECONDITION,
                f"table {request.name!r} exists with type "
                f"{crdt_pb2.CrdtType.Name(existing.type)}; drop it or use another name")
        if existing.keyed != request.keyed:
            shape = "a keyed table" if existing.keyed else "a single-value table"
            raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                                f"table {request.name!r} exists as {shape}; drop it or use another name")
        return crdt_pb2.CreateTableResponse(header=_header(context), table=existing)
    if len(tables(view)) >= limits.CRDT_TABLES_MAX:
        raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                            f"CRDT_TABLES_MAX={limits.CRDT_TABLES_MAX} tables exist; drop one")
    table = crdt_pb2.CrdtTable(name=request.name, type=request.type,
                               created_revision=context.index, keyed=request.keyed)
    view.claim_put(TABLES, name, table.SerializeToString())
    return crdt_pb2.CreateTableResponse(header=_header(context), created=True, table=table)


def _drop_table(context: ApplyContext, request: crdt_pb2.DropTableRequest):
    dropped = context.view.claim_delete(TABLES, request.name.encode())
    return crdt_pb2.DropTableResponse(header=_header(context), dropped=dropped)


def read_tables(view: StoreView, request: crdt_pb2.ListTablesRequest,
                revision: int) -> crdt_pb2.ListTablesResponse:
    return crdt_pb2.ListTablesResponse(header=kv_pb2.ResponseHeader(revision=revision),
                                       tables=tables(view))


OPS = {
    crdt_pb2.CreateTableRequest: _create_table,
    crdt_pb2.DropTableRequest: _drop_table,
}
READERS = {crdt_pb2.ListTablesRequest: read_tables}
