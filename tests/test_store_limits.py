"""What a client can make the state machine store, and what it answers at
and past every limit: composite keys that fit LMDB whatever the name, results
bounded by WRITE_RESULT_BYTES_MAX, and the space quota (refuse what adds
data, keep deleting, free space). Runs over the in-memory view and the LMDB
view alike; the in-memory view refuses an over-long stored key as LMDB does.
"""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import InvalidArgument, ResourceExhausted
from tandemkv.server.strong import coordination, view as sizes
from tandemkv.v1 import coordination_pb2, kv_pb2, lease_pb2, raft_pb2
from tests.support.applier import Applier, make_view

KEY_MAX = b"k" * limits.KEY_SIZE_BYTES_MAX
RID = b"r" * 16
VALUE_MAX = b"v" * limits.VALUE_SIZE_BYTES_MAX


@pytest.fixture(params=["memory", "lmdb"])
def view(request, tmp_path):
    with make_view(request.param, tmp_path) as made:
        yield made


def _lease(sm: Applier) -> int:
    return sm.write(lease_pb2.LeaseGrantRequest(ttl_ms=10_000)).id


def _prefix(key: bytes) -> kv_pb2.KeyRange:
    return kv_pb2.KeyRange(key=key, prefix=True)


def test_the_key_limit_leaves_exactly_the_longest_prefix_the_store_adds():
    name = KEY_MAX
    candidate = coordination.candidate_prefix(name) + (2**63).to_bytes(8, "big")
    longest = sizes.attachment_key(2**63, coordination.CANDIDATES + candidate)
    assert len(longest) == limits.LMDB_KEY_BYTES_MAX
    assert limits.KEY_SIZE_BYTES_MAX + limits.STORE_KEY_OVERHEAD_BYTES_MAX == limits.LMDB_KEY_BYTES_MAX


def test_names_at_the_key_limit_attach_to_a_lease_in_every_table(view):
    sm = Applier(view)
    lease = _lease(sm)
    assert sm.write(kv_pb2.PutRequest(key=KEY_MAX, value=b"v", lease=lease)).header.revision
    assert sm.write(coordination_pb2.RegisterRequest(name=KEY_MAX, value=b"v", lease=lease)).registered
    assert sm.write(coordination_pb2.LockAcquireRequest(name=KEY_MAX, lease=lease)).acquired
    assert sm.write(coordination_pb2.CampaignRequest(election=KEY_MAX, value=b"v", lease=lease)).elected
    assert sm.write(lease_pb2.LeaseRevokeRequest(id=lease)).revoked
    assert not sm.get(KEY_MAX).found


@pytest.mark.parametrize("request_for", [
    lambda lease, name: kv_pb2.PutRequest(key=name, value=b"v", lease=lease),
    lambda lease, name: coordination_pb2.RegisterRequest(name=name, value=b"v", lease=lease),
    lambda lease, name: coordination_pb2.LockAcquireRequest(name=name, lease=lease),
    lambda lease, name: coordination_pb2.CampaignRequest(election=name, value=b"v", lease=lease),
], ids=["put", "register", "lock", "campaign"])
@pytest.mark.parametrize("size", [limits.KEY_SIZE_BYTES_MAX + 1, 505, 510, limits.LMDB_KEY_BYTES_MAX])
def test_a_name_past_the_key_limit_is_an_error_result_not_a_crash(view, request_for, size):
    sm = Applier(view)
    lease = _lease(sm)
    with pytest.raises(InvalidArgument, match="KEY_SIZE_BYTES_MAX"):
        sm.write(request_for(lease, b"c" * size))
    assert sm.read(lease_pb2.LeaseTimeToLiveRequest(id=lease, attached=True)).keys == []


def _fill(sm: Applier, count: int, value: bytes = VALUE_MAX) -> None:
    for k in range(count):
        sm.write(kv_pb2.PutRequest(key=b"big/%03d" % k, value=value))


def test_a_transaction_of_ranges_returns_at_most_the_result_limit_and_keeps_nothing(view):
    sm = Applier(view)
    _fill(sm, 128)
    txn = kv_pb2.TxnRequest(success=[
        kv_pb2.RequestOp(range=kv_pb2.RangeRequest(range=_prefix(b"big/"))) for _ in range(32)])
    used_before = view.space_used()
    response = sm.write(txn, RID)
    assert response.ByteSize() <= limits.WRITE_RESULT_BYTES_MAX
    ranges = [op.range for op in response.responses]
    assert len(ranges) == 32 and ranges[0].more and ranges[-1].more
    assert view.dedup_get(RID) is None, "a read-only transaction's result is not kept"
    assert view.space_used() == used_before


def test_a_writing_transaction_keeps_a_result_within_the_limit(view):
    sm = Applier(view)
    _fill(sm, 64)
    txn = kv_pb2.TxnRequest(success=[
        kv_pb2.RequestOp(range=kv_pb2.RangeRequest(range=_prefix(b"big/"))),
        kv_pb2.RequestOp(put=kv_pb2.PutRequest(key=b"marker", value=b"1"))])
    response = sm.write(txn, RID)
    assert response.responses[0].range.more
    kept = view.dedup_get(RID)
    assert kept is not None and len(kept) <= limits.WRITE_RESULT_BYTES_MAX + 64
    again = sm.write(txn, RID)
    assert again == response and again.header.revision == response.header.revision


def test_a_delete_whose_prev_kvs_outgrow_the_result_limit_changes_nothing(view):
    sm = Applier(view)
    _fill(sm, 40)
    request = kv_pb2.DeleteRequest(range=_prefix(b"big/"), prev_kv=True)
    with pytest.raises(InvalidArgument, match="WRITE_RESULT_BYTES_MAX"):
        sm.write(request)
    assert sm.read(kv_pb2.RangeRequest(range=_prefix(b"big/"), keys_only=True)).kvs[39]
    assert sm.write(kv_pb2.DeleteRequest(range=_prefix(b"big/"))).deleted == 40


QUOTA_BYTES = 2 * 1024 * 1024


def test_at_the_space_quota_writes_are_refused_and_deletes_free_space(view):
    sm = Applier(view, space_quota_bytes=QUOTA_BYTES)
    written = 0
    with pytest.raises(ResourceExhausted, match="space quota"):
        for written in range(200):
            sm.write(kv_pb2.PutRequest(key=b"big/%03d" % written, value=VALUE_MAX))
    assert 0 < written < 200
    assert QUOTA_BYTES <= view.space_used() < QUOTA_BYTES + 3 * limits.VALUE_SIZE_BYTES_MAX
    with pytest.raises(ResourceExhausted):
        sm.write(kv_pb2.PutRequest(key=b"small", value=b"v"), RID)
    assert view.dedup_get(RID) is None, "a refusal applied nothing, so a retry may apply"
    assert sm.write(kv_pb2.DeleteRequest(range=_prefix(b"big/"))).deleted == written
    assert sm.get(b"big/000").found is False
    assert view.space_used() < QUOTA_BYTES
    assert sm.write(kv_pb2.PutRequest(key=b"small", value=b"v"), RID).header.revision


def test_at_the_space_quota_leases_keep_alive_and_names_are_released(view):
    sm = Applier(view, space_quota_bytes=QUOTA_BYTES)
    lease = _lease(sm)
    token = sm.write(coordination_pb2.LockAcquireRequest(name=b"lock", lease=lease)).claim.token
    with pytest.raises(ResourceExhausted):
        for k in range(200):
            sm.write(kv_pb2.PutRequest(key=b"big/%03d" % k, value=VALUE_MAX))
    with pytest.raises(ResourceExhausted):
        sm.write(lease_pb2.LeaseGrantRequest(ttl_ms=10_000))
    assert sm.write(lease_pb2.LeaseKeepAliveRequest(id=lease)).found
    assert sm.write(coordination_pb2.LockReleaseRequest(name=b"lock", token=token)).released
    assert sm.write(lease_pb2.LeaseRevokeRequest(id=lease)).revoked


def test_the_history_is_held_to_its_share_of_the_quota(view):
    sm = Applier(view, space_quota_bytes=QUOTA_BYTES)
    history_max = QUOTA_BYTES * limits.WATCH_HISTORY_QUOTA_PERCENT // 100
    for round_ in range(6):
        _fill(sm, 10)
        sm.write(kv_pb2.DeleteRequest(range=_prefix(b"big/")))
        assert view.history_bytes() <= history_max + 20 * limits.VALUE_SIZE_BYTES_MAX, round_
    sm.write(kv_pb2.PutRequest(key=b"small", value=b"v"))
    assert view.history_bytes() <= history_max


def test_refused_writes_in_a_batch_entry_leave_the_others_applied(view):
    sm = Applier(view, space_quota_bytes=QUOTA_BYTES)
    writes = [(kv_pb2.PutRequest(key=b"big/%03d" % k, value=VALUE_MAX), b"") for k in range(100)]
    answers = sm.batch(writes)
    refused = [a for a in answers if isinstance(a, ResourceExhausted)]
    applied = [a for a in answers if isinstance(a, kv_pb2.PutResponse)]
    assert refused and applied and len(refused) + len(applied) == 100
    for (request, _), answer in zip(writes, answers):
        assert sm.get(request.key).found == isinstance(answer, kv_pb2.PutResponse), request.key


def test_a_command_without_a_quota_is_not_refused(view):
    sm = Applier(view)
    _fill(sm, 80)
    assert view.space_used() > QUOTA_BYTES
    assert sm.write(kv_pb2.PutRequest(key=b"one-more", value=b"v")).header.revision


def test_the_error_code_maps_to_resource_exhausted():
    result = raft_pb2.CommandResult(revision=1)
    result.error.code = raft_pb2.RESOURCE_EXHAUSTED
    result.error.message = "full"
    from tandemkv.server.strong import commands
    with pytest.raises(ResourceExhausted, match="full"):
        commands.decode_result(result.SerializeToString())


def test_a_request_id_reused_by_another_kind_of_request_is_refused(view):
    sm = Applier(view)
    lease = _lease(sm)
    sm.write(kv_pb2.PutRequest(key=b"k", value=b"v"), RID)
    with pytest.raises(InvalidArgument, match="fresh request id"):
        sm.write(coordination_pb2.CampaignRequest(election=b"e", value=b"v", lease=lease), RID)
    assert sm.read(coordination_pb2.LeaderRequest(election=b"e")).found is False
    assert sm.write(kv_pb2.PutRequest(key=b"k", value=b"w"), RID).header.revision == 2
    assert sm.get(b"k").kv.value == b"v"
