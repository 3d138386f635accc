"""Leases, the registry, locks and elections as `Operation`s (see
`_operations`), their result types, the retry policies of calls that
wait, and the plans of calls that take several steps (`every_lease`).
Shared by `Client` and `AsyncClient`."""

from __future__ import annotations

import dataclasses
import time
from typing import Iterator

from tandemkv import limits
from tandemkv.client._core import Call, Plan
from tandemkv.client._operations import Operation, new_request_id
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.client._retry import Retry
from tandemkv.errors import AlreadyExists
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import kv_pb2, lease_pb2

# Longest one Acquire or Campaign call waits on the server; a longer wait
# is several calls.
CLAIM_WAIT_S_MAX = limits.CLAIM_WAIT_MS_MAX / 1000
# Added to a waiting call's gRPC deadline beyond its wait, for the
# proposals around the wait.
CLAIM_CALL_SLACK_S = 5.0


@dataclasses.dataclass(frozen=True)
class Registration:
    """A claim on a name: the registry's owner, or an election's leader.
    `token` is the fencing token (the Raft index that granted the claim;
    it strictly increases across holders); `lease` the owner's lease id."""

    name: bytes
    value: bytes
    token: int
    lease: int

    @classmethod
    def from_proto(cls, claim: co.Claim) -> Registration:
        return cls(claim.name, claim.value, claim.token, claim.lease)


@dataclasses.dataclass(frozen=True)
class LeaseInfo:
    """A lease that exists: its id, the TTL it was granted, and the time it
    has left (the full TTL just after a renewal)."""

    id: int
    granted_ttl_s: float
    remaining_s: float


@dataclasses.dataclass(frozen=True)
class LeasePage:
    leases: list[LeaseInfo]
    more: bool


def ttl_ms(ttl_s: float) -> int:
    return int(round(ttl_s * 1000))


def wait_retry(base: Retry, wait_s: float) -> Retry:
    """`base` with room for one call that waits `wait_s` on the server."""
    return dataclasses.replace(base, attempt_timeout_s=wait_s + CLAIM_CALL_SLACK_S,
                               deadline_s=wait_s + base.deadline_s)


def keepalive_retry(base: Retry, ttl_s: float) -> Retry:
    """Retries of one renewal end within a third of the TTL, so the next
    renewal still comes in time."""
    budget_s = ttl_s / 3
    return dataclasses.replace(base, deadline_s=budget_s,
                               attempt_timeout_s=min(budget_s, limits.KEEPALIVE_ATTEMPT_S_MAX))


def waits(wait_s: float | None) -> Iterator[float]:
    """The server-side waits of successive calls that together wait
    `wait_s` (None: forever), each at most CLAIM_WAIT_S_MAX."""
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while True:
        left_s = CLAIM_WAIT_S_MAX if deadline is None else deadline - time.monotonic()
        yield max(0.0, min(left_s, CLAIM_WAIT_S_MAX))
        if deadline is not None and time.monotonic() >= deadline:
            return


# -- leases --
def lease_grant(ttl_s: float) -> Operation:
    request = lease_pb2.LeaseGrantRequest(ttl_ms=ttl_ms(ttl_s), request_id=new_request_id())
    return Operation("Lease", "Grant", request, lambda r: r.id, write=True)


def lease_revoke(lease_id: int) -> Operation:
    request = lease_pb2.LeaseRevokeRequest(id=lease_id, request_id=new_request_id())
    return Operation("Lease", "Revoke", request, lambda r: r.revoked, write=True)


def lease_keepalive(lease_id: int) -> Operation:
    """Answers the renewed TTL in seconds, or None when the lease is gone."""
    request = lease_pb2.LeaseKeepAliveRequest(id=lease_id, request_id=new_request_id())
    return Operation("Lease", "KeepAlive", request,
                     lambda r: r.ttl_ms / 1000 if r.found else None, write=True, stream=True)


def lease_ttl(lease_id: int) -> Operation:
    """Answers the remaining TTL in seconds, or None when the lease is gone."""
    request = lease_pb2.LeaseTimeToLiveRequest(id=lease_id)
    return Operation("Lease", "TimeToLive", request,
                     lambda r: r.remaining_ms / 1000 if r.found else None, write=False)


def lease_list(after_id: int = 0, stale: bool = False) -> Operation:
    """Answers a `LeasePage`: up to LEASE_LIST_MAX leases with ids above
    `after_id`, in id order."""
    request = lease_pb2.LeaseListRequest(after_id=after_id, consistency=_consistency(stale))
    return Operation("Lease", "List", request, lambda r: LeasePage(
        [LeaseInfo(i.id, i.granted_ttl_ms / 1000, i.remaining_ms / 1000) for i in r.leases],
        r.more), write=False)


def every_lease(stale: bool = False) -> Plan:
    """Every lease that exists, in id order: a `lease_list` call a page."""
    found: list[LeaseInfo] = []
    while True:
        page = yield Call(lease_list(found[-1].id if found else 0, stale))
        found += page.leases
        if not page.more or not page.leases:
            return found


def lease_info(lease_id: int) -> Operation:
    """Answers the `LeaseTimeToLiveResponse` (found, granted and remaining TTL)."""
    request = lease_pb2.LeaseTimeToLiveRequest(id=lease_id)
    return Operation("Lease", "TimeToLive", request, lambda r: r, write=False)


# -- registry --
def _registered(response: co.RegisterResponse) -> int:
    if response.registered:
        return response.claim.token
    claim = response.claim
    raise AlreadyExists(
        f"name {claim.name!r} is registered to {claim.value!r} (token {claim.token})",
        owner=claim.value, token=claim.token)


def register(name: BytesLike, value: BytesLike, lease: int) -> Operation:
    request = co.RegisterRequest(name=to_bytes(name, "name"), value=to_bytes(value, "value"),
                                 lease=lease, request_id=new_request_id())
    return Operation("Registry", "Register", request, _registered, write=True)


def whereis(name: BytesLike, stale: bool = False) -> Operation:
    request = co.WhereisRequest(name=to_bytes(name, "name"), consistency=_consistency(stale))
    return Operation("Registry", "Whereis", request,
                     lambda r: Registration.from_proto(r.claim) if r.found else None, write=False)


def unregister(name: BytesLike, token: int) -> Operation:
    request = co.UnregisterRequest(name=to_bytes(name, "name"), token=token,
                                   request_id=new_request_id())
    return Operation("Registry", "Unregister", request, lambda r: r.unregistered, write=True)


def registry_list(prefix: BytesLike = b"", stale: bool = False) -> Operation:
    request = co.RegistryListRequest(prefix=to_bytes(prefix, "prefix"),
                                     consistency=_consistency(stale))
    return Operation("Registry", "List", request,
                     lambda r: [Registration.from_proto(c) for c in r.claims], write=False)


# -- locks --
def lock_acquire(name: bytes, lease: int, wait_s: float) -> Operation:
    request = co.LockAcquireRequest(name=name, lease=lease, wait_ms=ttl_ms(wait_s),
                                    request_id=new_request_id())
    return Operation("Lock", "Acquire", request, lambda r: r, write=True)


def lock_release(name: bytes, token: int) -> Operation:
    request = co.LockReleaseRequest(name=name, token=token, request_id=new_request_id())
    return Operation("Lock", "Release", request, lambda r: r.released, write=True)


# -- elections --
def campaign(election: bytes, value: BytesLike, lease: int, wait_s: float) -> Operation:
    request = co.CampaignRequest(election=election, value=to_bytes(value, "value"), lease=lease,
                                 wait_ms=ttl_ms(wait_s), request_id=new_request_id())
    return Operation("Election", "Campaign", request, lambda r: r, write=True)


def proclaim(election: bytes, token: int, value: BytesLike) -> Operation:
    request = co.ProclaimRequest(election=election, token=token, value=to_bytes(value, "value"),
                                 request_id=new_request_id())
    return Operation("Election", "Proclaim", request, lambda r: r.proclaimed, write=True)


def resign(election: bytes, token: int) -> Operation:
    request = co.ResignRequest(election=election, token=token, request_id=new_request_id())
    return Operation("Election", "Resign", request, lambda r: r.resigned, write=True)


def leader(election: bytes, stale: bool = False) -> Operation:
    request = co.LeaderRequest(election=election, consistency=_consistency(stale))
    return Operation("Election", "Leader", request,
                     lambda r: Registration.from_proto(r.leader) if r.found else None, write=False)


def _consistency(stale: bool) -> int:
    return kv_pb2.STALE if stale else kv_pb2.LINEARIZABLE
