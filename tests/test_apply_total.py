"""Apply is total: generated sequences of client requests, at and past every
limit (keys and names around KEY_SIZE_BYTES_MAX and LMDB's 511, values
around VALUE_SIZE_BYTES_MAX, transactions around TXN_OPS_MAX, leases that
exist and that do not, a small space quota), applied singly and in batch
entries over both views, never raise; every result decodes; and the running
logical size equals a count of the records, record by record.

The in-memory view refuses an over-long stored key as LMDB does, so a key
the state machine forgot to bound fails here on both views.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandemkv import limits
from tandemkv.server.strong import commands, view as sizes
from tandemkv.server.strong.state_machine import apply_entry
from tandemkv.v1 import coordination_pb2, counter_pb2, kv_pb2, lease_pb2, raft_pb2
from tests.support.applier import make_view

KEY_SIZES = [0, 1, 2, limits.KEY_SIZE_BYTES_MAX - 1, limits.KEY_SIZE_BYTES_MAX,
             limits.KEY_SIZE_BYTES_MAX + 1, 505, 510, limits.LMDB_KEY_BYTES_MAX,
             limits.LMDB_KEY_BYTES_MAX + 1]
VALUE_SIZES = [0, 1, 100, limits.VALUE_SIZE_BYTES_MAX - 1, limits.VALUE_SIZE_BYTES_MAX,
               limits.VALUE_SIZE_BYTES_MAX + 1]
INT64S = [0, 1, -1, 2**63 - 1, -(2**63), 2**62]
QUOTA_BYTES = 1024 * 1024

keys = st.builds(lambda size, fill: bytes([fill]) * size,
                 st.sampled_from(KEY_SIZES), st.sampled_from(b"ak\xff\x00"))
short_keys = st.builds(lambda size, fill: bytes([fill]) * size,
                       st.sampled_from([1, 2, 3]), st.sampled_from(b"ak\xff"))
values = st.builds(lambda size: b"v" * size, st.sampled_from(VALUE_SIZES))
ints = st.sampled_from(INT64S) | st.integers(-(2**63), 2**63 - 1)
uints = st.sampled_from([0, 1, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1)
# A lease id or token: mostly one of the leases granted before the steps
# (ids 1..3), sometimes any.
GRANTED_LEASES = (1, 2, 3)
leases = st.sampled_from(GRANTED_LEASES) | st.sampled_from(GRANTED_LEASES) | uints
key_ranges = st.builds(kv_pb2.KeyRange, key=keys | short_keys, range_end=st.just(b"") | keys,
                       prefix=st.booleans())

puts = st.builds(kv_pb2.PutRequest, key=keys | short_keys, value=values, lease=leases,
                 prev_kv=st.booleans())
deletes = st.builds(kv_pb2.DeleteRequest, range=key_ranges, prev_kv=st.booleans())
ranges = st.builds(kv_pb2.RangeRequest, range=key_ranges, limit=st.integers(0, 2**32 - 1),
                   keys_only=st.booleans())
incrs = st.builds(counter_pb2.CounterIncrRequest, name=keys | short_keys, delta=ints)
sets = st.builds(counter_pb2.CounterSetRequest, name=keys | short_keys, value=ints)
request_ops = st.one_of(
    puts.map(lambda r: kv_pb2.RequestOp(put=r)),
    deletes.map(lambda r: kv_pb2.RequestOp(delete=r)),
    ranges.map(lambda r: kv_pb2.RequestOp(range=r)),
    incrs.map(lambda r: kv_pb2.RequestOp(counter_incr=r)),
    sets.map(lambda r: kv_pb2.RequestOp(counter_set=r)),
)
compares = st.builds(kv_pb2.Compare, key=keys | short_keys, value=values,
                     result=st.integers(0, 5), target=st.integers(0, 7), version=uints,
                     counter=ints)


def _txn(compare, success, failure, copies):
    request = kv_pb2.TxnRequest(compare=compare, success=success * copies, failure=failure)
    return request


txns = st.builds(_txn, st.lists(compares, max_size=3), st.lists(request_ops, max_size=6),
                 st.lists(request_ops, max_size=3), st.sampled_from([1, 2, 22, 40]))
writes = st.one_of(
    puts, deletes, txns, incrs, sets,
    st.builds(counter_pb2.CounterCompareAndSetRequest, name=keys, expected=ints, value=ints),
    st.builds(counter_pb2.CounterDeleteRequest, name=keys),
    st.builds(lease_pb2.LeaseGrantRequest, ttl_ms=st.sampled_from([0, -1, 1000, 5000]) | ints),
    st.builds(lease_pb2.LeaseRevokeRequest, id=leases),
    st.builds(lease_pb2.LeaseKeepAliveRequest, id=leases),
    st.builds(coordination_pb2.RegisterRequest, name=keys, value=values, lease=leases),
    st.builds(coordination_pb2.UnregisterRequest, name=keys, token=leases),
    st.builds(coordination_pb2.LockAcquireRequest, name=keys, lease=leases,
              wait_ms=st.sampled_from([0, -1, limits.CLAIM_WAIT_MS_MAX + 1])),
    st.builds(coordination_pb2.LockReleaseRequest, name=keys, token=leases),
    st.builds(coordination_pb2.CampaignRequest, election=keys, value=values, lease=leases),
    st.builds(coordination_pb2.ProclaimRequest, election=keys, value=values, token=leases),
    st.builds(coordination_pb2.ResignRequest, election=keys, token=leases),
)
request_ids = st.sampled_from([b"", b"r" * 16, b"s" * 16, b"short"])
steps = st.lists(st.tuples(writes, request_ids, st.booleans()), min_size=1, max_size=16)


def _memory_count(view) -> tuple[int, int]:
    state = view._state
    used = sum(sizes.kv_bytes(k, r.value) for k, r in state["kv"].items())
    used += sum(sizes.counter_bytes(name) for name in state["counters"])
    used += sum(sizes.dedup_bytes(rid, result) for rid, (_, result) in state["dedup"].items())
    used += sizes.lease_bytes() * len(state["leases"])
    used += sum(sizes.attachment_bytes(item) for items in state["lease_items"].values()
                for item in items)
    used += sum(sizes.claim_bytes(t, n, c) for (t, n), c in state["claims"].items())
    history = sum(sizes.event_bytes(event) for event in state["events"].values())
    return used + history, history


def _count(view) -> tuple[int, int]:
    return view.count_space() if hasattr(view, "count_space") else _memory_count(view)


def _apply_steps(view, steps_) -> None:
    index = 0
    for lease in GRANTED_LEASES:
        index += 1
        grant = commands.encode_write(lease_pb2.LeaseGrantRequest(ttl_ms=60_000), b"", 1_000)
        assert commands.decode_result(apply_entry(view, index, grant)).id == lease
    pending: list[bytes] = []
    for position, (request, request_id, quota) in enumerate(steps_):
        space_quota = QUOTA_BYTES if quota else 0
        command = commands.encode_write(request, request_id, 1_000 + position, space_quota)
        if position % 3 == 2 and len(pending) < 4:
            pending.append(command)  # proposed together with the next ones
            continue
        entries = [command] if not pending else [
            raft_pb2.Command(format_version=1, ts_ms=1_000 + position,
                             batch=raft_pb2.CommandBatch(commands=[*pending, command])
                             ).SerializeToString()]
        pending = []
        for entry in entries:
            index += 1
            result = apply_entry(view, index, entry)
            decoded = raft_pb2.CommandResult.FromString(result)
            assert 0 < decoded.revision <= index  # a dedup hit answers an older one
            assert len(result) <= limits.WRITE_RESULT_BYTES_MAX * 2 + 4096
        index += 1
        tick = commands.encode_lease_tick("n1", 250 * position, 1_000 + position)
        raft_pb2.CommandResult.FromString(apply_entry(view, index, tick))
    assert view.space_used() >= view.history_bytes() >= 0
    assert (view.space_used(), view.history_bytes()) == _count(view)


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps_=steps)
def test_apply_never_raises_and_counts_what_it_stores(kind, steps_, tmp_path_factory):
    with make_view(kind, tmp_path_factory.mktemp("state")) as view:
        _apply_steps(view, steps_)
