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
retried.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator

import grpc

from tandemkv import errors
from tandemkv.client import _operations as ops
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
    return {crdt_pb2.AW_LWW_MAP: {}, crdt_pb2.LWW_REGISTER: None}.get(value.type, [])


def _expect(value: crdt_pb2.CrdtValue, types: tuple[int, ...]) -> crdt_pb2.CrdtValue:
    if value.type not in types:
        wanted = " or ".join(crdt_pb2.CrdtType.Name(t) for t in types)
        raise errors.FailedPrecondition(f"table {value.table!r} is a {crdt_pb2.CrdtType.Name(value.type)}, "
                                        f"not a {wanted}")
    return value


def _update(table: str, **op: Any) -> crdt_pb2.CrdtUpdateRequest:
    return crdt_pb2.CrdtUpdateRequest(table=table, **op)


class _Local:
    """Which node answers the local calls: the last one that did."""

    def __init__(self, endpoints: list[str]):
        self.endpoints = list(endpoints)
        self.index = 0

    def order(self) -> list[str]:
        count = len(self.endpoints)
        return [self.endpoints[(self.index + k) % count] for k in range(count)]

    def answered(self, endpoint: str) -> None:
        self.index = self.endpoints.index(endpoint)


def _retryable(error: errors.TandemKVError, idempotent: bool) -> bool:
    return isinstance(error, errors.Unavailable) or (idempotent and isinstance(error, errors.OutcomeUnknown))


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
        self._local = _Local(client._router.endpoints)

    def counter(self, name: str) -> CrdtCounter:
        return CrdtCounter(self, name)

    def set(self, name: str) -> CrdtSet:
        return CrdtSet(self, name)

    def map(self, name: str) -> CrdtMap:
        return CrdtMap(self, name)

    def register(self, name: str) -> CrdtRegister:
        return CrdtRegister(self, name)

    # -- the catalog (Raft) --
    def create(self, name: str, type: str | int) -> bool:
        """Creates table `name` of `type` ('pn_counter', 'or_set', ...);
        returns False if it exists with that type. FailedPrecondition if it
        exists with another type."""
        request = crdt_pb2.CreateTableRequest(name=name, type=crdt_type(type), request_id=ops.new_request_id())
        return self._call("CreateTable", request, idempotent=True).created

    def drop(self, name: str) -> bool:
        request = crdt_pb2.DropTableRequest(name=name, request_id=ops.new_request_id())
        return self.client.run(ops.Operation("Crdt", "DropTable", request, lambda r: r.dropped, write=True))

    def list(self) -> dict[str, str]:
        """Every table's name -> type name (linearizable)."""
        operation = ops.Operation("Crdt", "ListTables", crdt_pb2.ListTablesRequest(),
                                  lambda r: {t.name: crdt_pb2.CrdtType.Name(t.type) for t in r.tables},
                                  write=False)
        return self.client.run(operation)

    # -- this node's replica --
    def update(self, request: crdt_pb2.CrdtUpdateRequest, *, idempotent: bool) -> str:
        """Sends one update; returns the name of the node that took it."""
        return self._call("Update", request, idempotent=idempotent).node

    def read(self, name: str) -> crdt_pb2.CrdtValue:
        return self._call("Read", crdt_pb2.CrdtReadRequest(table=name), idempotent=True)

    def scan(self, name: str, prefix: BytesLike = b"", limit: int = 0) -> list[tuple[bytes, bytes]]:
        """Members (value b"") or map entries whose key starts with `prefix`."""
        request = crdt_pb2.CrdtScanRequest(table=name, prefix=to_bytes(prefix, "prefix"), limit=limit)
        return [(e.key, e.value) for e in self._call("Scan", request, idempotent=True).entries]

    def subscribe(self, name: str) -> Iterator[crdt_pb2.CrdtValue]:
        """The table's value on one node now and after every change there,
        until the iterator is closed or the node goes away."""
        endpoint = self._local.order()[0]
        stream = self.client.stub("Crdt", endpoint).Subscribe(crdt_pb2.CrdtSubscribeRequest(table=name))
        try:
            yield from stream
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise error_from_rpc(error, b"") from None
        finally:
            stream.cancel()

    def ensure(self, name: str, type: int, call) -> Any:
        """`call()`, creating the table with `type` first if it is missing."""
        try:
            return call()
        except errors.NotFound:
            self.create(name, type)
        deadline = time.monotonic() + CREATED_VISIBLE_WAIT_S
        while True:
            try:
                return call()
            except errors.NotFound:
                if time.monotonic() > deadline:
                    raise
            self.client.retry.sleep(CREATED_VISIBLE_POLL_S)

    def _call(self, method: str, request: Any, *, idempotent: bool) -> Any:
        retry = self.client.retry
        deadline = retry.clock() + retry.deadline_s
        last: errors.TandemKVError | None = None
        for attempt in range(retry.attempts_max):
            for endpoint in self._local.order():
                timeout_s = min(retry.attempt_timeout_s, deadline - retry.clock())
                if timeout_s <= 0:
                    raise last or errors.Unavailable("no attempt fitted in the retry deadline")
                try:
                    response = getattr(self.client.stub("Crdt", endpoint), method)(request, timeout=timeout_s)
                except grpc.RpcError as rpc_error:
                    last = error_from_rpc(rpc_error, b"")
                    if not _retryable(last, idempotent):
                        raise last from None
                    continue
                self._local.answered(endpoint)
                return response
            retry.sleep(retry.backoff_s(attempt))
        raise last


class _Recipe:
    TYPES: tuple[int, ...] = ()
    CREATE_TYPE = 0

    def __init__(self, tables: CrdtTables, name: str):
        self.tables = tables
        self.name = name

    def _update(self, idempotent: bool = True, **op: Any) -> None:
        request = _update(self.name, **op)
        self.tables.ensure(self.name, self.CREATE_TYPE,
                           lambda: self.tables.update(request, idempotent=idempotent))

    def value(self) -> Any:
        """This node's current value of the table (see `plain`)."""
        read = self.tables.ensure(self.name, self.CREATE_TYPE, lambda: self.tables.read(self.name))
        return plain(_expect(read, self.TYPES))


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
        return self.items().get(to_bytes(key, "key"))

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
