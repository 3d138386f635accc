"""The coordination half of the `Node` API: leases (and the thread that
proposes lease ticks), the registry, locks and elections that wait, and
election observes (fed by elections.py). (Watches are in watches.py.)

Waiting never spins on the log: a waiter proposes once, then watches local
state, woken after every apply batch, and proposes again only when what it
waits for may have changed.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Iterator

from tandemkv import limits
from tandemkv.errors import TandemKVError
from tandemkv.server.feeds import Feed, follow
from tandemkv.server.node.elections import ElectionObservers
from tandemkv.server.raft.contract import ROLE_LEADER
from tandemkv.server.strong import commands, coordination, validation
from tandemkv.server.strong.job_store import JobTables
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import kv_pb2, lease_pb2


class LeaseTicker:
    """Proposes a lease tick every LEASE_TICK_INTERVAL_MS while this node
    believes it leads and a tick has work: at least one lease exists, a
    durable topic holds messages (they age on the lease clock), or a job or
    recurring job is due by this node's clock (the tick carries that time). Runs on its
    own thread (never the Raft tick thread).

    With no lease there is nothing to advance, renew or expire, so an idle
    cluster writes nothing. Idle time is not counted: after a pause the next
    tick starts a fresh measurement (it advances nothing), which can only
    lengthen a lease, never shorten one.

    The elapsed time between ticks is measured with the node's
    `config.monotonic`; tests inject a fast or slow one.
    """

    def __init__(self, node):
        self._node = node
        self._monotonic = node.config.monotonic
        self._nonce = os.urandom(4).hex()  # a restarted process is a new proposer
        self._last: tuple[str, float] | None = None
        self._thread = threading.Thread(target=self._run, name="lease-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        interval_s = limits.LEASE_TICK_INTERVAL_MS / 1000
        while not self._node._stopping.wait(interval_s):
            try:
                self._tick()
            except TandemKVError:
                continue  # stopping, or no leader: the next tick tries again

    def _tick(self) -> None:
        replica = self._node._require_replica()
        raft = replica.status()
        if raft.role != ROLE_LEADER or not self._leases_exist():
            self._last = None
            return
        proposer = f"{self._node.config.name}/{self._nonce}/{raft.term}"
        now = self._monotonic()
        elapsed_ms = 0
        if self._last is not None and self._last[0] == proposer:
            elapsed_ms = int((now - self._last[1]) * 1000)
        self._last = (proposer, now)
        replica.submit(commands.encode_lease_tick(proposer, elapsed_ms, int(time.time() * 1000)))

    def _leases_exist(self) -> bool:
        """Whether a tick has work. Read from local state, which on the
        leader includes every acknowledged grant; a grant applied just after
        this look gets its deadline one tick later (a longer lease)."""
        with self._node._state.read_view() as view:
            return (bool(view.leases_after(0, 1)) or view.topic_log().expiry_first() is not None
                    or JobTables(view).due(int(time.time() * 1000)))  # a tick's time runs them


class NodeCoordination:
    """Mixin: needs propose/query, `_state`, `_applied` (a Condition
    notified after each apply batch) and `_stopping`."""

    # -- leases --
    def lease_grant(self, ttl_ms: int, **kw) -> lease_pb2.LeaseGrantResponse:
        return self.propose(lease_pb2.LeaseGrantRequest(ttl_ms=ttl_ms), **kw)

    def lease_revoke(self, lease_id: int, **kw) -> lease_pb2.LeaseRevokeResponse:
        return self.propose(lease_pb2.LeaseRevokeRequest(id=lease_id), **kw)

    def lease_keepalive(self, lease_id: int, **kw) -> lease_pb2.LeaseKeepAliveResponse:
        return self.propose(lease_pb2.LeaseKeepAliveRequest(id=lease_id), **kw)

    def lease_ttl(self, lease_id: int, *, attached: bool = False, **kw):
        return self.query(lease_pb2.LeaseTimeToLiveRequest(id=lease_id, attached=attached), **kw)

    def lease_list(self, after_id: int = 0, *, limit: int = 0, **kw) -> lease_pb2.LeaseListResponse:
        return self.query(lease_pb2.LeaseListRequest(after_id=after_id, limit=limit), **kw)

    # -- registry --
    def register(self, name: bytes, value: bytes, lease: int, **kw) -> co.RegisterResponse:
        return self.propose(co.RegisterRequest(name=name, value=value, lease=lease), **kw)

    def whereis(self, name: bytes, **kw) -> co.WhereisResponse:
        return self.query(co.WhereisRequest(name=name), **kw)

    def unregister(self, name: bytes, token: int, **kw) -> co.UnregisterResponse:
        return self.propose(co.UnregisterRequest(name=name, token=token), **kw)

    def registry_list(self, prefix: bytes = b"", **kw) -> co.RegistryListResponse:
        return self.query(co.RegistryListRequest(prefix=prefix), **kw)

    # -- locks and elections: propose, then wait on local state --
    def lock_acquire(self, request: co.LockAcquireRequest, *, timeout_s: float | None = None):
        """Tries until acquired or `request.wait_ms` passed; each try is a
        new command (a refusal is a result, and results are deduplicated)."""
        validation.check_request(request)
        deadline = time.monotonic() + request.wait_ms / 1000
        while True:
            attempt = co.LockAcquireRequest(name=request.name, lease=request.lease,
                                            request_id=os.urandom(limits.REQUEST_ID_BYTES))
            response = self.propose(attempt, timeout_s=timeout_s)
            if response.acquired or time.monotonic() >= deadline:
                return response
            holder = response.claim.token
            self._wait_for(lambda v: _claim_token(v, coordination.LOCKS, request.name) != holder,
                           deadline)

    def lock_release(self, name: bytes, token: int, **kw) -> co.LockReleaseResponse:
        return self.propose(co.LockReleaseRequest(name=name, token=token), **kw)

    def campaign(self, request: co.CampaignRequest, *, timeout_s: float | None = None):
        """Joins the election's queue, then waits until this candidacy leads
        or `request.wait_ms` passed; `elected` is confirmed linearizably."""
        response = self.propose(request, timeout_s=timeout_s)
        token = response.claim.token
        deadline = time.monotonic() + request.wait_ms / 1000
        while not response.elected and time.monotonic() < deadline:
            self._wait_for(lambda v: _leader_token(v, request.election) == token, deadline)
            leader = self.query(co.LeaderRequest(election=request.election), timeout_s=timeout_s)
            response.elected = leader.found and leader.leader.token == token
            response.header.CopyFrom(leader.header)
        return response

    def proclaim(self, election: bytes, token: int, value: bytes, **kw) -> co.ProclaimResponse:
        return self.propose(co.ProclaimRequest(election=election, token=token, value=value), **kw)

    def resign(self, election: bytes, token: int, **kw) -> co.ResignResponse:
        return self.propose(co.ResignRequest(election=election, token=token), **kw)

    def leader(self, election: bytes, **kw) -> co.LeaderResponse:
        return self.query(co.LeaderRequest(election=election), **kw)

    def observe(self, election: bytes, stop: threading.Event | None = None) -> Iterator[co.LeaderResponse]:
        """The election's leader now, then at every change, until `stop` is
        set or the node stops. A slow reader is given the latest leader,
        never a stale one after the last change (changes in between are
        skipped)."""
        return follow(lambda wake: self.leader_feed(election, wake), lambda: self._stopped(stop))

    def leader_feed(self, election: bytes, wake: Callable[[], None]) -> Feed[co.LeaderResponse]:
        """A feed (tandemkv.server.feeds) of the election's leader, now and
        after each change: what `observe` and the gRPC server's Observe
        wait on. `wake` is called, from the node's thread, when it has
        news."""
        with _OBSERVERS_LOCK:
            observers = getattr(self, "_election_observers", None)
            if observers is None:
                observers = self._election_observers = ElectionObservers(self)
        return observers.feed(election, wake)

    # -- waiting on local state --
    def _header(self, revision: int) -> kv_pb2.ResponseHeader:
        return kv_pb2.ResponseHeader(revision=revision, node=self.config.name)

    def _applied_index(self) -> int:
        with self._state.read_view() as view:
            return view.last_applied()

    def _stopped(self, stop: threading.Event | None) -> bool:
        return self._stopping.is_set() or (stop is not None and stop.is_set())

    def _wait_applied_after(self, revision: int, timeout_s: float,
                            stop: threading.Event | None = None) -> bool:
        """Waits until something past `revision` is applied; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._applied:
            while self._applied_index() <= revision:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped(stop):
                    return False
                self._applied.wait(min(remaining, APPLIED_WAIT_SLICE_S))
        return True

    def _wait_for(self, condition, deadline: float) -> None:
        """Waits until `condition(view)` holds on local state, or deadline."""
        with self._applied:
            while time.monotonic() < deadline and not self._stopping.is_set():
                with self._state.read_view() as view:
                    if condition(view):
                        return
                self._applied.wait(min(deadline - time.monotonic(), APPLIED_WAIT_SLICE_S))


# Longest one wait on the applied condition before re-checking stop flags.
APPLIED_WAIT_SLICE_S = 0.5
# Makes the node's one ElectionObservers (started with the first observe).
_OBSERVERS_LOCK = threading.Lock()


def _claim_token(view, table: bytes, name: bytes) -> int:
    claim = coordination.decode_claim(view.claim_get(table, name))
    return 0 if claim is None else claim.token


def _leader_token(view, election: bytes) -> int:
    queue = coordination.candidates(view, election)
    return queue[0].token if queue else 0



