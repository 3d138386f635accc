"""Keyed CRDT tables in the SDK: `client.crdt.keyed(name, type)`
(`KeyedTable`, and `AsyncKeyedTable` for `AsyncClient`).

A keyed table holds any number of keys, each its own CRDT value of the
table's type, and is catalogued once: the per-entity pattern (a profile
per user, a member set per room) is one table with a key per entity, not
a table per entity (tables go through Raft, at most CRDT_TABLES_MAX).

    profiles = client.crdt.keyed("profiles", "map")
    profiles.key(b"user:ann").put(b"name", b"Ann")   # a CrdtMap bound to one key
    profiles.key(b"user:ann").get(b"name")           # b"Ann" (this node's value)
    profiles.scan(b"user:")                           # a page of (key, value), key order
    profiles.remove(b"user:ann")                      # the key reads absent everywhere

`key(k)` gives the type's recipe (`CrdtCounter`, `CrdtSet`, `CrdtMap`,
`CrdtRegister`) bound to key `k`, with the recipe's methods and
semantics; the table is created (keyed) on the first write or read.
Semantics are the available plane's (see `_crdt`): one node's replica
answers, writes never wait on Raft, nodes converge by gossip (a write
reaches the others at the next 1 s round). `remove(k)` is the type's
observed remove: a write on another node that the removal had not seen
survives it (sets, maps; registers: the later wins); a counter's key
cannot be removed (FailedPrecondition).

`subscribe(key=...)` yields the key's value now, then each change on the
node it talks to; `subscribe(prefix=...)` yields a `KeyEvent` with
`resync=True` first, then each changed key with its new value (the
table's other keys are never sent). A resync means changes before it may
not have been sent (the start, or the subscriber fell
CRDT_KEY_FEED_PENDING_KEYS_MAX changed keys behind): `scan` what you
follow. Failure modes: NotFound for a table never created (create it with
`create()` or any write first); FailedPrecondition for a table that
exists single-valued or with another type; InvalidArgument for a key over
KEYED_KEY_BYTES_MAX (256) bytes.

Both clients share the plans below; only the awaiting differs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, AsyncIterator, Iterator

import grpc

from tandemkv import errors
from tandemkv.client import _crdt as shared
from tandemkv.client import _operations as ops
from tandemkv.client._core import Call, Plan
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.v1 import crdt_pb2

# A keyed table's type by the names `keyed` takes, and the recipe of its keys.
KEYED_TYPES = {"counter": crdt_pb2.PN_COUNTER, "pn_counter": crdt_pb2.PN_COUNTER,
               "set": crdt_pb2.OR_SET, "or_set": crdt_pb2.OR_SET,
               "map": crdt_pb2.AW_LWW_MAP, "aw_lww_map": crdt_pb2.AW_LWW_MAP,
               "register": crdt_pb2.LWW_REGISTER, "lww_register": crdt_pb2.LWW_REGISTER}


@dataclasses.dataclass(frozen=True)
class KeyedPage:
    """Present keys in key order with their values; `resume_after`: pass
    as `after` for the next page (None: done). A page may be short, even
    empty, with more to come (it stops after looking at many removed keys)."""

    items: list[tuple[bytes, Any]]
    resume_after: bytes | None


@dataclasses.dataclass(frozen=True)
class KeyEvent:
    """One change of a keyed subscription: `key` and its new value (None
    when the key is absent: never written, or removed); or `resync` (no
    key): read what you follow now, every change after this is sent."""

    key: bytes | None
    value: Any
    resync: bool = False


def keyed_type(type: str | int) -> int:
    if isinstance(type, int) and type in KEYED_TYPES.values():
        return type
    found = KEYED_TYPES.get(str(type).lower())
    if found is None:
        raise errors.InvalidArgument(f"a keyed table's type is one of {sorted(KEYED_TYPES)}, not {type!r}")
    return found


def event(value: crdt_pb2.CrdtValue) -> KeyEvent:
    if value.resync:
        return KeyEvent(None, None, True)
    return KeyEvent(value.key, shared.plain(value) if value.present else None)


def scan_keys(name: str, prefix: bytes, after: bytes | None, limit: int) -> ops.Operation:
    request = crdt_pb2.CrdtScanRequest(table=name, prefix=prefix, limit=limit)
    if after is not None:
        request.after = after
    return shared._local("Scan", request, lambda r: KeyedPage(
        [(v.key, shared.plain(v)) for v in r.values],
        r.resume_after if r.HasField("resume_after") else None), write=False)


def subscribe_request(name: str, key: BytesLike | None, prefix: BytesLike | None) -> crdt_pb2.CrdtSubscribeRequest:
    if (key is None) == (prefix is None):
        raise errors.InvalidArgument("subscribe to a keyed table's key or prefix: give exactly one")
    request = crdt_pb2.CrdtSubscribeRequest(table=name)
    if key is not None:
        request.key = to_bytes(key, "key")
    else:
        request.prefix = to_bytes(prefix, "prefix")
    return request


class _KeyedShared:
    """What both clients' keyed tables share: the recipe per key, the plans."""

    RECIPES: dict[int, type] = {}

    def __init__(self, tables: Any, name: str, type: str | int):
        self.tables = tables
        self.name = name
        self.type = keyed_type(type)

    def key(self, key: BytesLike) -> Any:
        """The type's recipe bound to `key` (see the module docs)."""
        return self.RECIPES[self.type](self.tables, self.name, to_bytes(key, "key"))

    __getitem__ = key

    def _ensure(self, operation: ops.Operation) -> Plan:
        return shared.ensure_table(self.tables.client, self.name, self.type, Call(operation), keyed=True)

    def _remove_plan(self, key: BytesLike) -> Plan:
        request = crdt_pb2.CrdtUpdateRequest(table=self.name, remove_entry=True, key=to_bytes(key, "key"))
        return self._ensure(shared.update(request, idempotent=True))

    def _scan_plan(self, prefix: BytesLike, after: BytesLike | None, limit: int) -> Plan:
        return self._ensure(scan_keys(self.name, to_bytes(prefix, "prefix"),
                                      None if after is None else to_bytes(after, "after"), limit))

    def _stream(self, key: BytesLike | None, prefix: BytesLike | None) -> Any:
        endpoint = self.tables.client._local.order()[0]
        return self.tables.client.stub("Crdt", endpoint).Subscribe(subscribe_request(self.name, key, prefix))


class KeyedTable(_KeyedShared):
    """A keyed table of `Client` (see the module docs)."""

    RECIPES = {crdt_pb2.PN_COUNTER: shared.CrdtCounter, crdt_pb2.OR_SET: shared.CrdtSet,
               crdt_pb2.AW_LWW_MAP: shared.CrdtMap, crdt_pb2.LWW_REGISTER: shared.CrdtRegister}

    def create(self) -> bool:
        """Creates the table now (writes create it too); False if it existed."""
        return self.tables.create(self.name, self.type, keyed=True)

    def remove(self, key: BytesLike) -> None:
        """Removes `key` (its type's observed remove; counters: FailedPrecondition)."""
        self.tables.client._run_plan(self._remove_plan(key))

    def scan(self, prefix: BytesLike = b"", *, after: BytesLike | None = None, limit: int = 0) -> KeyedPage:
        """One page of present keys starting with `prefix`, after `after`."""
        return self.tables.client._run_plan(self._scan_plan(prefix, after, limit))

    def items(self, prefix: BytesLike = b"", *, page_size: int = 0) -> Iterator[tuple[bytes, Any]]:
        """Every present key with `prefix` and its value, page by page."""
        after = None
        while True:
            page = self.scan(prefix, after=after, limit=page_size)
            yield from page.items
            if page.resume_after is None:
                return
            after = page.resume_after

    def subscribe(self, *, key: BytesLike | None = None, prefix: BytesLike | None = None) -> Iterator[KeyEvent]:
        """Changes of one key or of every key with a prefix (module docs),
        until the iterator is closed or the node goes away."""
        stream = self._stream(key, prefix)
        try:
            for value in stream:
                yield event(value)
        except grpc.RpcError as error:
            if (failure := shared.subscribe_error(error)) is not None:
                raise failure from None
        finally:
            stream.cancel()


class AsyncKeyedTable(_KeyedShared):
    """`KeyedTable` for `AsyncClient`: the same plans, awaited."""

    def __init__(self, tables: Any, name: str, type: str | int):
        from tandemkv.client import _crdt_async
        super().__init__(tables, name, type)
        self.RECIPES = {crdt_pb2.PN_COUNTER: _crdt_async.AsyncCrdtCounter,
                        crdt_pb2.OR_SET: _crdt_async.AsyncCrdtSet,
                        crdt_pb2.AW_LWW_MAP: _crdt_async.AsyncCrdtMap,
                        crdt_pb2.LWW_REGISTER: _crdt_async.AsyncCrdtRegister}

    async def create(self) -> bool:
        return await self.tables.create(self.name, self.type, keyed=True)

    async def remove(self, key: BytesLike) -> None:
        await self.tables.client._run_plan(self._remove_plan(key))

    async def scan(self, prefix: BytesLike = b"", *, after: BytesLike | None = None, limit: int = 0) -> KeyedPage:
        return await self.tables.client._run_plan(self._scan_plan(prefix, after, limit))

    async def items(self, prefix: BytesLike = b"", *, page_size: int = 0) -> AsyncIterator[tuple[bytes, Any]]:
        after = None
        while True:
            page = await self.scan(prefix, after=after, limit=page_size)
            for item in page.items:
                yield item
            if page.resume_after is None:
                return
            after = page.resume_after

    async def subscribe(self, *, key: BytesLike | None = None,
                        prefix: BytesLike | None = None) -> AsyncIterator[KeyEvent]:
        stream = self._stream(key, prefix)
        try:
            async for value in stream:
                yield event(value)
        except grpc.RpcError as error:
            if (failure := shared.subscribe_error(error)) is not None:
                raise failure from None
        finally:
            stream.cancel()
