"""`AsyncClient`: the asyncio SDK (grpc.aio), the same surface and the same
routing and retry rules as `Client`, every call awaited."""

from __future__ import annotations

from typing import Any, Iterable
from functools import cached_property

import grpc
import grpc.aio

from tandemkv.client import _coordination_ops as cops
from tandemkv.client import _operations as ops
from tandemkv.client._claims_async import AsyncElection, AsyncLock, AsyncRegistry
from tandemkv.client._crdt_async import AsyncCrdtTables
from tandemkv.client._leases import AsyncLease, lease_id
from tandemkv.client._recipes import AsyncCounter, AsyncTxn
from tandemkv.client._watch import AsyncWatcher
from tandemkv.client._results import BytesLike, ClusterStatus, KeyValue, NodeInfo, PutResult, RangeResult
from tandemkv.client._retry import Attempts, Retry, error_from_rpc
from tandemkv.client._routing import Router, resolve_endpoints
from tandemkv.client._sync import CHANNEL_OPTIONS, STATUS_NODES_MAX, STATUS_TIMEOUT_S_MAX, STUBS


class AsyncClient:
    """A TandemKV client for asyncio; see `Client` for endpoints, routing,
    retries and errors. Create and use it inside one event loop.

    Example::

        from tandemkv.client import AsyncClient

        async def main():
            async with AsyncClient() as client:
                await client.put("greeting", "hello")
                assert await client.get("greeting") == b"hello"
    """

    def __init__(self, endpoints: Iterable[str] | str | None = None, *, retry: Retry | None = None):
        self.retry = retry or Retry()
        self._router = Router(resolve_endpoints(endpoints))
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    async def put(self, key: BytesLike, value: BytesLike, *, prev_kv: bool = False,
                  request_id: bytes | None = None, lease: AsyncLease | int = 0) -> PutResult:
        return await self.run(ops.put(key, value, prev_kv, request_id, lease_id(lease)))

    async def get(self, key: BytesLike, *, stale: bool = False) -> bytes | None:
        kv = await self.run(ops.get(key, stale))
        return None if kv is None else kv.value

    async def get_kv(self, key: BytesLike, *, stale: bool = False) -> KeyValue | None:
        return await self.run(ops.get(key, stale))

    async def range(self, prefix: BytesLike = b"", *, end: BytesLike | None = None, limit: int = 0,
                    keys_only: bool = False, stale: bool = False) -> RangeResult:
        return await self.run(ops.range_(prefix, end, limit, keys_only, stale))

    async def delete(self, key: BytesLike, *, prefix: bool = False, request_id: bytes | None = None) -> int:
        return await self.run(ops.delete(key, prefix, request_id))

    def txn(self) -> AsyncTxn:
        return AsyncTxn(self)

    def counter(self, name: BytesLike) -> AsyncCounter:
        return AsyncCounter(self, name)

    def lease(self, ttl_s: float) -> AsyncLease:
        """A lease of `ttl_s` seconds, granted when awaited or entered
        (`async with client.lease(10) as lease:` renews it in a task and
        revokes it on exit); see `Lease`."""
        return AsyncLease(self, ttl_s)

    async def leases(self, *, stale: bool = False) -> list[cops.LeaseInfo]:
        """Every lease that exists, in id order; see `Client.leases`."""
        found: list[cops.LeaseInfo] = []
        while True:
            page = await self.run(cops.lease_list(found[-1].id if found else 0, stale))
            found += page.leases
            if not page.more or not page.leases:
                return found

    @property
    def registry(self) -> AsyncRegistry:
        return AsyncRegistry(self)

    def lock(self, name: BytesLike, ttl: float = 10.0, wait: float | None = 30.0) -> AsyncLock:
        return AsyncLock(self, name, ttl, wait)

    def election(self, name: BytesLike) -> AsyncElection:
        return AsyncElection(self, name)

    def watch(self, key_or_prefix: BytesLike, *, prefix: bool = False, start_revision: int = 0,
              prev_kv: bool = False) -> AsyncWatcher:
        """`async for event in client.watch("jobs/", prefix=True)`; one key
        unless `prefix=True`; see `Client.watch`."""
        return AsyncWatcher(self, key_or_prefix, prefix, start_revision, prev_kv)

    @cached_property
    def crdt(self) -> AsyncCrdtTables:
        """The CRDT tables; see `Client.crdt`."""
        return AsyncCrdtTables(self)

    async def status(self) -> ClusterStatus:
        """Every node's view; see `Client.status`."""
        seen: dict[str, NodeInfo] = {}
        pending = list(self._router.endpoints)
        while pending and len(seen) < STATUS_NODES_MAX:
            endpoint = pending.pop(0)
            if endpoint in seen:
                continue
            try:
                response = await self._send(endpoint, ops.status(), STATUS_TIMEOUT_S_MAX)
            except grpc.RpcError as error:
                seen[endpoint] = NodeInfo(endpoint=endpoint, error=error_from_rpc(error, b"").message)
                continue
            seen[endpoint] = ops.node_info(endpoint, response)
            pending.extend(ops.member_endpoints(response))
        return ops.cluster_status(list(seen.values()))

    async def leader(self) -> str | None:
        if self._router.leader is None:
            await self._find_leader(STATUS_TIMEOUT_S_MAX)
        return self._router.leader

    async def run(self, operation: ops.Operation, *, retry: Retry | None = None) -> Any:
        """Sends `operation` with routing and retries (see `Client.run`)."""
        retry = retry or self.retry
        attempts = Attempts(retry, operation.request_id, operation.write)
        while (timeout_s := attempts.timeout_s()) is not None:
            if self._router.leader is None:
                await self._find_leader(min(timeout_s, STATUS_TIMEOUT_S_MAX))
            endpoint = self._router.pick()
            try:
                return operation.decode(await self._send(endpoint, operation, timeout_s))
            except grpc.RpcError as rpc_error:
                error = error_from_rpc(rpc_error, operation.request_id)
            delay_s = attempts.failed(error, self._router.failed(endpoint, error))
            if delay_s is None:
                break
            await retry.async_sleep(delay_s)
        raise attempts.final_error()

    async def _find_leader(self, timeout_s: float) -> None:
        for endpoint in list(self._router.endpoints):
            try:
                response = await self._send(endpoint, ops.status(), timeout_s)
            except grpc.RpcError:
                continue
            if response.leader_client_address:
                self._router.learn_leader(response.leader_client_address)
                return

    def stub(self, service: str, endpoint: str) -> Any:
        """The generated stub of `service` on `endpoint`'s channel."""
        channel = self._channels.get(endpoint)
        if channel is None:
            channel = grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
            self._channels[endpoint] = channel
        return STUBS[service](channel)

    async def _send(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        method = getattr(self.stub(operation.service, endpoint), operation.method)
        if not operation.stream:
            return await method(operation.request, timeout=timeout_s)
        call = method(iter([operation.request]), timeout=timeout_s)
        try:
            return await call.read()
        finally:
            call.cancel()
