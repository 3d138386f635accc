"""The strong state machine, table by table, over the in-memory view and the
LMDB view alike (the `view` fixture runs each test on both).

Method: build commands with the same codec the node uses, apply them at
increasing indexes, and compare decoded results and reads."""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument, OutOfRange
from tandemkv.server.strong import commands, reads
from tandemkv.server.strong.state_machine import CommandFromNewerVersion, apply_entry
from tests.support.applier import Applier, make_view
from tandemkv.v1 import counter_pb2, kv_pb2, raft_pb2, watch_pb2

RID_A = b"a" * 16
RID_B = b"b" * 16


@pytest.fixture(params=["memory", "lmdb"])
def view(request, tmp_path):
    with make_view(request.param, tmp_path) as made:
        yield made


@pytest.fixture
def sm(view):
    return Applier(view)


def put(key, value, **kw):
    return kv_pb2.PutRequest(key=key, value=value, **kw)


def test_put_then_get_tracks_create_mod_revision_and_version(sm):
    first = sm.write(put(b"k", b"1"))
    second = sm.write(put(b"k", b"2", prev_kv=True))
    got = sm.get(b"k")
    assert got.found and got.kv.value == b"2"
    assert got.kv.create_revision == first.header.revision == 1
    assert got.kv.mod_revision == second.header.revision == 2
    assert got.kv.version == 2
    assert second.has_prev_kv and second.prev_kv.value == b"1"


def test_delete_then_recreate_restarts_version_and_create_revision(sm):
    sm.write(put(b"k", b"1"))
    deleted = sm.write(kv_pb2.DeleteRequest(range=kv_pb2.KeyRange(key=b"k"), prev_kv=True))
    assert deleted.deleted == 1 and deleted.prev_kvs[0].value == b"1"
    assert not sm.get(b"k").found
    sm.write(put(b"k", b"again"))
    got = sm.get(b"k").kv
    assert (got.version, got.create_revision) == (1, 3)


def test_range_by_prefix_interval_limit_and_keys_only(sm):
    for key in (b"a", b"app/1", b"app/2", b"app/3", b"b"):
        sm.write(put(key, b"v-" + key))
    prefix = kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"app/", prefix=True))
    assert [kv.key for kv in reads.read_range(sm.view, prefix, 0).kvs] == [
        b"app/1", b"app/2", b"app/3"]
    interval = kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"app/2", range_end=b"b"), limit=5)
    assert [kv.key for kv in reads.read_range(sm.view, interval, 0).kvs] == [b"app/2", b"app/3"]
    limited = kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"", prefix=True), limit=2,
                                  keys_only=True)
    response = reads.read_range(sm.view, limited, 0)
    assert [kv.key for kv in response.kvs] == [b"a", b"app/1"] and response.more
    assert all(kv.value == b"" for kv in response.kvs)


def test_prefix_end_handles_trailing_ff_and_empty_prefix():
    assert reads.prefix_end(b"ab") == b"ac"
    assert reads.prefix_end(b"a\xff") == b"b"
    assert reads.prefix_end(b"\xff\xff") is None
    assert reads.prefix_end(b"") is None


def test_ranged_delete_removes_only_the_range(sm):
    for key in (b"x/1", b"x/2", b"y/1"):
        sm.write(put(key, b"v"))
    deleted = sm.write(kv_pb2.DeleteRequest(range=kv_pb2.KeyRange(key=b"x/", prefix=True)))
    assert deleted.deleted == 2
    assert not sm.get(b"x/1").found and sm.get(b"y/1").found


@pytest.mark.parametrize(
    "request_, expected",
    [
        (counter_pb2.CounterIncrRequest(name=b"c", delta=5), 5),
        (counter_pb2.CounterIncrRequest(name=b"c", delta=-3), -3),
        (counter_pb2.CounterSetRequest(name=b"c", value=42), 42),
    ],
)
def test_counter_single_operations(sm, request_, expected):
    sm.write(request_)
    assert sm.counter(b"c") == expected


def test_counter_increments_accumulate_and_compare_and_set(sm):
    for _ in range(10):
        sm.write(counter_pb2.CounterIncrRequest(name=b"hits", delta=2))
    failed = sm.write(counter_pb2.CounterCompareAndSetRequest(name=b"hits", expected=3, value=0))
    assert not failed.succeeded and failed.value == 20
    done = sm.write(counter_pb2.CounterCompareAndSetRequest(name=b"hits", expected=20, value=7))
    assert done.succeeded and done.value == 7
    assert sm.write(counter_pb2.CounterDeleteRequest(name=b"hits")).deleted
    assert not sm.write(counter_pb2.CounterDeleteRequest(name=b"hits")).deleted


def test_counter_overflow_is_an_error_result_and_leaves_the_counter(sm):
    sm.write(counter_pb2.CounterSetRequest(name=b"c", value=2**63 - 1))
    with pytest.raises(OutOfRange, match="int64"):
        sm.write(counter_pb2.CounterIncrRequest(name=b"c", delta=1))
    assert sm.counter(b"c") == 2**63 - 1
    sm.write(counter_pb2.CounterIncrRequest(name=b"c", delta=-1))
    assert sm.counter(b"c") == 2**63 - 2


def test_same_request_id_applies_once_and_returns_the_first_result(sm):
    first = sm.write(counter_pb2.CounterIncrRequest(name=b"c", delta=1), RID_A)
    again = sm.write(counter_pb2.CounterIncrRequest(name=b"c", delta=1), RID_A)
    other = sm.write(counter_pb2.CounterIncrRequest(name=b"c", delta=1), RID_B)
    assert first == again and first.value == 1
    assert other.value == 2 and sm.counter(b"c") == 2


def test_dedup_records_are_collected_after_the_retention_by_log_time(sm):
    sm.write(counter_pb2.CounterIncrRequest(name=b"c", delta=1), RID_A, ts_ms=1_000)
    later = 1_000 + limits.DEDUP_RETENTION_MS + 1
    sm.write(counter_pb2.CounterIncrRequest(name=b"c", delta=1), RID_B, ts_ms=later)
    assert sm.view.dedup_get(RID_A) is None and sm.view.dedup_get(RID_B) is not None
    # A retry after the retention is a new request: the documented limit.
    sm.write(counter_pb2.CounterIncrRequest(name=b"c", delta=1), RID_A, ts_ms=later)
    assert sm.counter(b"c") == 3


def test_log_clock_never_goes_back_when_a_proposer_clock_is_behind(sm):
    sm.write(put(b"k", b"v"), ts_ms=5_000)
    sm.write(put(b"k", b"v"), ts_ms=10)
    assert sm.view.log_clock_ms() == 5_000


def test_entry_at_or_below_last_applied_is_skipped(sm):
    encoded = commands.encode_write(counter_pb2.CounterIncrRequest(name=b"c", delta=1), b"", 1)
    assert apply_entry(sm.view, 1, encoded) is not None
    assert apply_entry(sm.view, 1, encoded) is None
    assert sm.counter(b"c") == 1 and sm.view.last_applied() == 1


@pytest.mark.parametrize(
    "request_, error",
    [
        (put(b"", b"v"), InvalidArgument),
        (put(b"k" * (limits.KEY_SIZE_BYTES_MAX + 1), b"v"), InvalidArgument),
        (put(b"k", b"v" * (limits.VALUE_SIZE_BYTES_MAX + 1)), InvalidArgument),
        (counter_pb2.CounterIncrRequest(name=b"", delta=1), InvalidArgument),
    ],
)
def test_invalid_requests_become_error_results_and_advance_the_index(sm, request_, error):
    with pytest.raises(error):
        sm.write(request_)
    assert sm.view.last_applied() == 1
    sm.write(put(b"ok", b"still works"))
    assert sm.get(b"ok").found


def test_garbage_and_malformed_commands_are_error_results(sm):
    with pytest.raises(FailedPrecondition, match="undecodable"):
        commands.decode_result(sm.raw(b"\xff\xff\xff"))
    unversioned = raft_pb2.Command(ts_ms=1)
    unversioned.noop.SetInParent()
    with pytest.raises(FailedPrecondition, match="version 0"):
        commands.decode_result(sm.raw(unversioned.SerializeToString()))
    with pytest.raises(FailedPrecondition, match="no operation"):
        commands.decode_result(sm.raw(raft_pb2.Command(format_version=1).SerializeToString()))
    assert sm.view.last_applied() == 3


# An operation field no version has used yet (field 2000, an empty message).
UNKNOWN_OPERATION = bytes([0x82, 0x7D, 0x00])


@pytest.mark.parametrize("newer", [
    raft_pb2.Command(format_version=99, ts_ms=1).SerializeToString(),
    raft_pb2.Command(format_version=1, ts_ms=1).SerializeToString() + UNKNOWN_OPERATION,
], ids=["newer format version", "unknown operation"])
def test_an_entry_from_a_newer_version_stops_the_node_instead_of_diverging(sm, newer):
    index = sm.view.last_applied() + 1
    with pytest.raises(CommandFromNewerVersion, match=f"entry {index} .*upgrade this node"):
        apply_entry(sm.view, index, newer)
    batch = raft_pb2.Command(format_version=1)
    batch.batch.commands.extend([commands.encode_write(_incr(b"c"), b"", 1), newer])
    with pytest.raises(CommandFromNewerVersion):
        apply_entry(sm.view, index + 1, batch.SerializeToString())


def _txn(compares, success, failure=()):
    return kv_pb2.TxnRequest(compare=compares, success=success, failure=list(failure))


def test_txn_takes_the_branch_its_compares_choose(sm):
    sm.write(put(b"k", b"v1"))
    sm.write(counter_pb2.CounterIncrRequest(name=b"c", delta=3))
    compares = [
        kv_pb2.Compare(key=b"k", target=kv_pb2.Compare.VALUE, value=b"v1"),
        kv_pb2.Compare(key=b"k", target=kv_pb2.Compare.VERSION, version=1),
        kv_pb2.Compare(key=b"c", target=kv_pb2.Compare.COUNTER, counter=3),
        kv_pb2.Compare(key=b"k", target=kv_pb2.Compare.MOD_REVISION,
                       result=kv_pb2.Compare.LESS, mod_revision=2),
    ]
    success = [
        kv_pb2.RequestOp(put=put(b"k", b"v2")),
        kv_pb2.RequestOp(counter_incr=counter_pb2.CounterIncrRequest(name=b"c", delta=1)),
        kv_pb2.RequestOp(range=kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"k"))),
    ]
    failure = [kv_pb2.RequestOp(put=put(b"k", b"lost"))]
    response = sm.write(_txn(compares, success, failure))
    assert response.succeeded
    assert response.responses[1].counter_incr.value == 4
    assert response.responses[2].range.kvs[0].value == b"v2"
    again = sm.write(_txn(compares, success, failure))
    assert not again.succeeded and sm.get(b"k").kv.value == b"lost"


def test_txn_value_compare_on_missing_key_fails_and_counter_compare_sees_zero(sm):
    compares = [kv_pb2.Compare(key=b"nope", target=kv_pb2.Compare.VALUE, value=b"")]
    assert not sm.write(_txn(compares, [])).succeeded
    compares = [kv_pb2.Compare(key=b"nope", target=kv_pb2.Compare.COUNTER, counter=0)]
    assert sm.write(_txn(compares, [])).succeeded


def test_txn_error_midway_rolls_back_every_op(sm):
    sm.write(counter_pb2.CounterSetRequest(name=b"big", value=2**63 - 1))
    success = [
        kv_pb2.RequestOp(put=put(b"k", b"written first")),
        kv_pb2.RequestOp(counter_incr=counter_pb2.CounterIncrRequest(name=b"n", delta=1)),
        kv_pb2.RequestOp(counter_incr=counter_pb2.CounterIncrRequest(name=b"big", delta=1)),
    ]
    with pytest.raises(OutOfRange):
        sm.write(_txn([], success))
    assert not sm.get(b"k").found and sm.counter(b"n") == 0


def test_txn_over_the_op_limit_is_refused(sm):
    ops = [kv_pb2.RequestOp(put=put(b"k", b"v"))] * (limits.TXN_OPS_MAX + 1)
    with pytest.raises(InvalidArgument, match="TXN_OPS_MAX"):
        sm.write(_txn([], ops))


def test_noop_advances_the_index_and_changes_nothing(sm):
    result = commands.decode_result(sm.raw(commands.encode_noop(5)))
    assert result == raft_pb2.Noop() and sm.view.last_applied() == 1


# -- batch entries: several writes in one log entry --

def _incr(name, delta=1):
    return counter_pb2.CounterIncrRequest(name=name, delta=delta)


def test_batch_applies_each_write_in_order_sharing_the_entry_index(sm):
    responses = sm.batch([(put(b"k", b"1"), b""), (put(b"k", b"2", prev_kv=True), b""),
                          (_incr(b"c", 5), b""), (_incr(b"c", 2), b"")])
    assert sm.view.last_applied() == 1, "one log entry"
    assert [r.header.revision for r in responses] == [1, 1, 1, 1]
    assert responses[1].prev_kv.value == b"1"
    assert [responses[2].value, responses[3].value] == [5, 7]
    got = sm.get(b"k").kv
    assert (got.value, got.version, got.mod_revision) == (b"2", 2, 1)


def test_batch_keeps_exactly_once_within_and_across_entries(sm):
    first = sm.batch([(_incr(b"c"), RID_A), (_incr(b"c"), RID_A), (_incr(b"c"), RID_B)])
    assert first[0] == first[1] and first[0].value == 1 and first[2].value == 2
    again = sm.batch([(_incr(b"c"), RID_B), (_incr(b"c"), b"")])
    assert again[0] == first[2] and again[1].value == 3
    assert sm.counter(b"c") == 3


def test_a_failing_write_in_a_batch_leaves_the_others(sm):
    sm.write(counter_pb2.CounterSetRequest(name=b"big", value=2**63 - 1))
    failing_txn = _txn([], [kv_pb2.RequestOp(put=put(b"t", b"rolled back")),
                            kv_pb2.RequestOp(counter_incr=_incr(b"big"))])
    responses = sm.batch([(put(b"a", b"1"), b""), (failing_txn, b""), (put(b"", b"bad"), b""),
                          (put(b"b", b"2"), b"")])
    assert isinstance(responses[1], OutOfRange) and isinstance(responses[2], InvalidArgument)
    assert sm.get(b"a").found and sm.get(b"b").found and not sm.get(b"t").found
    events = [watch_pb2.Event.FromString(raw) for _, raw in sm.view.events_scan(2)]
    assert [e.kv.key for e in events] == [b"a", b"b"], "the failed txn left no events"


def test_only_kv_and_counter_writes_may_share_an_entry(sm):
    grant = raft_pb2.Command(format_version=1, ts_ms=1)
    grant.lease_grant.ttl_ms = 10_000
    nested = raft_pb2.Command(format_version=1)
    nested.batch.commands.append(commands.encode_write(_incr(b"c"), b"", 1))
    batch = raft_pb2.Command(format_version=1)
    batch.batch.commands.extend([grant.SerializeToString(), b"\xff\xff",
                                 commands.encode_write(_incr(b"c"), b"", 1),
                                 nested.SerializeToString(),
                                 raft_pb2.Command().SerializeToString()])
    results = raft_pb2.CommandResult.FromString(sm.raw(batch.SerializeToString())).batch.results
    errors = [raft_pb2.CommandResult.FromString(r).error.message for r in results]
    assert "lease_grant command cannot be batched" in errors[0]
    assert "undecodable" in errors[1] and errors[2] == ""
    assert "batch command cannot be batched" in errors[3]
    assert "no operation" in errors[4]
    assert sm.counter(b"c") == 1 and sm.view.lease_get(1) is None


def test_a_replayed_batch_entry_is_skipped_whole(sm):
    batch = raft_pb2.Command(format_version=1)
    batch.batch.commands.extend([commands.encode_write(_incr(b"c"), b"", 1)] * 3)
    assert apply_entry(sm.view, 1, batch.SerializeToString()) is not None
    assert apply_entry(sm.view, 1, batch.SerializeToString()) is None
    assert sm.counter(b"c") == 3
