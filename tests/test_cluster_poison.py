"""Requests that once stopped every node for good, against a real 3-node
cluster through raw gRPC: each now gets a clear status, no node exits, the
cluster still takes writes, and a restart of every node replays them all.

1. A name at LMDB's 511-byte bound with a lease (its lease attachment key
   was longer than LMDB allows): INVALID_ARGUMENT naming KEY_SIZE_BYTES_MAX.
2. A transaction of ranges over big values (its stored result was 128 MiB):
   answered within WRITE_RESULT_BYTES_MAX, nothing stored.
3. Filling the store: writes past the space quota are RESOURCE_EXHAUSTED,
   reads and deletes work, and deleting frees space for writes again.
"""

from __future__ import annotations

import grpc
import pytest

from tandemkv import limits
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import coordination_pb2_grpc, kv_pb2, kv_pb2_grpc, lease_pb2, lease_pb2_grpc
from tests.support.cluster import ServeCluster

MAP_SIZE_BYTES = 64 << 20
QUOTA_BYTES = MAP_SIZE_BYTES * limits.SPACE_QUOTA_PERCENT_OF_MAP // 100
BIG_VALUE = b"v" * limits.VALUE_SIZE_BYTES_MAX
CALL_TIMEOUT_S = 15
# Puts of BIG_VALUE enough to pass the quota, with room to spare.
FILL_PUTS_MAX = 2 * QUOTA_BYTES // limits.VALUE_SIZE_BYTES_MAX


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("poison"), map_size_bytes=MAP_SIZE_BYTES) as started:
        started.wait_for_leader(timeout_s=60)
        yield started


@pytest.fixture
def channel(cluster):
    with grpc.insecure_channel(cluster.endpoints[0]) as opened:
        yield opened


def _all_alive(cluster: ServeCluster) -> None:
    exited = {name: p.returncode for name, p in cluster.processes.items() if p.poll() is not None}
    assert not exited, f"nodes exited: {exited}; logs in {cluster.root}"


def _grant(channel) -> int:
    return lease_pb2_grpc.LeaseStub(channel).Grant(
        lease_pb2.LeaseGrantRequest(ttl_ms=60_000), timeout=CALL_TIMEOUT_S).id


def _claims(channel, lease: int, name: bytes):
    registry = coordination_pb2_grpc.RegistryStub(channel)
    lock = coordination_pb2_grpc.LockStub(channel)
    election = coordination_pb2_grpc.ElectionStub(channel)
    return [
        lambda: kv_pb2_grpc.KVStub(channel).Put(
            kv_pb2.PutRequest(key=name, value=b"v", lease=lease), timeout=CALL_TIMEOUT_S),
        lambda: registry.Register(co.RegisterRequest(name=name, value=b"v", lease=lease),
                                  timeout=CALL_TIMEOUT_S),
        lambda: lock.Acquire(co.LockAcquireRequest(name=name, lease=lease), timeout=CALL_TIMEOUT_S),
        lambda: election.Campaign(co.CampaignRequest(election=name, value=b"v", lease=lease),
                                  timeout=CALL_TIMEOUT_S),
    ]


@pytest.mark.parametrize("size", [limits.KEY_SIZE_BYTES_MAX + 1, 500, 505, 510,
                                  limits.LMDB_KEY_BYTES_MAX])
def test_a_long_name_with_a_lease_is_refused_and_no_node_exits(cluster, channel, size):
    lease = _grant(channel)
    for call in _claims(channel, lease, b"c" * size):
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "KEY_SIZE_BYTES_MAX" in refused.value.details()
    put = kv_pb2_grpc.KVStub(channel).Put(kv_pb2.PutRequest(key=b"after-%d" % size, value=b"ok"),
                                          timeout=CALL_TIMEOUT_S)
    assert put.header.revision > 0
    _all_alive(cluster)


def test_names_at_the_key_limit_attach_to_a_lease(cluster, channel):
    lease = _grant(channel)
    answers = [call() for call in _claims(channel, lease, b"m" * limits.KEY_SIZE_BYTES_MAX)]
    assert answers[1].registered and answers[2].acquired and answers[3].elected
    _all_alive(cluster)


def _put_big(channel, prefix: bytes, count: int) -> None:
    stub = kv_pb2_grpc.KVStub(channel)
    for k in range(count):
        stub.Put(kv_pb2.PutRequest(key=prefix + b"%04d" % k, value=BIG_VALUE), timeout=CALL_TIMEOUT_S)


def test_transactions_of_ranges_over_big_values_answer_within_the_result_limit(cluster, channel):
    _put_big(channel, b"wide/", 128)
    ranges = [kv_pb2.RequestOp(range=kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"wide/", prefix=True)))
              for _ in range(32)]
    stub = kv_pb2_grpc.KVStub(channel)
    for attempt in range(16):
        response = stub.Txn(kv_pb2.TxnRequest(success=ranges, request_id=bytes([attempt]) * 16),
                            timeout=CALL_TIMEOUT_S)
        assert response.ByteSize() <= limits.WRITE_RESULT_BYTES_MAX
        assert response.responses[0].range.more and len(response.responses) == 32
    stub.Delete(kv_pb2.DeleteRequest(range=kv_pb2.KeyRange(key=b"wide/", prefix=True)), timeout=CALL_TIMEOUT_S)
    _all_alive(cluster)


def test_past_the_space_quota_writes_are_refused_and_deleting_frees_space(cluster, channel):
    stub = kv_pb2_grpc.KVStub(channel)
    written = 0
    with pytest.raises(grpc.RpcError) as full:
        for written in range(FILL_PUTS_MAX):
            stub.Put(kv_pb2.PutRequest(key=b"fill/%05d" % written, value=BIG_VALUE), timeout=CALL_TIMEOUT_S)
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "space quota" in full.value.details()
    assert written > 0
    got = stub.Get(kv_pb2.GetRequest(key=b"fill/00000"), timeout=CALL_TIMEOUT_S)
    assert got.found and got.kv.value == BIG_VALUE
    with pytest.raises(grpc.RpcError) as still_full:
        stub.Put(kv_pb2.PutRequest(key=b"one-more", value=b"v"), timeout=CALL_TIMEOUT_S)
    assert still_full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for start in range(0, written, limits.DELETE_RANGE_KEYS_MAX // 100):
        stub.Delete(kv_pb2.DeleteRequest(range=kv_pb2.KeyRange(
            key=b"fill/%05d" % start, range_end=b"fill/%05d" % (start + 100))), timeout=CALL_TIMEOUT_S)
    assert stub.Put(kv_pb2.PutRequest(key=b"one-more", value=b"v"), timeout=CALL_TIMEOUT_S).header.revision
    _all_alive(cluster)


def test_every_node_restarts_over_these_entries_and_reads_back(cluster, channel):
    stub = kv_pb2_grpc.KVStub(channel)
    lease = _grant(channel)
    for call in _claims(channel, lease, b"r" * 505):
        with pytest.raises(grpc.RpcError):
            call()
    marker = stub.Put(kv_pb2.PutRequest(key=b"before-restart", value=b"kept"), timeout=CALL_TIMEOUT_S)
    for member in cluster.members:
        assert cluster.stop_node(member.name) == 0
    cluster.start()
    cluster.wait_for_leader(timeout_s=60)
    for member in cluster.members:
        cluster.wait_for_applied(member.name, marker.header.revision, timeout_s=30)
    with grpc.insecure_channel(cluster.endpoints[1]) as other:
        got = kv_pb2_grpc.KVStub(other).Get(kv_pb2.GetRequest(key=b"before-restart"), timeout=CALL_TIMEOUT_S)
    assert got.found and got.kv.value == b"kept"
    assert stub.Put(kv_pb2.PutRequest(key=b"after-restart", value=b"v"), timeout=CALL_TIMEOUT_S).header.revision
    _all_alive(cluster)
