"""The registry, `hold`, locks and elections for `AsyncClient`: the same
semantics as in `_claims` (read the docstrings there), every call awaited,
leases renewed by tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tandemkv.client import _coordination_ops as cops
from tandemkv.client._claim_steps import ElectionSteps, HoldSteps, LockSteps
from tandemkv.client._core import Plan
from tandemkv.client._operations import Operation
from tandemkv.client._coordination_ops import Registration
from tandemkv.client._leases import AsyncLease, lease_id, log
from tandemkv.client._results import BytesLike
from tandemkv.client._watch import AsyncObserver
from tandemkv.errors import TandemKVError

if TYPE_CHECKING:
    from tandemkv.client._async import AsyncClient


async def _quietly(awaitable, what: str) -> None:
    try:
        await awaitable
    except TandemKVError as error:
        log.warning("could not release %s (it is released when its lease expires): %s",
                    what, error.message)


class AsyncRegistry:
    """`Registry` for `AsyncClient`.

    Example::

        async with client.registry.hold("billing", "10.0.0.7:9000", ttl=10) as token:
            print(await client.registry.whereis("billing"))
    """

    def __init__(self, client: AsyncClient):
        self.client = client

    async def register(self, name: BytesLike, value: BytesLike, lease: AsyncLease | int) -> int:
        return await self.client.run(cops.register(name, value, lease_id(lease)))

    async def whereis(self, name: BytesLike, *, stale: bool = False) -> Registration | None:
        return await self.client.run(cops.whereis(name, stale))

    async def unregister(self, name: BytesLike, token: int) -> bool:
        return await self.client.run(cops.unregister(name, token))

    async def list(self, prefix: BytesLike = b"", *, stale: bool = False) -> list[Registration]:
        return await self.client.run(cops.registry_list(prefix, stale))

    def hold(self, name: BytesLike, value: BytesLike, ttl: float = 10.0) -> AsyncHold:
        return AsyncHold(self.client, name, value, ttl)


class _AsyncHeldUnderLease:
    """`_claims._HeldUnderLease` for `async with`; the lease exists (not
    granted yet) from the start, so `lost` can be read at any time."""

    client: AsyncClient
    token: int
    lease: AsyncLease
    RENEW_WHILE_CLAIMING: bool

    def _claim(self, lease: int) -> Plan:
        raise NotImplementedError

    def _release(self) -> tuple[Operation, str]:
        raise NotImplementedError

    @property
    def lost(self):
        return self.lease.lost

    async def __aenter__(self) -> int:
        await self.lease.grant()
        if self.RENEW_WHILE_CLAIMING:
            self.lease.start_keepalive()
        try:
            self.token = await self.client._run_plan(self._claim(self.lease.id))
        except BaseException:
            await _quietly(self.lease.revoke(), f"lease {self.lease.id}")
            raise
        self.lease.start_keepalive()
        return self.token

    async def __aexit__(self, *exc_info: object) -> None:
        await self.lease.stop_keepalive()
        release, what = self._release()
        await _quietly(self.client.run(release), what)
        await _quietly(self.lease.revoke(), f"lease {self.lease.id}")


class AsyncHold(HoldSteps, _AsyncHeldUnderLease):
    """`Hold` for `AsyncClient`; `lost` is an `asyncio.Event`."""

    def __init__(self, client: AsyncClient, name: BytesLike, value: BytesLike, ttl: float):
        super().__init__(client, name, value)
        self.lease = AsyncLease(client, ttl)


class AsyncLock(LockSteps, _AsyncHeldUnderLease):
    """`Lock` for `AsyncClient`: `async with client.lock("name") as token:`."""

    def __init__(self, client: AsyncClient, name: BytesLike, ttl: float = 10.0,
                 wait: float | None = 30.0):
        super().__init__(client, name, wait)
        self.lease = AsyncLease(client, ttl)


class AsyncElection(ElectionSteps):
    """`Election` for `AsyncClient`."""

    def __init__(self, client: AsyncClient, name: BytesLike):
        super().__init__(client, name)
        self.lease: AsyncLease | None = None

    @property
    def lost(self):
        assert self.lease is not None, "campaign first"
        return self.lease.lost

    async def campaign(self, value: BytesLike, ttl: float = 10.0, wait: float | None = None) -> int:
        self.lease = await AsyncLease(self.client, ttl).grant()
        self.lease.start_keepalive()
        try:
            return await self.client._run_plan(self._campaign(value, self.lease.id, wait))
        except BaseException:
            await self.resign()
            raise

    async def proclaim(self, value: BytesLike) -> bool:
        return await self.client.run(cops.proclaim(self.name, self.token, value))

    async def resign(self) -> None:
        if self.lease is None:
            return
        lease, self.lease = self.lease, None
        await lease.stop_keepalive()
        if self.token:
            await _quietly(self.client.run(cops.resign(self.name, self.token)), "candidacy")
        await _quietly(lease.revoke(), f"lease {lease.id}")
        self.token = 0

    async def leader(self, *, stale: bool = False) -> Registration | None:
        return await self.client.run(cops.leader(self.name, stale))

    def observe(self) -> AsyncObserver:
        return AsyncObserver(self.client, self.name)

    async def __aenter__(self) -> AsyncElection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.resign()
