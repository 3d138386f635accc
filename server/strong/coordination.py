"""Leases, and the claims that attach to them: registry names, locks and
election candidacies. Part of the pure state machine (see state_machine.py
for its rules): deterministic, no clock but the lease clock, which only
`LeaseTick` commands advance.

The lease clock advances by the time a leader measured between two of its
own ticks (`elapsed_ms`, clamped to LEASE_TICK_ADVANCE_MS_MAX, 1.2 x the
tick interval). The first tick of another proposer (another node, term or
process) advances nothing: time without a working leader is not counted, so
a lease outlives its TTL by at most an election. The leader proposes ticks
only while a lease exists or a durable topic holds messages (which age on
this clock, see topics.py); the first tick after an idle spell advances
nothing either, so idle time can only lengthen a lease.

The one clock this trusts is the leader's tick timer: ticks are at least a
tick interval apart on it, and each advances at most 1.2 intervals, so a
leader whose elapsed-time measurement runs fast or jumps ages leases at most
1.2 x as fast as its timer (a TTL 5 s lease lives at least 4.17 s). A leader
whose whole clock runs fast by a fraction r shortens leases to TTL / (1 + r);
a slow or paused leader only lengthens them (docs/strong-plane.md).

A grant or keepalive is applied between two ticks, when the lease clock
lags real time by up to a tick interval; so its deadline is set at the next
tick (clock + ttl), never from the stale clock. A lease thus lives at least
its TTL after its last renewal, and at most one tick interval more (plus any
election in between).

Every claim's fencing token is the Raft index of the command that granted
it, so tokens strictly increase across holders and failovers.
"""

from __future__ import annotations

from tandemkv import limits
from tandemkv.v1 import coordination_pb2, kv_pb2, lease_pb2, raft_pb2, watch_pb2

from tandemkv.server.strong import reads
from tandemkv.server.strong.context import ApplyContext, CommandFailed
from tandemkv.server.strong.view import KvRecord, LeaseRecord, StoreView

# What a lease has attached: a one-byte kind, then the key or claim key.
KEY_ITEM = b"k"
# Claim tables; a claim's attachment item is its table tag + its key.
REGISTRY = b"r"
LOCKS = b"l"
CANDIDATES = b"c"
LEASE_CLOCK_KEY = b"lease_clock_ms"
TICK_PROPOSER_KEY = b"lease_tick_proposer"
COMPACTED_THROUGH_KEY = b"events_compacted_through"
# A lease renewed since the last tick: its deadline is set by the next one.
DEADLINE_AT_NEXT_TICK = -1
# Attachment kinds whose owner releases them when their lease ends:
# kind -> releaser(context, name, lease_id) (jobs.py registers its claims).
LEASE_ITEM_RELEASERS: dict = {}


def lease_clock(view: StoreView) -> int:
    raw = view.meta_get(LEASE_CLOCK_KEY)
    return 0 if raw is None else int.from_bytes(raw, "big", signed=True)


def require_attachable(view: StoreView, lease_id: int) -> None:
    if view.lease_get(lease_id) is None:
        raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                            f"lease {lease_id} not found (expired or revoked); grant a new one")
    if len(view.lease_items(lease_id)) >= limits.LEASE_ATTACHMENTS_MAX:
        raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                            f"lease {lease_id} already holds LEASE_ATTACHMENTS_MAX="
                            f"{limits.LEASE_ATTACHMENTS_MAX} keys and names; use another lease")


def delete_key(context: ApplyContext, key: bytes, record: KvRecord, event_type: int) -> None:
    view = context.view
    view.kv_delete(key)
    if record.lease:
        view.lease_detach(record.lease, KEY_ITEM + key)
    gone = kv_pb2.KeyValue(key=key, mod_revision=context.index)
    context.emit(event_type, gone, reads.to_key_value(key, record))


def candidate_prefix(election: bytes) -> bytes:
    """Candidates of one election sort by token under this prefix."""
    return len(election).to_bytes(2, "big") + election


def decode_claim(raw: bytes | None) -> coordination_pb2.Claim | None:
    return None if raw is None else coordination_pb2.Claim.FromString(raw)


# -- leases --
def _lease_tick(context: ApplyContext, tick: raft_pb2.LeaseTick) -> raft_pb2.LeaseTickResult:
    view = context.view
    clock = lease_clock(view)
    proposer = tick.proposer.encode()
    if view.meta_get(TICK_PROPOSER_KEY) == proposer:
        clock += min(max(tick.elapsed_ms, 0), limits.LEASE_TICK_ADVANCE_MS_MAX)
    view.meta_put(TICK_PROPOSER_KEY, proposer)
    view.meta_put(LEASE_CLOCK_KEY, clock.to_bytes(8, "big", signed=True))
    expired = 0
    for lease_id in view.leases_due(clock, limits.LEASE_EXPIRIES_PER_TICK_MAX):
        record = view.lease_get(lease_id)
        if record.deadline_ms == DEADLINE_AT_NEXT_TICK:
            view.lease_put(lease_id, LeaseRecord(record.ttl_ms, clock + record.ttl_ms))
        else:
            drop_lease(context, lease_id)
            expired += 1
    return raft_pb2.LeaseTickResult(lease_clock_ms=clock, expired=expired)


def drop_lease(context: ApplyContext, lease_id: int) -> None:
    """Deletes the lease and everything still attached to it."""
    view = context.view
    for item in view.lease_items(lease_id):
        kind, name = item[:1], item[1:]
        if kind in LEASE_ITEM_RELEASERS:
            LEASE_ITEM_RELEASERS[kind](context, name, lease_id)
            continue
        if kind == KEY_ITEM:
            record = view.kv_get(name)
            if record is not None and record.lease == lease_id:
                delete_key(context, name, record, watch_pb2.Event.EXPIRE)
            continue
        claim = decode_claim(view.claim_get(kind, name))
        if claim is not None and claim.lease == lease_id:
            view.claim_delete(kind, name)
    view.lease_delete(lease_id)


def _header(context: ApplyContext) -> kv_pb2.ResponseHeader:
    return kv_pb2.ResponseHeader(revision=context.index)


def _lease_grant(context: ApplyContext, request: lease_pb2.LeaseGrantRequest):
    context.view.lease_put(context.index, LeaseRecord(request.ttl_ms, DEADLINE_AT_NEXT_TICK))
    return lease_pb2.LeaseGrantResponse(header=_header(context), id=context.index,
                                        ttl_ms=request.ttl_ms)


def _lease_revoke(context: ApplyContext, request: lease_pb2.LeaseRevokeRequest):
    found = context.view.lease_get(request.id) is not None
    if found:
        drop_lease(context, request.id)
    return lease_pb2.LeaseRevokeResponse(header=_header(context), revoked=found)


def _lease_keepalive(context: ApplyContext, request: lease_pb2.LeaseKeepAliveRequest):
    view = context.view
    record = view.lease_get(request.id)
    response = lease_pb2.LeaseKeepAliveResponse(header=_header(context), id=request.id)
    if record is not None:
        view.lease_put(request.id, LeaseRecord(record.ttl_ms, DEADLINE_AT_NEXT_TICK))
        response.ttl_ms, response.found = record.ttl_ms, True
    return response


# -- claims: registry, locks --
def _claim(context: ApplyContext, table: bytes, name: bytes, value: bytes, lease: int):
    """(granted, claim): a new claim of `name`, or the current holder's.
    A lease claiming what it already holds gets its claim back (granted), so
    a retry after an unknown outcome is harmless."""
    view = context.view
    current = decode_claim(view.claim_get(table, name))
    if current is not None:
        return current.lease == lease, current
    require_attachable(view, lease)
    claim = coordination_pb2.Claim(name=name, value=value, lease=lease, token=context.index)
    view.claim_put(table, name, claim.SerializeToString())
    view.lease_attach(lease, table + name)
    return True, claim


def _unclaim(context: ApplyContext, table: bytes, key: bytes, token: int) -> bool:
    view = context.view
    current = decode_claim(view.claim_get(table, key))
    if current is None or current.token != token:
        return False
    view.claim_delete(table, key)
    view.lease_detach(current.lease, table + key)
    return True


def _register(context: ApplyContext, request: coordination_pb2.RegisterRequest):
    granted, claim = _claim(context, REGISTRY, request.name, request.value, request.lease)
    return coordination_pb2.RegisterResponse(header=_header(context), registered=granted,
                                             claim=claim)


def _unregister(context: ApplyContext, request: coordination_pb2.UnregisterRequest):
    done = _unclaim(context, REGISTRY, request.name, request.token)
    return coordination_pb2.UnregisterResponse(header=_header(context), unregistered=done)


def _lock_acquire(context: ApplyContext, request: coordination_pb2.LockAcquireRequest):
    granted, claim = _claim(context, LOCKS, request.name, b"", request.lease)
    return coordination_pb2.LockAcquireResponse(header=_header(context), acquired=granted,
                                                claim=claim)


def _lock_release(context: ApplyContext, request: coordination_pb2.LockReleaseRequest):
    done = _unclaim(context, LOCKS, request.name, request.token)
    return coordination_pb2.LockReleaseResponse(header=_header(context), released=done)


# -- elections: a queue of candidates per election; the head leads --
def candidates(view: StoreView, election: bytes) -> list[coordination_pb2.Claim]:
    prefix = candidate_prefix(election)
    end = reads.prefix_end(prefix)
    return [decode_claim(raw) for _, raw in view.claim_scan(CANDIDATES, prefix, end)]


def _campaign(context: ApplyContext, request: coordination_pb2.CampaignRequest):
    view = context.view
    queue = candidates(view, request.election)
    mine = next((c for c in queue if c.lease == request.lease), None)
    if mine is None:
        if len(queue) >= limits.ELECTION_CANDIDATES_MAX:
            raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                                f"election has ELECTION_CANDIDATES_MAX="
                                f"{limits.ELECTION_CANDIDATES_MAX} candidates")
        require_attachable(view, request.lease)
        mine = coordination_pb2.Claim(name=request.election, value=request.value,
                                      lease=request.lease, token=context.index)
        key = candidate_prefix(request.election) + context.index.to_bytes(8, "big")
        view.claim_put(CANDIDATES, key, mine.SerializeToString())
        view.lease_attach(request.lease, CANDIDATES + key)
        queue.append(mine)
    return coordination_pb2.CampaignResponse(header=_header(context),
                                             elected=queue[0].token == mine.token, claim=mine)


def _proclaim(context: ApplyContext, request: coordination_pb2.ProclaimRequest):
    queue = candidates(context.view, request.election)
    done = bool(queue) and queue[0].token == request.token
    if done:
        leader = queue[0]
        leader.value = request.value
        key = candidate_prefix(request.election) + leader.token.to_bytes(8, "big")
        context.view.claim_put(CANDIDATES, key, leader.SerializeToString())
    return coordination_pb2.ProclaimResponse(header=_header(context), proclaimed=done)


def _resign(context: ApplyContext, request: coordination_pb2.ResignRequest):
    key = candidate_prefix(request.election) + request.token.to_bytes(8, "big")
    done = _unclaim(context, CANDIDATES, key, request.token)
    return coordination_pb2.ResignResponse(header=_header(context), resigned=done)


# -- reads --
def read_lease_ttl(
    view: StoreView, request: lease_pb2.LeaseTimeToLiveRequest, revision: int
) -> lease_pb2.LeaseTimeToLiveResponse:
    response = lease_pb2.LeaseTimeToLiveResponse(
        header=kv_pb2.ResponseHeader(revision=revision), id=request.id)
    record = view.lease_get(request.id)
    if record is None:
        return response
    response.found = True
    response.granted_ttl_ms = record.ttl_ms
    if record.deadline_ms == DEADLINE_AT_NEXT_TICK:
        response.remaining_ms = record.ttl_ms
    else:
        response.remaining_ms = max(0, record.deadline_ms - lease_clock(view))
    if request.attached:
        for item in view.lease_items(request.id):
            (response.keys if item[:1] == KEY_ITEM else response.names).append(item[1:])
    return response


def read_lease_list(
    view: StoreView, request: lease_pb2.LeaseListRequest, revision: int
) -> lease_pb2.LeaseListResponse:
    response = lease_pb2.LeaseListResponse(header=kv_pb2.ResponseHeader(revision=revision))
    limit = min(request.limit or limits.LEASE_LIST_MAX, limits.LEASE_LIST_MAX)
    found = view.leases_after(request.after_id, limit + 1)
    response.more = len(found) > limit
    clock = lease_clock(view)
    for lease_id, record in found[:limit]:
        remaining = (record.ttl_ms if record.deadline_ms == DEADLINE_AT_NEXT_TICK
                     else max(0, record.deadline_ms - clock))
        response.leases.add(id=lease_id, granted_ttl_ms=record.ttl_ms, remaining_ms=remaining)
    return response


def read_whereis(
    view: StoreView, request: coordination_pb2.WhereisRequest, revision: int
) -> coordination_pb2.WhereisResponse:
    response = coordination_pb2.WhereisResponse(header=kv_pb2.ResponseHeader(revision=revision))
    claim = decode_claim(view.claim_get(REGISTRY, request.name))
    if claim is not None:
        response.found = True
        response.claim.CopyFrom(claim)
    return response


def read_registry_list(
    view: StoreView, request: coordination_pb2.RegistryListRequest, revision: int
) -> coordination_pb2.RegistryListResponse:
    response = coordination_pb2.RegistryListResponse(
        header=kv_pb2.ResponseHeader(revision=revision))
    limit = min(request.limit or limits.REGISTRY_LIST_MAX, limits.REGISTRY_LIST_MAX)
    size_bytes = reads.RESPONSE_HEADER_BYTES_MAX
    for _, raw in view.claim_scan(REGISTRY, request.prefix, reads.prefix_end(request.prefix)):
        entry_bytes = len(raw) + reads.ENTRY_FRAMING_BYTES_MAX
        if len(response.claims) >= limit or size_bytes + entry_bytes > limits.RANGE_RESPONSE_BYTES_MAX:
            response.more = True
            break
        response.claims.append(decode_claim(raw))
        size_bytes += entry_bytes
    return response


def read_leader(
    view: StoreView, request: coordination_pb2.LeaderRequest, revision: int
) -> coordination_pb2.LeaderResponse:
    response = coordination_pb2.LeaderResponse(header=kv_pb2.ResponseHeader(revision=revision))
    queue = candidates(view, request.election)
    if queue:
        response.found = True
        response.leader.CopyFrom(queue[0])
    return response


OPS = {
    raft_pb2.LeaseTick: _lease_tick,
    lease_pb2.LeaseGrantRequest: _lease_grant,
    lease_pb2.LeaseRevokeRequest: _lease_revoke,
    lease_pb2.LeaseKeepAliveRequest: _lease_keepalive,
    coordination_pb2.RegisterRequest: _register,
    coordination_pb2.UnregisterRequest: _unregister,
    coordination_pb2.LockAcquireRequest: _lock_acquire,
    coordination_pb2.LockReleaseRequest: _lock_release,
    coordination_pb2.CampaignRequest: _campaign,
    coordination_pb2.ProclaimRequest: _proclaim,
    coordination_pb2.ResignRequest: _resign,
}

READERS = {
    lease_pb2.LeaseTimeToLiveRequest: read_lease_ttl,
    lease_pb2.LeaseListRequest: read_lease_list,
    coordination_pb2.WhereisRequest: read_whereis,
    coordination_pb2.RegistryListRequest: read_registry_list,
    coordination_pb2.LeaderRequest: read_leader,
}
