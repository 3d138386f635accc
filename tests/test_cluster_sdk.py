"""The SDK against a real 3-node cluster of `tandemkv serve` processes:
every operation (sync and async), exactly-once request ids, bad input
(refused with its documented code while the cluster keeps serving)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tandemkv import errors, limits
from tandemkv.client import AsyncClient, Client, Op
from tandemkv.v1 import counter_pb2, counter_pb2_grpc, kv_pb2, kv_pb2_grpc
from tests.support.cluster import ServeCluster

LEADER_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("sdk-cluster"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


@pytest.fixture
def client(cluster):
    with Client(cluster.endpoints) as client:
        yield client


def test_status_shows_three_members_agreeing_on_one_leader(client):
    status = client.status()
    assert sorted(n.name for n in status.nodes) == ["n1", "n2", "n3"]
    assert [n.role for n in status.nodes].count("leader") == 1
    assert {n.leader for n in status.nodes} == {status.leader}
    assert client.leader() in [n.endpoint for n in status.nodes if n.role == "leader"]


def test_every_kv_operation_through_the_sync_client(client):
    first = client.put("sync/a", "1")
    assert client.put(b"sync/b", b"2", prev_kv=True).prev is None
    assert client.put("sync/a", "one", prev_kv=True).prev.value == b"1"
    assert client.get("sync/a") == b"one" and client.get("sync/missing") is None
    kv = client.get_kv("sync/a")
    assert (kv.version, kv.create_revision) == (2, first.revision) and kv.mod_revision > first.revision
    assert client.get("sync/a", stale=True) in (b"1", b"one")
    assert client.range("sync/").to_dict() == {b"sync/a": b"one", b"sync/b": b"2"}
    assert [kv.key for kv in client.range("sync/a", end="sync/b")] == [b"sync/a"]
    assert client.range("sync/", limit=1).more is True
    assert client.delete("sync/a") == 1 and client.delete("sync/", prefix=True) == 1
    assert len(client.range("sync/")) == 0


def test_every_counter_operation_through_the_sync_client(client):
    hits = client.counter("sync-hits")
    assert hits.get() == 0
    assert (hits.incr(), hits.incr(10), hits.decr(4)) == (1, 11, 7)
    assert hits.set(100) == 7 and hits.get() == 100
    assert hits.compare_and_set(100, 5) is True and hits.compare_and_set(100, 6) is False
    assert hits.get() == 5 and hits.delete() is True and hits.get() == 0
    hits.set(2**63 - 1)
    with pytest.raises(errors.OutOfRange):
        hits.incr()
    assert hits.get() == 2**63 - 1


def test_a_transaction_runs_one_branch_atomically(client):
    client.put("txn/config", "v1")
    result = (client.txn().compare_value("txn/config", "==", "v1")
              .on_success(Op.put("txn/config", "v2"), Op.incr("txn/changes"), Op.get("txn/config"))
              .on_failure(Op.get("txn/config")).commit())
    assert result.succeeded and result.responses[1] == 1 and result.responses[2].value == b"v2"
    again = (client.txn().compare_value("txn/config", "==", "v1")
             .on_success(Op.put("txn/config", "v3")).on_failure(Op.get("txn/config")).commit())
    assert not again.succeeded and again.responses[0].value == b"v2"
    assert client.txn().compare_version("txn/none", "==", 0).on_success(Op.put("txn/none", "x")).commit().succeeded
    assert client.counter("txn/changes").get() == 1


def test_every_operation_through_the_async_client(cluster):
    async def scenario():
        async with AsyncClient(cluster.endpoints) as client:
            await client.put("async/a", "1")
            assert await client.get("async/a") == b"1"
            assert (await client.get_kv("async/a")).version == 1
            assert [kv.key for kv in await client.range("async/")] == [b"async/a"]
            counter = client.counter("async-hits")
            assert (await counter.incr(3), await counter.decr(), await counter.set(9)) == (3, 2, 2)
            assert await counter.compare_and_set(9, 1) and await counter.get() == 1
            assert await counter.delete()
            result = await client.txn().compare_counter("async-hits", "==", 0).on_success(
                Op.incr("async-hits", 5)).commit()
            assert result.succeeded and result.responses == (5,)
            assert await client.delete("async/a") == 1
            assert (await client.status()).leader

    asyncio.run(scenario())


def test_the_same_request_id_sent_twice_applies_once(client):
    request_id = b"once-" + b"x" * 11
    counter = client.counter("exactly-once")
    assert counter.incr(5, request_id=request_id) == 5
    assert counter.incr(5, request_id=request_id) == 5
    assert counter.get() == 5
    put_id = b"put-" + b"y" * 12
    assert client.put("exactly-once-key", "v", request_id=put_id) == client.put(
        "exactly-once-key", "w", request_id=put_id)
    assert client.get("exactly-once-key") == b"v"


def test_the_same_request_id_on_two_nodes_applies_once(cluster):
    request = counter_pb2.CounterIncrRequest(name=b"two-nodes", delta=1, request_id=b"r" * 16)
    answers = []
    for endpoint in cluster.endpoints[:2]:
        with grpc.insecure_channel(endpoint) as channel:
            answers.append(counter_pb2_grpc.CounterStub(channel).Incr(request, timeout=10).value)
    assert answers == [1, 1]


BAD_INPUTS = [
    ("Put", kv_pb2.PutRequest(key=b"", value=b"v"), grpc.StatusCode.INVALID_ARGUMENT),
    ("Put", kv_pb2.PutRequest(key=b"k" * (limits.KEY_SIZE_BYTES_MAX + 1)), grpc.StatusCode.INVALID_ARGUMENT),
    ("Put", kv_pb2.PutRequest(key=b"k", value=b"v" * (limits.VALUE_SIZE_BYTES_MAX + 1)),
     grpc.StatusCode.INVALID_ARGUMENT),
    ("Put", kv_pb2.PutRequest(key=b"k", request_id=b"abc"), grpc.StatusCode.INVALID_ARGUMENT),
    ("Get", kv_pb2.GetRequest(key=b"k", consistency=42), grpc.StatusCode.INVALID_ARGUMENT),
    ("Txn", kv_pb2.TxnRequest(compare=[kv_pb2.Compare(key=b"k", target=77)]), grpc.StatusCode.INVALID_ARGUMENT),
]


@pytest.mark.parametrize("method,request_message,code", BAD_INPUTS)
def test_bad_input_is_refused_and_the_cluster_still_serves(cluster, client, method, request_message, code):
    with grpc.insecure_channel(cluster.endpoints[0]) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            getattr(kv_pb2_grpc.KVStub(channel), method)(request_message, timeout=10)
        assert caught.value.code() == code
        with pytest.raises(grpc.RpcError) as spent:
            kv_pb2_grpc.KVStub(channel).Put(kv_pb2.PutRequest(key=b"late", value=b"v"), timeout=0.0001)
        assert spent.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert client.put("still-serving", method).revision > 0
    assert client.get("still-serving") == method.encode()
    assert client.get("late") is None


def test_the_async_client_lists_leases_in_id_order(cluster):
    async def scenario():
        async with AsyncClient(cluster.endpoints) as client:
            async with client.lease(30) as first, client.lease(30) as second:
                ids = [info.id for info in await client.leases()]
                assert ids.index(first.id) < ids.index(second.id)
            return [info.id for info in await client.leases()], first.id, second.id

    remaining, first_id, second_id = asyncio.run(scenario())
    assert first_id not in remaining and second_id not in remaining
