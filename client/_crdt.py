"""CRDT tables in the SDK: `client.crdt` (`CrdtTables`) and its recipes
`CrdtCounter`, `CrdtSet`, `CrdtMap`, `CrdtRegister`, with asyncio twins.

Semantics: a CRDT table is available-mode. Updates and reads go to one
node's replica (the first endpoint that answers, kept while it answers)
and never wait on Raft: they work while the cluster has no quorum. A read
returns that node's current value, which may not yet include updates made
on other nodes; nodes converge by gossip within a few rounds (1 s each).
Creating or dropping a table goes through Raft (it needs a quorum), so
every node agrees on a table's type.

Recipes create their table on first use with the type they imply
(`counter` -> PN_COUNTER, so `decr` works; `set` -> OR_SET; `map` ->
AW_LWW_MAP; `register` -> LWW_REGISTER); a table that exists with another
type raises `FailedPrecondition` naming it.

Failure modes: an update that fails with UNAVAILABLE did not apply and is
retried on the next endpoint. A counter update whose outcome is unknown
(DEADLINE_EXCEEDED) is not retried (a retry could count twice): it raises
`OutcomeUnknown`. Set, map and register updates are idempotent and are
retried. (Those rules are the core's `SweepAttempts`; this module only
builds the calls, shared with the asyncio twins in `_crdt_async`.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

import grpc

from tandemkv import errors
from tandemkv.client import _operations as ops
from tandemkv.client._core import Call, Invoke, Plan, Sleep
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.client._retry import error_from_rpc
from tandemkv.v1 import crdt_pb2

if TYPE_CHECKING:
    from tandemkv.client._sync import Client

TYPES = {name.lower(): value for name, value in crdt_pb2.CrdtType.items() if value}
# How long a recipe waits for a table it just created to be known on the
# node it talks to (that node applies the creation from the Raft log).
CREATED_VISIBLE_WAIT_S = 5.0
CREATED_VISIBLE_POLL_S = 0.05


def crdt_type(name: str | int) -> int:
    """A CrdtType from its name ('pn_counter', case-insensitive) or value."""
    if isinstance(name, int):
        return name
    try:
        return TYPES[name.lower()]
    except KeyError:
        raise errors.InvalidArgument(f"unknown CRDT type {name!r}; use one of {sorted(TYPES)}") from None


def plain(value: crdt_pb2.CrdtValue) -> Any:
    """A CrdtValue as Python: int, bytes or None, list of bytes, or dict."""
    which = value.WhichOneof("value")
    if which == "counter":
        return value.counter
    if which == "register":
        return value.register if value.present else None
    if which == "values":
        return list(value.values.items)
    if which == "map":
        return {entry.key: entry.value for entry in value.map.entries}
    return {crdt_pb2.AW_LWW_MAP: {}, crdt_pb2.LWW_REGISTER: None, crdt_pb2.G_COUNTER: 0,
            crdt_pb2.PN_COUNTER: 0}.get(value.type, [])


def _expect(value: crdt_pb2.CrdtValue, types: tuple[int, ...]) -> crdt_pb2.CrdtValue:
    if value.type not in types:
        wanted = " or ".join(crdt_pb2.CrdtType.Name(t) for t in types)
        raise errors.FailedPrecondition(f"table {value.table!r} is a {crdt_pb2.CrdtType.Name(value.type)}, "
                                        f"not a {wanted}")
    return value


def _update(table: str, **op: Any) -> crdt_pb2.CrdtUpdateRequest:
    return crdt_pb2.CrdtUpdateRequest(table=table, **op)


# -- the CRDT calls as `Operation`s: one node's replica answers the local
# ones (any node, no leader); the catalog's drop and list go through Raft.
def _local(method: str, request: Any, decode: Any, *, write: bool, idempotent: bool = True) -> ops.Operation:
    return ops.Operation("Crdt", method, request, decode, write=write, local=True, idempotent=idempotent)


def create_table(name: str, type: str | int, keyed: bool = False) -> ops.Operation:
    request = crdt_pb2.CreateTableRequest(name=name, type=crdt_type(type), keyed=keyed,
                                          request_id=ops.new_request_id())
    return _local("CreateTable", request, lambda r: r.created, write=True)


def drop_table(name: str) -> ops.Operation:
    request = crdt_pb2.DropTableRequest(name=name, request_id=ops.new_request_id())
    return ops.Operation("Crdt", "DropTable", request, lambda r: r.dropped, write=True)


def list_tables() -> ops.Operation:
    return ops.Operation("Crdt", "ListTables", crdt_pb2.ListTablesRequest(),
                         lambda r: {t.name: crdt_pb2.CrdtType.Name(t.type) for t in r.tables}, write=False)


def update(request: crdt_pb2.CrdtUpdateRequest, idempotent: bool) -> ops.Operation:
    """Answers the name of the node that took the update."""
    return _local("Update", request, lambda r: r.node, write=True, idempotent=idempotent)


def read(name: str, key: bytes | None = None) -> ops.Operation:
    """A table's value, or (keyed tables) one key's."""
    request = crdt_pb2.CrdtReadRequest(table=name)
    if key is not None:
        request.key = key
    return _local("Read", request, lambda r: r, write=False)


def scan(name: str, prefix: BytesLike = b"", limit: int = 0) -> ops.Operation:
    request = crdt_pb2.CrdtScanRequest(table=name, prefix=to_bytes(prefix, "prefix"), limit=limit)
    return _local("Scan", request, lambda r: [(e.key, e.value) for e in r.entries], write=False)


def ensure_table(client: Any, name: str, type: int, attempt: Call | Invoke, keyed: bool = False) -> Plan:
    """`attempt`, creating the table with `type` (keyed or not) first if it
    is missing, then trying again until the node it talks to knows the new
    table (CREATED_VISIBLE_WAIT_S at the most)."""
    try:
        return (yield attempt)
    except errors.NotFound:
        yield Call(create_table(name, type, keyed))
    retry = client.retry
    deadline = retry.clock() + CREATED_VISIBLE_WAIT_S
    while True:
        try:
            return (yield attempt)
        except errors.NotFound:
            if retry.clock() > deadline:
                raise
        yield Sleep(CREATED_VISIBLE_POLL_S, retry)


def subscribe_error(error: grpc.RpcError) -> errors.TandemKVError | None:
    """What a broken subscription raises (None: it was cancelled, it ends)."""
    return None if error.code() == grpc.StatusCode.CANCELLED else error_from_rpc(error, b"")


class CrdtTables:
    """`client.crdt`: the CRDT tables of a `Client`. See the module docs.

    Example::

        with Client() as client:
            client.crdt.counter("views").incr(5)
            client.crdt.set("online").add(b"ann")
            client.crdt.map("profile").put(b"name", b"Ann")
            client.crdt.counter("views").get()      # this node's value
    """

    def __init__(self, client: Client):
        self.client = client

    def counter(self, name: str) -> CrdtCounter:
        return CrdtCounter(self, name)

    def set(self, name: str) -> CrdtSet:
        return CrdtSet(self, name)

    def map(self, name: str) -> CrdtMap:
        return CrdtMap(self, name)

    def register(self, name: str) -> CrdtRegister:
        return CrdtRegister(self, name)

    # -- the catalog (Raft) --
    def keyed(self, name: str, type: str | int) -> KeyedTable:
        """Keyed table `name` of `type`: any number of keys, each its own
        value (see `tandemkv.client._crdt_keyed`); created on first write.
        One keyed table is what the per-entity pattern needs: one table of
        `profile` maps with a key per user, not a table per user (tables
        are catalogued through Raft, at most CRDT_TABLES_MAX)."""
        return KeyedTable(self, name, type)

    def create(self, name: str, type: str | int, *, keyed: bool = False) -> bool:
        """Creates table `name` of `type` ('pn_counter', 'or_set', ...),
        keyed or not; returns False if it exists so. FailedPrecondition if
        it exists with another type or keyedness."""
        return self.client.run(create_table(name, type, keyed))

    def drop(self, name: str) -> bool:
        return self.client.run(drop_table(name))

    def list(self) -> dict[str, str]:
        """Every table's name -> type name (linearizable)."""
        return self.client.run(list_tables())

    # -- this node's replica --
    def update(self, request: crdt_pb2.CrdtUpdateRequest, *, idempotent: bool) -> str:
        """Sends one update; returns the name of the node that took it."""
        return self.client.run(update(request, idempotent))

    def read(self, name: str) -> crdt_pb2.CrdtValue:
        return self.client.run(read(name))

    def scan(self, name: str, prefix: BytesLike = b"", limit: int = 0) -> list[tuple[bytes, bytes]]:
        """Members (value b"") or map entries whose key starts with `prefix`."""
        return self.client.run(scan(name, prefix, limit))

    def subscribe(self, name: str) -> Iterator[crdt_pb2.CrdtValue]:
        """The table's value on one node now and after every change there,
        until the iterator is closed or the node goes away."""
        endpoint = self.client._local.order()[0]
        stream = self.client.stub("Crdt", endpoint).Subscribe(crdt_pb2.CrdtSubscribeRequest(table=name))
        try:
            yield from stream
        except grpc.RpcError as error:
            if (failure := subscribe_error(error)) is not None:
                raise failure from None
        finally:
            stream.cancel()

    def ensure(self, name: str, type: int, call) -> Any:
        """`call()`, creating the table with `type` first if it is missing."""
        return self.client._run_plan(ensure_table(self.client, name, type, Invoke(call)))


class _Recipe:
    """What the recipes of both clients share: the table, its types, and
    the plans of an update and a read (the table created on first use)."""

    TYPES: tuple[int, ...] = ()
    CREATE_TYPE = 0

    def __init__(self, tables: Any, name: str, key: bytes | None = None):
        self.tables = tables
        self.name = name
        # The key in a keyed table this recipe is bound to (None: a single-value table).
        self.key = key

    def _update(self, idempotent: bool = True, **op: Any) -> Any:
        request = _update(self.name, **op)
        if self.key is not None:
            request.key = self.key
        attempt = Call(update(request, idempotent))
        return self.tables.client._run_plan(ensure_table(self.tables.client, self.name, self.CREATE_TYPE, attempt,
                                                         keyed=self.key is not None))

    def _read(self) -> Plan:
        read_value = yield from ensure_table(self.tables.client, self.name, self.CREATE_TYPE,
                                             Call(read(self.name, self.key)), keyed=self.key is not None)
        return plain(_expect(read_value, self.TYPES))

    def value(self) -> Any:
        """This node's current value of the table (see `plain`)."""
        return self.tables.client._run_plan(self._read())


class CrdtCounter(_Recipe):
    """A counter every node can change at any time (PN_COUNTER; also works
    on an existing G_COUNTER table, which only grows)."""

    TYPES = (crdt_pb2.PN_COUNTER, crdt_pb2.G_COUNTER)
    CREATE_TYPE = crdt_pb2.PN_COUNTER

    def incr(self, n: int = 1) -> None:
        self._update(idempotent=False, increment=n)

    def decr(self, n: int = 1) -> None:
        self._update(idempotent=False, increment=-n)

    def get(self) -> int:
        return self.value()


class CrdtSet(_Recipe):
    """An add-wins set of byte strings (OR_SET)."""

    TYPES = (crdt_pb2.OR_SET,)
    CREATE_TYPE = crdt_pb2.OR_SET

    def add(self, member: BytesLike) -> None:
        self._update(add=to_bytes(member, "member"))

    def remove(self, member: BytesLike) -> None:
        self._update(remove=to_bytes(member, "member"))

    def members(self) -> list[bytes]:
        return self.value()


class CrdtMap(_Recipe):
    """An add-wins map of last-writer-wins values (AW_LWW_MAP)."""

    TYPES = (crdt_pb2.AW_LWW_MAP,)
    CREATE_TYPE = crdt_pb2.AW_LWW_MAP

    def put(self, key: BytesLike, value: BytesLike) -> None:
        self._update(put=crdt_pb2.MapPut(key=to_bytes(key, "key"), value=to_bytes(value, "value")))

    def remove(self, key: BytesLike) -> None:
        self._update(remove_key=to_bytes(key, "key"))

    def get(self, key: BytesLike) -> bytes | None:
        return self.value().get(to_bytes(key, "key"))

    def items(self) -> dict[bytes, bytes]:
        return self.value()


class CrdtRegister(_Recipe):
    """A last-writer-wins register (LWW_REGISTER), ordered by hybrid time."""

    TYPES = (crdt_pb2.LWW_REGISTER,)
    CREATE_TYPE = crdt_pb2.LWW_REGISTER

    def set(self, value: BytesLike) -> None:
        self._update(set=to_bytes(value, "value"))

    def get(self) -> bytes | None:
        return self.value()


from tandemkv.client._crdt_keyed import KeyedTable  # noqa: E402 - it builds on the recipes above
