"""`AsyncClient`: the asyncio SDK (grpc.aio), the same surface as `Client`
and a thin shell around the same core (`_core`): the core decides every
call; this shell sends, awaits and sleeps."""

from __future__ import annotations

from typing import Any, Iterable
from functools import cached_property

import grpc
import grpc.aio

from tandemkv.client import _coordination_ops as cops
from tandemkv.client import _core as core
from tandemkv.client import _operations as ops
from tandemkv.client._auth import AsyncAuth
from tandemkv.client._auth_core import resolve_credentials
from tandemkv.client._auth_session import AsyncAuthSession, async_interceptors, tracing_configured
from tandemkv.client._claims_async import AsyncElection, AsyncLock, AsyncRegistry
from tandemkv.client._crdt_async import AsyncCrdtTables
from tandemkv.client._jobs_async import AsyncJobs
from tandemkv.client._leases import AsyncLease, lease_id
from tandemkv.client._members import AsyncMembers
from tandemkv.client._pipeline import batchable
from tandemkv.client._maintenance_async import AsyncMaintenance
from tandemkv.client._presence_async import AsyncPresence
from tandemkv.client._pubsub_async import AsyncPubSub
from tandemkv.client._pipeline_drivers import AsyncPipeline
from tandemkv.client._recipes import AsyncCounter, AsyncTxn
from tandemkv.client._watch import AsyncWatcher
from tandemkv.client._watch_mux_async import AsyncWatchStreams
from tandemkv.client._results import BytesLike, ClusterStatus, KeyValue, PutResult, RangeResult
from tandemkv.client._retry import Retry
from tandemkv.client._stubs import StubCache
from tandemkv.client._routing import LocalEndpoints, Router, resolve_endpoints
from tandemkv.client._sync import CHANNEL_OPTIONS, STUBS
from tandemkv.client._tls import ChannelFactory, TLSConfig, resolve_tls
from tandemkv.errors import TandemKVError


class AsyncClient:
    """A TandemKV client for asyncio; see `Client` for endpoints, routing,
    retries, errors and `pipeline` (concurrent calls from many tasks
    coalesce into batched calls; `pipeline=False` sends one RPC per call).
    Create and use it inside one event loop. `user`/`password`, `token`
    and `tls` as for `Client`.

    Example::

        from tandemkv.client import AsyncClient

        async def main():
            async with AsyncClient() as client:
                await client.put("greeting", "hello")
                assert await client.get("greeting") == b"hello"
    """

    def __init__(self, endpoints: Iterable[str] | str | None = None, *, retry: Retry | None = None,
                 pipeline: bool = True, tls: TLSConfig | bool | None = None, user: str | None = None,
                 password: str | None = None, token: str | None = None):
        self.retry = retry or Retry()
        self._router = Router(resolve_endpoints(endpoints))
        # TLS as passed, else from TANDEMKV_CA/_CERT/_KEY or `tandemkv up --tls` (client/_tls.py).
        self.tls = resolve_tls(tls, endpoints)
        # Credentials as passed, else from TANDEMKV_TOKEN or _USER/_PASSWORD (client/_auth_core.py).
        self.credentials = resolve_credentials(user, password, token)
        self._auth_session = None if self.credentials is None else AsyncAuthSession(
            self.credentials, lambda operation: self._call(operation, self.retry))
        self._channel_factory = ChannelFactory(self.tls, async_interceptors(self._auth_session,
                                                                            tracing_configured()))
        self._local = LocalEndpoints(self._router.endpoints)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs = StubCache(STUBS)  # one stub per (service, channel): building one per call is dear
        # Concurrent calls coalesce into Batch.Call (see `_pipeline`); off: one RPC per call.
        self._pipeline = AsyncPipeline(self.stub, self._send_plain) if pipeline else None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if "presence" in self.__dict__:
            await self.presence.close()  # its entries leave now rather than at their TTL
        if self._pipeline is not None:
            self._pipeline.closing()
        await self._watch_streams().close()
        channels, self._channels = list(self._channels.values()), {}
        self._stubs.clear()
        for channel in channels:
            await channel.close()
        if self._pipeline is not None:
            await self._pipeline.close()

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
        return await self._run_plan(cops.every_lease(stale))

    @property
    def registry(self) -> AsyncRegistry:
        return AsyncRegistry(self)

    def lock(self, name: BytesLike, ttl: float = 10.0, wait: float | None = 30.0) -> AsyncLock:
        return AsyncLock(self, name, ttl, wait)

    def election(self, name: BytesLike) -> AsyncElection:
        return AsyncElection(self, name)

    def watch(self, key_or_prefix: BytesLike, *, prefix: bool = False, start_revision: int = 0,
              prev_kv: bool = False, resync: bool = True) -> AsyncWatcher:
        """`async for event in client.watch("jobs/", prefix=True)`; one key
        unless `prefix=True`; multiplexed, buffered and resynced as
        `Client.watch` says. Its watch starts when iteration starts."""
        return AsyncWatcher(self, key_or_prefix, prefix, start_revision, prev_kv, resync)

    def _watch_streams(self) -> AsyncWatchStreams:
        """The multiplexer of this client's watches (made by the first watch)."""
        streams = self.__dict__.get("_watch_mux")
        if streams is None:
            streams = self.__dict__["_watch_mux"] = AsyncWatchStreams(self)
        return streams

    @cached_property
    def crdt(self) -> AsyncCrdtTables:
        """The CRDT tables; see `Client.crdt`."""
        return AsyncCrdtTables(self)

    @cached_property
    def pubsub(self) -> AsyncPubSub:
        """Best-effort pub/sub; see `Client.pubsub`."""
        return AsyncPubSub(self)

    @cached_property
    def presence(self) -> AsyncPresence:
        """Presence; see `Client.presence`."""
        return AsyncPresence(self)

    @cached_property
    def jobs(self) -> AsyncJobs:
        """The durable job queue; see `Client.jobs`."""
        return AsyncJobs(self)

    @cached_property
    def auth(self) -> AsyncAuth:
        """Users, roles, enable/disable/status; see `Client.auth`."""
        return AsyncAuth(self)

    @cached_property
    def maintenance(self) -> AsyncMaintenance:
        """Operator calls; see `Client.maintenance`."""
        return AsyncMaintenance(self)

    @cached_property
    def members(self) -> AsyncMembers:
        """Cluster membership; see `Client.members`."""
        return AsyncMembers(self)

    async def status(self) -> ClusterStatus:
        """Every node's view; see `Client.status`."""
        return await self._run_plan(core.cluster_status(self._router.endpoints))

    async def leader(self) -> str | None:
        if self._router.leader is None:
            await self._run_plan(core.find_leader(self._router, core.STATUS_TIMEOUT_S_MAX))
        return self._router.leader

    # -- the shell: sends, sleeps, awaits; the core (`_core`) decides ---------
    async def run(self, operation: ops.Operation, *, retry: Retry | None = None) -> Any:
        """Sends `operation` with routing and retries (see `Client.run`)."""
        return await self._call(operation, retry or self.retry)

    async def _call(self, operation: ops.Operation, retry: Retry) -> Any:
        """The one place every unary operation of this client passes; see
        `Client._call`."""
        attempts = core.attempts_for(operation, retry, self._router, self._local)
        return await self._run_plan(core.unary(operation, attempts))

    async def _run_plan(self, plan: core.Plan) -> Any:
        """Drives a plan of the core; see `Client._run_plan`."""
        walk = core.Walk(plan)
        while (action := walk.next()) is not None:
            if isinstance(action, core.Sleep):
                await action.retry.async_sleep(action.seconds)
                continue
            try:
                walk.outcome = await self._perform(action)
            except (grpc.RpcError, TandemKVError) as error:
                walk.failure = error
        return walk.result

    async def _perform(self, action: core.Send | core.Call | core.Invoke | core.Renew) -> Any:
        if isinstance(action, core.Send):
            return await self._send(action.endpoint, action.operation, action.timeout_s)
        if isinstance(action, core.Renew):  # a new token, then the call once more
            return self._auth_session is not None and await self._auth_session.renew_after_refusal()
        if isinstance(action, core.Call):
            return await self._call(action.operation, action.retry or self.retry)
        return await action.function()

    def stub(self, service: str, endpoint: str) -> Any:
        """The generated stub of `service` on `endpoint`'s channel (one per
        service and channel, `_stubs.StubCache`)."""
        channel = self._channels.get(endpoint)
        if channel is None:
            channel = self._channel_factory.open_aio(endpoint, CHANNEL_OPTIONS)
            self._channels[endpoint] = channel
        return self._stubs.get(service, channel)

    async def _send(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        """One attempt: through the pipeline when `Batch.Call` carries it."""
        if self._pipeline is not None and batchable(operation):
            return await self._pipeline.send(endpoint, operation, timeout_s)
        return await self._send_plain(endpoint, operation, timeout_s)

    async def _send_plain(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        method = getattr(self.stub(operation.service, endpoint), operation.method)
        if not operation.stream:
            return await method(operation.request, timeout=timeout_s)
        call = method(iter([operation.request]), timeout=timeout_s)
        try:
            return await call.read()
        finally:
            call.cancel()
