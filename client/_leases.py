"""`Lease` and `AsyncLease`: a time-to-live handle that keys, registry
names, locks and candidacies attach to, and the background renewal that
keeps one alive (a thread for `Lease`, a task for `AsyncLease`)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from tandemkv.client import _coordination_ops as cops
from tandemkv.client._core import Call, Plan
from tandemkv.errors import NotFound, TandemKVError

if TYPE_CHECKING:
    from tandemkv.client._async import AsyncClient
    from tandemkv.client._sync import Client

# A renewal is sent every TTL / KEEPALIVE_PER_TTL.
KEEPALIVE_PER_TTL = 3
# Pause after a failed renewal before the next try.
KEEPALIVE_RETRY_S = 0.2

log = logging.getLogger("tandemkv.client")


class _Renewal:
    """When to renew and when to give up: shared by the thread and the task.
    The lease counts as lost when the cluster says it is gone, or when no
    renewal succeeded for a whole TTL (it may have expired meanwhile)."""

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self.last_ok = time.monotonic()

    def interval_s(self) -> float:
        return self.ttl_s / KEEPALIVE_PER_TTL

    def outcome(self, renewed: float | None | TandemKVError) -> float | None:
        """The pause before the next renewal, or None: the lease is lost."""
        if isinstance(renewed, TandemKVError):
            if time.monotonic() - self.last_ok >= self.ttl_s:
                log.warning("lease renewals failed for a whole TTL: %s", renewed.message)
                return None
            return KEEPALIVE_RETRY_S
        if renewed is None:
            return None
        self.last_ok = time.monotonic()
        return self.interval_s()


class LeaseSteps:
    """What `Lease` and `AsyncLease` share: the renewal call, what its
    answer means, and the lease as an int (its id)."""

    client: Any
    id: int
    ttl_s: float
    lost: Any  # a threading.Event or an asyncio.Event: both have set()

    def _renewal(self) -> Plan:
        """One renewal (its retries end within a third of the TTL): the
        renewed TTL in seconds, or None when the lease is gone."""
        return (yield Call(cops.lease_keepalive(self.id), cops.keepalive_retry(self.client.retry, self.ttl_s)))

    def _keepalive(self) -> Plan:
        renewed = yield from self._renewal()
        if renewed is None:
            self.lost.set()
            raise NotFound(f"lease {self.id} not found (expired or revoked)")
        return renewed

    def __int__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id}, ttl_s={self.ttl_s})"


class Lease(LeaseSteps):
    """A lease: a handle that lives `ttl_s` seconds after its last renewal.

    Semantics: keys put with `lease=`, registry names, locks and election
    candidacies attached to it are deleted when it expires or is revoked.
    Expiry is decided in the Raft log: a lease lives at least its TTL after
    its last renewal and at most about a quarter second more (plus any
    leader election in between); a leader failover never expires it early.
    That assumes the leader's clock runs at the right rate: one fast by a
    fraction r expires leases early by TTL * r / (1 + r) (docs/strong-plane.md).
    `id` is also a fencing token (it strictly increases).

    Failure modes: as a context manager it is renewed every TTL/3 by a
    background thread and revoked on exit. If the cluster says the lease is
    gone, or no renewal succeeded for a whole TTL (the process was paused,
    the cluster unreachable), `lost` is set and renewal stops: whatever was
    attached may already belong to someone else. `keepalive()` raises
    `NotFound` when the lease is gone.

    Example::

        with client.lease(10) as lease:            # renewed in the background
            client.put("workers/w1", "busy", lease=lease)
            ...                                    # deleted 10 s after a crash
        # revoked here: workers/w1 is gone
    """

    def __init__(self, client: Client, lease_id: int, ttl_s: float):
        self.client = client
        self.id = lease_id
        self.ttl_s = ttl_s
        self.lost = threading.Event()
        # Monotonic time at which the last successful background renewal was
        # sent: the lease lives at least its TTL after this.
        self.renewed_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def keepalive(self) -> float:
        """Renews the lease now; returns its TTL in seconds."""
        return self.client._run_plan(self._keepalive())

    def revoke(self) -> bool:
        """Ends the lease now (and renewal); returns whether it still existed."""
        self.stop_keepalive()
        return self.client.run(cops.lease_revoke(self.id))

    def ttl(self) -> float | None:
        """Seconds left before expiry, or None when the lease is gone."""
        return self.client.run(cops.lease_ttl(self.id))

    def start_keepalive(self) -> None:
        """Renews the lease every TTL/3 on a daemon thread until
        `stop_keepalive()`, `revoke()` or the lease is lost."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew, daemon=True,
                                            name=f"tandemkv-lease-{self.id}")
            self._thread.start()

    def stop_keepalive(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _renew(self) -> None:
        renewal = _Renewal(self.ttl_s)
        pause_s: float | None = renewal.interval_s()
        while pause_s is not None and not self._stop.wait(pause_s):
            sent = time.monotonic()
            try:
                renewed: float | None | TandemKVError = self.client._run_plan(self._renewal())
            except TandemKVError as error:
                renewed = error
            pause_s = renewal.outcome(renewed)
            if renewed is not None and not isinstance(renewed, TandemKVError):
                self.renewed_at = sent
        if pause_s is None:
            self.lost.set()

    def __enter__(self) -> Lease:
        self.start_keepalive()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_keepalive()
        if not self.lost.is_set():
            release_quietly(self.revoke, f"lease {self.id}")



class AsyncLease(LeaseSteps):
    """`Lease` for `AsyncClient`: the same semantics, renewed by a task.
    `client.lease(ttl_s)` is granted when awaited or entered.

    Example::

        async with client.lease(10) as lease:      # granted, renewed by a task
            await client.put("workers/w1", "busy", lease=lease)
        lease = await client.lease(10)             # granted, not renewed
    """

    def __init__(self, client: AsyncClient, ttl_s: float):
        self.client = client
        self.id = 0
        self.ttl_s = ttl_s
        self.lost = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def grant(self) -> AsyncLease:
        if not self.id:
            self.id = await self.client.run(cops.lease_grant(self.ttl_s))
        return self

    def __await__(self):
        return self.grant().__await__()

    async def keepalive(self) -> float:
        return await self.client._run_plan(self._keepalive())

    async def revoke(self) -> bool:
        await self.stop_keepalive()
        return await self.client.run(cops.lease_revoke(self.id))

    async def ttl(self) -> float | None:
        return await self.client.run(cops.lease_ttl(self.id))

    def start_keepalive(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._renew())

    async def stop_keepalive(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _renew(self) -> None:
        renewal = _Renewal(self.ttl_s)
        pause_s: float | None = renewal.interval_s()
        while pause_s is not None:
            await asyncio.sleep(pause_s)
            try:
                renewed: float | None | TandemKVError = await self.client._run_plan(self._renewal())
            except TandemKVError as error:
                renewed = error
            pause_s = renewal.outcome(renewed)
        self.lost.set()

    async def __aenter__(self) -> AsyncLease:
        await self.grant()
        self.start_keepalive()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop_keepalive()
        if not self.lost.is_set():
            try:
                await self.revoke()
            except TandemKVError as error:
                log.warning("could not revoke lease %s (it expires by itself): %s", self.id, error.message)



def release_quietly(release, what: str) -> None:
    """Runs a clean-up call; a failure is logged, not raised: whatever it
    releases also goes when its lease expires."""
    try:
        release()
    except TandemKVError as error:
        log.warning("could not release %s (it is released when its lease expires): %s",
                    what, error.message)


def lease_id(lease: Lease | AsyncLease | int) -> int:
    return lease if isinstance(lease, int) else lease.id
