"""Leases, registry, locks, elections and the watch history in the pure
state machine, over the in-memory and the LMDB view.

Method: apply lease ticks and claims at increasing indexes and check what
expires, who holds what, the fencing tokens, and the recorded events."""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument
from tandemkv.server.strong.coordination import COMPACTED_THROUGH_KEY
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import kv_pb2, lease_pb2, watch_pb2
from tests.support.applier import Applier, make_view

LEADER = "n1/boot-a/term-3"


@pytest.fixture(params=["memory", "lmdb"])
def sm(request, tmp_path):
    with make_view(request.param, tmp_path) as view:
        yield Applier(view)


def grant(sm, ttl_ms=5_000):
    return sm.write(lease_pb2.LeaseGrantRequest(ttl_ms=ttl_ms)).id


def events(sm, since=0):
    return [(rev, watch_pb2.Event.FromString(raw)) for rev, raw in sm.view.events_scan(since)]



def advance(sm, proposer: str, elapsed_ms: int):
    """Ticks of at most one tick interval that together measure
    `elapsed_ms`, as a running leader proposes them; the last tick's
    result, with `expired` counting every tick's expiries."""
    expired, result = 0, None
    while elapsed_ms > 0 or result is None:
        step_ms = min(elapsed_ms, limits.LEASE_TICK_INTERVAL_MS)
        result = sm.tick(proposer, step_ms)
        expired += result.expired
        elapsed_ms -= step_ms
    result.expired = expired
    return result

def test_a_lease_expires_after_its_ttl_of_one_leaders_measured_time(sm):
    lease = grant(sm, 2_000)
    sm.write(kv_pb2.PutRequest(key=b"session", value=b"x", lease=lease))
    sm.tick(LEADER, 0)
    advance(sm, LEADER, 1_500)
    assert sm.get(b"session").found
    result = advance(sm, LEADER, 600)
    assert result.expired == 1 and not sm.get(b"session").found
    kinds = [e.type for _, e in events(sm)]
    assert kinds == [watch_pb2.Event.PUT, watch_pb2.Event.EXPIRE]


def test_time_between_two_proposers_is_not_counted(sm):
    lease = grant(sm, 2_000)
    sm.tick(LEADER, 0)
    sm.tick("n2/boot-b/term-4", 60_000)  # a new leader's first tick: no advance
    advance(sm, "n2/boot-b/term-4", 1_000)
    assert sm.read(lease_pb2.LeaseTimeToLiveRequest(id=lease)).remaining_ms == 1_000
    advance(sm, "n2/boot-b/term-4", 1_000)
    assert not sm.read(lease_pb2.LeaseTimeToLiveRequest(id=lease)).found


def test_one_tick_advances_at_most_the_named_limit(sm):
    lease = grant(sm, 2_000)
    sm.tick(LEADER, 0)
    sm.tick(LEADER, 10 * limits.LEASE_TICK_ADVANCE_MS_MAX)
    remaining_ms = 2_000 - limits.LEASE_TICK_ADVANCE_MS_MAX
    assert sm.read(lease_pb2.LeaseTimeToLiveRequest(id=lease)).remaining_ms == remaining_ms


def test_a_fast_leaders_ticks_age_a_lease_at_most_1_2_times_its_tick_count(sm):
    """Ticks of a leader that measures 4 x the real interval: the clock
    advances 1.2 intervals per tick, so a 5 s lease survives 16 ticks (4 s
    of real ticking) and is gone after 17 (5.1 s of its clock)."""
    lease = grant(sm, 5_000)
    sm.tick(LEADER, 0)
    for _ in range(16):
        sm.tick(LEADER, 4 * limits.LEASE_TICK_INTERVAL_MS)
    assert sm.read(lease_pb2.LeaseTimeToLiveRequest(id=lease)).found
    assert sm.tick(LEADER, 4 * limits.LEASE_TICK_INTERVAL_MS).expired == 1


def test_keepalive_renews_and_revoke_releases_everything_attached(sm):
    lease = grant(sm, 2_000)
    sm.tick(LEADER, 0)
    sm.write(co.RegisterRequest(name=b"svc", value=b"pid-1", lease=lease))
    advance(sm, LEADER, 1_900)
    assert sm.write(lease_pb2.LeaseKeepAliveRequest(id=lease)).found
    advance(sm, LEADER, 1_900)
    assert sm.read(co.WhereisRequest(name=b"svc")).found
    assert sm.write(lease_pb2.LeaseRevokeRequest(id=lease)).revoked
    assert not sm.read(co.WhereisRequest(name=b"svc")).found
    assert not sm.write(lease_pb2.LeaseKeepAliveRequest(id=lease)).found


def test_registry_refuses_a_taken_name_and_names_the_owner(sm):
    first, second = grant(sm), grant(sm)
    mine = sm.write(co.RegisterRequest(name=b"svc", value=b"a", lease=first))
    theirs = sm.write(co.RegisterRequest(name=b"svc", value=b"b", lease=second))
    assert mine.registered and not theirs.registered
    retried = sm.write(co.RegisterRequest(name=b"svc", value=b"a", lease=first))
    assert retried.registered and retried.claim == mine.claim
    assert theirs.claim == mine.claim and mine.claim.token == mine.header.revision
    assert not sm.write(co.UnregisterRequest(name=b"svc", token=mine.claim.token + 1)).unregistered
    assert sm.write(co.UnregisterRequest(name=b"svc", token=mine.claim.token)).unregistered
    again = sm.write(co.RegisterRequest(name=b"svc", value=b"b", lease=second))
    assert again.registered and again.claim.token > mine.claim.token
    listed = sm.read(co.RegistryListRequest(prefix=b"s")).claims
    assert [c.value for c in listed] == [b"b"]


def test_claims_need_a_live_lease(sm):
    with pytest.raises(FailedPrecondition, match="lease 99 not found"):
        sm.write(co.RegisterRequest(name=b"svc", lease=99))
    with pytest.raises(InvalidArgument, match="lease id is required"):
        sm.write(co.LockAcquireRequest(name=b"lock"))
    with pytest.raises(FailedPrecondition):
        sm.write(kv_pb2.PutRequest(key=b"k", value=b"v", lease=42))


def test_lock_tokens_strictly_increase_across_holders(sm):
    tokens = []
    for _ in range(3):
        lease = grant(sm)
        held = sm.write(co.LockAcquireRequest(name=b"lock", lease=lease))
        assert held.acquired
        blocked = sm.write(co.LockAcquireRequest(name=b"lock", lease=grant(sm)))
        assert not blocked.acquired and blocked.claim.token == held.claim.token
        tokens.append(held.claim.token)
        assert sm.write(co.LockReleaseRequest(name=b"lock", token=held.claim.token)).released
    assert tokens == sorted(set(tokens))


def test_election_queue_hands_leadership_on_resign_and_on_expiry(sm):
    a, b, c = grant(sm, 1_000), grant(sm, 60_000), grant(sm, 60_000)
    first = sm.write(co.CampaignRequest(election=b"e", value=b"a", lease=a))
    second = sm.write(co.CampaignRequest(election=b"e", value=b"b", lease=b))
    third = sm.write(co.CampaignRequest(election=b"e", value=b"c", lease=c))
    assert first.elected and not second.elected and not third.elected
    again = sm.write(co.CampaignRequest(election=b"e", value=b"b", lease=b))
    assert again.claim.token == second.claim.token, "one candidacy per lease"
    assert sm.write(co.ProclaimRequest(election=b"e", token=first.claim.token, value=b"a2")).proclaimed
    assert not sm.write(co.ProclaimRequest(election=b"e", token=second.claim.token, value=b"x")).proclaimed
    assert sm.read(co.LeaderRequest(election=b"e")).leader.value == b"a2"
    sm.tick(LEADER, 0)
    advance(sm, LEADER, 1_000)  # a's lease expires: b leads
    assert sm.read(co.LeaderRequest(election=b"e")).leader.token == second.claim.token
    assert sm.write(co.ResignRequest(election=b"e", token=second.claim.token)).resigned
    assert sm.read(co.LeaderRequest(election=b"e")).leader.value == b"c"


def test_events_record_puts_and_deletes_in_revision_order_with_previous_values(sm):
    sm.write(kv_pb2.PutRequest(key=b"a", value=b"1"))
    sm.write(kv_pb2.PutRequest(key=b"a", value=b"2"))
    sm.write(kv_pb2.DeleteRequest(range=kv_pb2.KeyRange(key=b"a")))
    recorded = events(sm)
    assert [rev for rev, _ in recorded] == [1, 2, 3]
    assert [e.type for _, e in recorded] == [watch_pb2.Event.PUT, watch_pb2.Event.PUT,
                                            watch_pb2.Event.DELETE]
    assert recorded[1][1].prev_kv.value == b"1" and recorded[2][1].prev_kv.value == b"2"
    assert recorded[2][1].kv.mod_revision == 3


def test_a_failed_txn_leaves_no_events(sm):
    sm.write(kv_pb2.PutRequest(key=b"a", value=b"1"))
    from tandemkv.v1 import counter_pb2

    sm.write(counter_pb2.CounterSetRequest(name=b"c", value=2**63 - 1))
    txn = kv_pb2.TxnRequest(success=[
        kv_pb2.RequestOp(put=kv_pb2.PutRequest(key=b"a", value=b"lost")),
        kv_pb2.RequestOp(counter_incr=counter_pb2.CounterIncrRequest(name=b"c", delta=1))])
    with pytest.raises(Exception):
        sm.write(txn)
    assert [rev for rev, _ in events(sm)] == [1]


def test_history_beyond_the_retention_is_trimmed_and_recorded(sm, monkeypatch):
    monkeypatch.setattr(limits, "WATCH_HISTORY_REVISIONS_MAX", 5)
    for i in range(12):
        sm.write(kv_pb2.PutRequest(key=b"k", value=b"%d" % i))
    revisions = [rev for rev, _ in events(sm)]
    assert revisions == list(range(7, 13))
    assert int.from_bytes(sm.view.meta_get(COMPACTED_THROUGH_KEY), "big") == 6


def test_a_renewal_counts_from_the_next_tick_so_a_lease_never_expires_early(sm):
    lease = grant(sm, 1_000)
    sm.tick(LEADER, 0)
    advance(sm, LEADER, 900)
    sm.write(lease_pb2.LeaseKeepAliveRequest(id=lease))  # applied up to a tick after 900
    advance(sm, LEADER, 50)   # its deadline: 950 + 1000
    advance(sm, LEADER, 950)
    assert sm.read(lease_pb2.LeaseTimeToLiveRequest(id=lease)).remaining_ms == 50
    advance(sm, LEADER, 50)
    assert not sm.read(lease_pb2.LeaseTimeToLiveRequest(id=lease)).found


def test_the_table_catalog_agrees_on_one_type_per_name(sm):
    from tandemkv.v1 import crdt_pb2

    created = sm.write(crdt_pb2.CreateTableRequest(name="views", type=crdt_pb2.G_COUNTER))
    again = sm.write(crdt_pb2.CreateTableRequest(name="views", type=crdt_pb2.G_COUNTER))
    assert created.created and not again.created and again.table == created.table
    with pytest.raises(FailedPrecondition, match="exists with type G_COUNTER"):
        sm.write(crdt_pb2.CreateTableRequest(name="views", type=crdt_pb2.OR_SET))
    with pytest.raises(InvalidArgument, match="unknown table type"):
        sm.write(crdt_pb2.CreateTableRequest(name="x", type=crdt_pb2.CRDT_TYPE_UNSPECIFIED))
    sm.write(crdt_pb2.CreateTableRequest(name="online", type=crdt_pb2.OR_SET))
    listed = sm.read(crdt_pb2.ListTablesRequest()).tables
    assert [(t.name, t.type) for t in listed] == [("online", crdt_pb2.OR_SET),
                                                  ("views", crdt_pb2.G_COUNTER)]
    assert sm.write(crdt_pb2.DropTableRequest(name="views")).dropped
    assert [t.name for t in sm.read(crdt_pb2.ListTablesRequest()).tables] == ["online"]


def test_leases_are_listed_in_id_order_a_page_at_a_time(sm):
    granted = [sm.write(lease_pb2.LeaseGrantRequest(ttl_ms=5_000 + k)).id for k in range(5)]
    sm.write(lease_pb2.LeaseRevokeRequest(id=granted[2]))
    first = sm.read(lease_pb2.LeaseListRequest(limit=2))
    assert [lease.id for lease in first.leases] == granted[:2] and first.more
    rest = sm.read(lease_pb2.LeaseListRequest(after_id=first.leases[-1].id))
    assert [lease.id for lease in rest.leases] == [granted[3], granted[4]] and not rest.more
    assert rest.leases[0].granted_ttl_ms == 5_003 == rest.leases[0].remaining_ms
    assert not sm.read(lease_pb2.LeaseListRequest(after_id=2**64 - 1)).leases
