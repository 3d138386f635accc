"""`AsyncClient.crdt`: the CRDT tables for asyncio, with the semantics and
failure modes of `tandemkv.client._crdt` (see there); every call awaited.

Example::

    async with AsyncClient() as client:
        await client.crdt.counter("views").incr(5)
        await client.crdt.set("online").add(b"ann")
        print(await client.crdt.set("online").members())
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator

import grpc

from tandemkv import errors
from tandemkv.client import _operations as ops
from tandemkv.client._crdt import (CREATED_VISIBLE_POLL_S, CREATED_VISIBLE_WAIT_S, CrdtCounter, CrdtMap,
                                   CrdtRegister, CrdtSet, _expect, _Local, _retryable, _update, crdt_type,
                                   plain)
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.client._retry import error_from_rpc
from tandemkv.v1 import crdt_pb2

if TYPE_CHECKING:
    from tandemkv.client._async import AsyncClient


class AsyncCrdtTables:
    def __init__(self, client: AsyncClient):
        self.client = client
        self._local = _Local(client._router.endpoints)

    def counter(self, name: str) -> AsyncCrdtCounter:
        return AsyncCrdtCounter(self, name)

    def set(self, name: str) -> AsyncCrdtSet:
        return AsyncCrdtSet(self, name)

    def map(self, name: str) -> AsyncCrdtMap:
        return AsyncCrdtMap(self, name)

    def register(self, name: str) -> AsyncCrdtRegister:
        return AsyncCrdtRegister(self, name)

    async def create(self, name: str, type: str | int) -> bool:
        request = crdt_pb2.CreateTableRequest(name=name, type=crdt_type(type), request_id=ops.new_request_id())
        return (await self._call("CreateTable", request, idempotent=True)).created

    async def drop(self, name: str) -> bool:
        request = crdt_pb2.DropTableRequest(name=name, request_id=ops.new_request_id())
        return await self.client.run(ops.Operation("Crdt", "DropTable", request, lambda r: r.dropped, write=True))

    async def list(self) -> dict[str, str]:
        operation = ops.Operation("Crdt", "ListTables", crdt_pb2.ListTablesRequest(),
                                  lambda r: {t.name: crdt_pb2.CrdtType.Name(t.type) for t in r.tables},
                                  write=False)
        return await self.client.run(operation)

    async def update(self, request: crdt_pb2.CrdtUpdateRequest, *, idempotent: bool) -> str:
        return (await self._call("Update", request, idempotent=idempotent)).node

    async def read(self, name: str) -> crdt_pb2.CrdtValue:
        return await self._call("Read", crdt_pb2.CrdtReadRequest(table=name), idempotent=True)

    async def scan(self, name: str, prefix: BytesLike = b"", limit: int = 0) -> list[tuple[bytes, bytes]]:
        request = crdt_pb2.CrdtScanRequest(table=name, prefix=to_bytes(prefix, "prefix"), limit=limit)
        return [(e.key, e.value) for e in (await self._call("Scan", request, idempotent=True)).entries]

    async def subscribe(self, name: str) -> AsyncIterator[crdt_pb2.CrdtValue]:
        endpoint = self._local.order()[0]
        stream = self.client.stub("Crdt", endpoint).Subscribe(crdt_pb2.CrdtSubscribeRequest(table=name))
        try:
            async for value in stream:
                yield value
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise error_from_rpc(error, b"") from None
        finally:
            stream.cancel()

    async def ensure(self, name: str, type: int, call) -> Any:
        try:
            return await call()
        except errors.NotFound:
            await self.create(name, type)
        deadline = asyncio.get_running_loop().time() + CREATED_VISIBLE_WAIT_S
        while True:
            try:
                return await call()
            except errors.NotFound:
                if asyncio.get_running_loop().time() > deadline:
                    raise
            await self.client.retry.async_sleep(CREATED_VISIBLE_POLL_S)

    async def _call(self, method: str, request: Any, *, idempotent: bool) -> Any:
        retry = self.client.retry
        deadline = retry.clock() + retry.deadline_s
        last: errors.TandemKVError | None = None
        for attempt in range(retry.attempts_max):
            for endpoint in self._local.order():
                timeout_s = min(retry.attempt_timeout_s, deadline - retry.clock())
                if timeout_s <= 0:
                    raise last or errors.Unavailable("no attempt fitted in the retry deadline")
                try:
                    response = await getattr(self.client.stub("Crdt", endpoint), method)(request, timeout=timeout_s)
                except grpc.RpcError as rpc_error:
                    last = error_from_rpc(rpc_error, b"")
                    if not _retryable(last, idempotent):
                        raise last from None
                    continue
                self._local.answered(endpoint)
                return response
            await retry.async_sleep(retry.backoff_s(attempt))
        raise last


class _AsyncRecipe:
    SYNC: type = CrdtCounter

    def __init__(self, tables: AsyncCrdtTables, name: str):
        self.tables = tables
        self.name = name

    async def _update(self, idempotent: bool = True, **op: Any) -> None:
        request = _update(self.name, **op)
        await self.tables.ensure(self.name, self.SYNC.CREATE_TYPE,
                                 lambda: self.tables.update(request, idempotent=idempotent))

    async def value(self) -> Any:
        read = await self.tables.ensure(self.name, self.SYNC.CREATE_TYPE, lambda: self.tables.read(self.name))
        return plain(_expect(read, self.SYNC.TYPES))


class AsyncCrdtCounter(_AsyncRecipe):
    SYNC = CrdtCounter

    async def incr(self, n: int = 1) -> None:
        await self._update(idempotent=False, increment=n)

    async def decr(self, n: int = 1) -> None:
        await self._update(idempotent=False, increment=-n)

    async def get(self) -> int:
        return await self.value()


class AsyncCrdtSet(_AsyncRecipe):
    SYNC = CrdtSet

    async def add(self, member: BytesLike) -> None:
        await self._update(add=to_bytes(member, "member"))

    async def remove(self, member: BytesLike) -> None:
        await self._update(remove=to_bytes(member, "member"))

    async def members(self) -> list[bytes]:
        return await self.value()


class AsyncCrdtMap(_AsyncRecipe):
    SYNC = CrdtMap

    async def put(self, key: BytesLike, value: BytesLike) -> None:
        await self._update(put=crdt_pb2.MapPut(key=to_bytes(key, "key"), value=to_bytes(value, "value")))

    async def remove(self, key: BytesLike) -> None:
        await self._update(remove_key=to_bytes(key, "key"))

    async def get(self, key: BytesLike) -> bytes | None:
        return (await self.items()).get(to_bytes(key, "key"))

    async def items(self) -> dict[bytes, bytes]:
        return await self.value()


class AsyncCrdtRegister(_AsyncRecipe):
    SYNC = CrdtRegister

    async def set(self, value: BytesLike) -> None:
        await self._update(set=to_bytes(value, "value"))

    async def get(self) -> bytes | None:
        return await self.value()
