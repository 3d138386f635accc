"""Recipes built on leases, for the blocking `Client`: the registry (and
`hold`, a name kept while the process lives), locks and elections. Every
claim hands out a fencing token: the Raft index that granted it, strictly
increasing across holders and failovers. What is not about blocking (the
calls that make and release a claim, the loops that wait for a lock or a
leadership) is shared with the asyncio twins: see `_claim_steps`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tandemkv.client import _coordination_ops as cops
from tandemkv.client._coordination_ops import Registration
from tandemkv.client._claim_steps import ElectionSteps, HoldSteps, LockSteps
from tandemkv.client._core import Plan
from tandemkv.client._operations import Operation
from tandemkv.client._leases import Lease, lease_id, release_quietly
from tandemkv.client._results import BytesLike

if TYPE_CHECKING:
    from tandemkv.client._sync import Client
    from tandemkv.client._watch import Observer


class Registry:
    """The cluster-wide name registry (like Erlang's `:global`).

    Semantics: a name maps to one owner's value; registering takes a
    lease, and the name is released when the lease expires (its process
    died) or is revoked, or by `unregister` with the owner's token. Reads
    are linearizable.

    Failure modes: `register` of a taken name raises `AlreadyExists` with
    `.owner` (the owner's value) and `.token`; the same lease registering
    again gets its own token back (so a retry is harmless).

    Example::

        with client.registry.hold("billing", "10.0.0.7:9000", ttl=10) as token:
            assert client.registry.whereis("billing").value == b"10.0.0.7:9000"
            ...                                   # serve while holding the name
    """

    def __init__(self, client: Client):
        self.client = client

    def register(self, name: BytesLike, value: BytesLike, lease: Lease | int) -> int:
        """Registers `name` -> `value` under `lease`; returns the fencing token."""
        return self.client.run(cops.register(name, value, lease_id(lease)))

    def whereis(self, name: BytesLike, *, stale: bool = False) -> Registration | None:
        """The owner of `name` (value, token, lease), or None."""
        return self.client.run(cops.whereis(name, stale))

    def unregister(self, name: BytesLike, token: int) -> bool:
        """Releases `name` if `token` is its registration's; returns whether it did."""
        return self.client.run(cops.unregister(name, token))

    def list(self, prefix: BytesLike = b"", *, stale: bool = False) -> list[Registration]:
        """Registrations whose name starts with `prefix`, in name order."""
        return self.client.run(cops.registry_list(prefix, stale))

    def hold(self, name: BytesLike, value: BytesLike, ttl: float = 10.0) -> Hold:
        """A context manager holding `name` while the block runs; see `Hold`."""
        return Hold(self, name, value, ttl)


class _HeldUnderLease:
    """A claim held for a `with` block under a lease of its own (`Hold`,
    `Lock`): on entry the lease is granted and renewed in the background,
    and the claim made (the `_claim` plan); if that fails, the lease is
    revoked and nothing is left behind. On exit the claim is released and
    the lease revoked."""

    client: Client
    ttl: float
    token: int
    lease: Lease | None
    RENEW_WHILE_CLAIMING: bool

    def _claim(self, lease: int) -> Plan:
        raise NotImplementedError

    def _release(self) -> tuple[Operation, str]:
        raise NotImplementedError

    def __enter__(self) -> int:
        self.lease = self.client.lease(self.ttl)
        if self.RENEW_WHILE_CLAIMING:
            self.lease.start_keepalive()
        try:
            self.token = self.client._run_plan(self._claim(self.lease.id))
        except BaseException:
            release_quietly(self.lease.revoke, f"lease {self.lease.id}")
            raise
        self.lease.start_keepalive()
        return self.token

    def __exit__(self, *exc_info: object) -> None:
        assert self.lease is not None
        self.lease.stop_keepalive()
        release, what = self._release()
        release_quietly(lambda: self.client.run(release), what)
        release_quietly(self.lease.revoke, f"lease {self.lease.id}")


class Hold(HoldSteps, _HeldUnderLease):
    """Holds a registry name for the duration of a `with` block.

    On entry: grants a lease of `ttl` seconds, renews it in the background,
    registers the name and yields the fencing token (raises `AlreadyExists`
    if the name is taken; nothing is left behind). On exit: unregisters and
    revokes. If the process dies the name is free about `ttl` seconds later.

    `lost` (a `threading.Event`) is set when renewal failed: the cluster
    said the lease is gone, or no renewal succeeded for a whole TTL. From
    then on the name may belong to someone else; check `lost`, or fence
    writes with the token.

    Example::

        hold = client.registry.hold("scheduler", "host-a", ttl=10)
        with hold as token:
            while not hold.lost.is_set():
                run_one_job(token)
    """

    def __init__(self, registry: Registry, name: BytesLike, value: BytesLike, ttl: float):
        super().__init__(registry.client, name, value)
        self.ttl = ttl
        self.lease: Lease | None = None

    @property
    def lost(self):
        assert self.lease is not None, "enter the hold first"
        return self.lease.lost

class Lock(LockSteps, _HeldUnderLease):
    """A distributed lock held for a `with` block; yields the fencing token.

    Semantics: on entry, grants a lease of `ttl` seconds (renewed in the
    background) and waits up to `wait` seconds (None: forever) for the lock;
    on exit, releases it and revokes the lease. If the holder dies, the lock
    is free about `ttl` seconds later.

    A lock does NOT guarantee mutual exclusion once its lease has expired
    (a paused process, a lost network): another holder may then run
    alongside. The fencing token does: it strictly increases across
    holders, so a resource that rejects tokens lower than the highest it
    has seen is safe. With TandemKV itself, a transaction can compare on it:
    keep the highest token in a counter and write only if yours is not lower.
    `lost` is set when renewal failed (see `Hold`).

    Failure modes: raises `NotAcquired` (with the holder's `.token`) if the
    wait ends first; nothing is left behind.

    Example::

        with client.lock("reports", ttl=10, wait=30) as token:
            (client.txn().compare_counter("reports/fence", "<", token + 1)
             .on_success(Op.counter_set("reports/fence", token), Op.put("reports/out", "..."))
             .commit())
    """

    def __init__(self, client: Client, name: BytesLike, ttl: float = 10.0, wait: float | None = 30.0):
        super().__init__(client, name, wait)
        self.ttl = ttl
        self.lease: Lease | None = None

    @property
    def lost(self):
        assert self.lease is not None, "enter the lock first"
        return self.lease.lost

class Election(ElectionSteps):
    """A leader election: candidates queue in the order they campaigned,
    the first leads; when it resigns or its lease expires, the next leads.

    Semantics: `campaign(value, ttl, wait)` grants a lease (renewed in the
    background), joins the queue and waits until elected; it returns the
    leader's fencing token, which strictly increases across leaders.
    `proclaim(value)` changes the value the leader publishes; `resign()`
    steps down (or leaves the queue) and revokes the lease. `leader()` and
    `observe()` work without campaigning. Like a lock, leadership is not
    exclusive once the lease has expired: `lost` tells, the token fences.

    Failure modes: `campaign` raises `NotAcquired` if `wait` ends first (the
    candidacy is withdrawn). `observe()` reconnects to another node if the
    one it reads from fails.

    Example::

        election = client.election("scheduler")
        token = election.campaign("host-a", ttl=10, wait=30)
        election.proclaim("host-a:v2")
        assert election.leader().value == b"host-a:v2"
        election.resign()
    """

    def __init__(self, client: Client, name: BytesLike):
        super().__init__(client, name)
        self.lease: Lease | None = None

    @property
    def lost(self):
        assert self.lease is not None, "campaign first"
        return self.lease.lost

    def campaign(self, value: BytesLike, ttl: float = 10.0, wait: float | None = None) -> int:
        """Waits up to `wait` seconds (None: forever) to lead; returns the token."""
        self.lease = self.client.lease(ttl)
        self.lease.start_keepalive()
        try:
            return self.client._run_plan(self._campaign(value, self.lease.id, wait))
        except BaseException:
            self.resign()
            raise

    def proclaim(self, value: BytesLike) -> bool:
        """Publishes a new value as leader; False if this candidate does not lead."""
        return self.client.run(cops.proclaim(self.name, self.token, value))

    def resign(self) -> None:
        """Steps down (or leaves the queue) and revokes the lease."""
        if self.lease is None:
            return
        lease, self.lease = self.lease, None
        lease.stop_keepalive()
        if self.token:
            release_quietly(lambda: self.client.run(cops.resign(self.name, self.token)),
                            f"candidacy in {self.name!r}")
        release_quietly(lease.revoke, f"lease {lease.id}")
        self.token = 0

    def leader(self, *, stale: bool = False) -> Registration | None:
        """The current leader's claim (value, token, lease), or None."""
        return self.client.run(cops.leader(self.name, stale))

    def observe(self) -> Observer:
        """An iterator of the leader (a `Registration`, or None when there is
        none) now and at every change; `close()` it to stop."""
        from tandemkv.client._watch import Observer

        return Observer(self.client, self.name)

    def __enter__(self) -> Election:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.resign()
