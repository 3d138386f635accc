"""`AsyncClient.crdt`: the CRDT tables for asyncio, with the semantics and
failure modes of `tandemkv.client._crdt` (see there): the same calls and
plans, every call awaited.

Example::

    async with AsyncClient() as client:
        await client.crdt.counter("views").incr(5)
        await client.crdt.set("online").add(b"ann")
        print(await client.crdt.set("online").members())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator

import grpc

from tandemkv.client import _crdt as shared
from tandemkv.client._core import Invoke
from tandemkv.client._crdt import CrdtCounter, CrdtMap, CrdtRegister, CrdtSet, _Recipe
from tandemkv.client._crdt_keyed import AsyncKeyedTable
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.v1 import crdt_pb2

if TYPE_CHECKING:
    from tandemkv.client._async import AsyncClient


class AsyncCrdtTables:
    """`CrdtTables` for `AsyncClient`."""

    def __init__(self, client: AsyncClient):
        self.client = client

    def counter(self, name: str) -> AsyncCrdtCounter:
        return AsyncCrdtCounter(self, name)

    def set(self, name: str) -> AsyncCrdtSet:
        return AsyncCrdtSet(self, name)

    def map(self, name: str) -> AsyncCrdtMap:
        return AsyncCrdtMap(self, name)

    def register(self, name: str) -> AsyncCrdtRegister:
        return AsyncCrdtRegister(self, name)

    def keyed(self, name: str, type: str | int) -> AsyncKeyedTable:
        """Keyed table `name` of `type`; see `CrdtTables.keyed`."""
        return AsyncKeyedTable(self, name, type)

    async def create(self, name: str, type: str | int, *, keyed: bool = False) -> bool:
        return await self.client.run(shared.create_table(name, type, keyed))

    async def drop(self, name: str) -> bool:
        return await self.client.run(shared.drop_table(name))

    async def list(self) -> dict[str, str]:
        return await self.client.run(shared.list_tables())

    async def update(self, request: crdt_pb2.CrdtUpdateRequest, *, idempotent: bool) -> str:
        return await self.client.run(shared.update(request, idempotent))

    async def read(self, name: str) -> crdt_pb2.CrdtValue:
        return await self.client.run(shared.read(name))

    async def scan(self, name: str, prefix: BytesLike = b"", limit: int = 0) -> list[tuple[bytes, bytes]]:
        return await self.client.run(shared.scan(name, prefix, limit))

    async def subscribe(self, name: str) -> AsyncIterator[crdt_pb2.CrdtValue]:
        endpoint = self.client._local.order()[0]
        stream = self.client.stub("Crdt", endpoint).Subscribe(crdt_pb2.CrdtSubscribeRequest(table=name))
        try:
            async for value in stream:
                yield value
        except grpc.RpcError as error:
            if (failure := shared.subscribe_error(error)) is not None:
                raise failure from None
        finally:
            stream.cancel()

    async def ensure(self, name: str, type: int, call) -> Any:
        """`await call()`, creating the table with `type` first if it is missing."""
        return await self.client._run_plan(shared.ensure_table(self.client, name, type, Invoke(call)))


class _AsyncRecipe(_Recipe):
    """`_Recipe` awaited: the update and read plans are the same."""

    async def value(self) -> Any:  # type: ignore[override]
        return await self.tables.client._run_plan(self._read())


class AsyncCrdtCounter(_AsyncRecipe):
    TYPES, CREATE_TYPE = CrdtCounter.TYPES, CrdtCounter.CREATE_TYPE

    async def incr(self, n: int = 1) -> None:
        await self._update(idempotent=False, increment=n)

    async def decr(self, n: int = 1) -> None:
        await self._update(idempotent=False, increment=-n)

    async def get(self) -> int:
        return await self.value()


class AsyncCrdtSet(_AsyncRecipe):
    TYPES, CREATE_TYPE = CrdtSet.TYPES, CrdtSet.CREATE_TYPE

    async def add(self, member: BytesLike) -> None:
        await self._update(add=to_bytes(member, "member"))

    async def remove(self, member: BytesLike) -> None:
        await self._update(remove=to_bytes(member, "member"))

    async def members(self) -> list[bytes]:
        return await self.value()


class AsyncCrdtMap(_AsyncRecipe):
    TYPES, CREATE_TYPE = CrdtMap.TYPES, CrdtMap.CREATE_TYPE

    async def put(self, key: BytesLike, value: BytesLike) -> None:
        await self._update(put=crdt_pb2.MapPut(key=to_bytes(key, "key"), value=to_bytes(value, "value")))

    async def remove(self, key: BytesLike) -> None:
        await self._update(remove_key=to_bytes(key, "key"))

    async def get(self, key: BytesLike) -> bytes | None:
        return (await self.value()).get(to_bytes(key, "key"))

    async def items(self) -> dict[bytes, bytes]:
        return await self.value()


class AsyncCrdtRegister(_AsyncRecipe):
    TYPES, CREATE_TYPE = CrdtRegister.TYPES, CrdtRegister.CREATE_TYPE

    async def set(self, value: BytesLike) -> None:
        await self._update(set=to_bytes(value, "value"))

    async def get(self) -> bytes | None:
        return await self.value()
