"""`AsyncClient`: the asyncio SDK (grpc.aio), the same surface and the same
routing and retry rules as `Client`, every call awaited."""

from __future__ import annotations

from typing import Any, Iterable

import grpc
import grpc.aio

from tandemkv.client import _operations as ops
from tandemkv.client._recipes import AsyncCounter, AsyncTxn
from tandemkv.client._results import BytesLike, ClusterStatus, KeyValue, NodeInfo, PutResult, RangeResult
from tandemkv.client._retry import Attempts, Retry, error_from_rpc
from tandemkv.client._routing import Router, resolve_endpoints
from tandemkv.client._sync import CHANNEL_OPTIONS, STATUS_NODES_MAX, STATUS_TIMEOUT_SECONDS_MAX, STUBS


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
            request_id: bytes | None = None) -> PutResult:
        return await self.run(ops.put(key, value, prev_kv, request_id))

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

    async def status(self) -> ClusterStatus:
        seen: dict[str, NodeInfo] = {}
        pending = list(self._router.endpoints)
        while pending and len(seen) < STATUS_NODES_MAX:
            endpoint = pending.pop(0)
            if endpoint in seen:
                continue
            try:
                response = await self._send(endpoint, ops.status(), STATUS_TIMEOUT_SECONDS_MAX)
            except grpc.RpcError as error:
                seen[endpoint] = NodeInfo(endpoint=endpoint, error=error_from_rpc(error, b"").message)
                continue
            seen[endpoint] = ops.node_info(endpoint, response)
            pending.extend(ops.member_endpoints(response))
        return ops.cluster_status(list(seen.values()))

    async def leader(self) -> str | None:
        if self._router.leader is None:
            await self._find_leader(STATUS_TIMEOUT_SECONDS_MAX)
        return self._router.leader

    async def run(self, operation: ops.Operation) -> Any:
        """Sends `operation` with routing and retries (see `Client.run`)."""
        attempts = Attempts(self.retry, operation.request_id, operation.write)
        while (timeout_s := attempts.timeout_s()) is not None:
            if self._router.leader is None:
                await self._find_leader(min(timeout_s, STATUS_TIMEOUT_SECONDS_MAX))
            endpoint = self._router.pick()
            try:
                return operation.decode(await self._send(endpoint, operation, timeout_s))
            except grpc.RpcError as rpc_error:
                error = error_from_rpc(rpc_error, operation.request_id)
            delay_s = attempts.failed(error, self._router.failed(endpoint, error))
            if delay_s is None:
                break
            await self.retry.async_sleep(delay_s)
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

    async def _send(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        channel = self._channels.get(endpoint)
        if channel is None:
            channel = grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
            self._channels[endpoint] = channel
        stub = STUBS[operation.service](channel)
        return await getattr(stub, operation.method)(operation.request, timeout=timeout_s)
