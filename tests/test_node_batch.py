"""`Node.batch` and `Node.batch_async` on an embedded 3-node cluster: each
op gets its own answer or error, one failing op fails only itself, request
ids keep their exactly-once meaning, and the limits on ops and answer bytes
hold."""

from __future__ import annotations

import asyncio
import os

import pytest

from tandemkv import limits
from tandemkv.errors import InvalidArgument, NotFound, OutcomeUnknown, TandemKVError, Unavailable
from tandemkv.v1 import counter_pb2, kv_pb2
from tests.test_embedded_node import Cluster

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("batch"))
    c.start()
    yield c
    c.stop()


def _incr(name: bytes, request_id: bytes = b"") -> counter_pb2.CounterIncrRequest:
    return counter_pb2.CounterIncrRequest(name=name, delta=1, request_id=request_id)


def test_a_mixed_batch_answers_each_op_and_a_bad_op_fails_alone(cluster):
    node = cluster.leader()
    node.put(b"batch-seen", b"before")
    node.put(b"batch-gone", b"old")
    answers = node.batch([
        kv_pb2.PutRequest(key=b"batch-a", value=b"1"),
        kv_pb2.PutRequest(key=b"", value=b"no key"),
        _incr(b"batch-n"),
        kv_pb2.GetRequest(key=b"batch-seen"),
        counter_pb2.CounterGetRequest(name=b"batch-absent"),
        kv_pb2.DeleteRequest(range=kv_pb2.KeyRange(key=b"batch-gone"), prev_kv=True),
    ])
    assert isinstance(answers[0], kv_pb2.PutResponse)
    assert isinstance(answers[1], InvalidArgument) and answers[1].limit == "KEY_SIZE_BYTES_MAX"
    assert answers[2].value == 1
    assert answers[3].kv.value == b"before", "a read observes what was acknowledged before the batch"
    assert isinstance(answers[4], (counter_pb2.CounterGetResponse, NotFound))
    assert answers[5].deleted == 1 and answers[5].prev_kvs[0].value == b"old"
    assert node.get(b"batch-a").kv.value == b"1"
    assert node.get(b"batch-gone").kv.key == b"", "the batch's delete applied"


def test_a_write_resent_with_its_request_id_applies_once(cluster):
    node = cluster.leader()
    request_id = os.urandom(16)
    first = node.batch([_incr(b"batch-once", request_id), _incr(b"batch-other")])
    again = node.batch([_incr(b"batch-once", request_id)])
    assert first[0].value == again[0].value == 1
    assert node.counter_get(b"batch-once").value == 1


def test_the_async_batch_gives_the_same_answers(cluster):
    node = cluster.leader()

    async def run():
        return await node.batch_async([_incr(b"batch-async") for _ in range(50)]
                                      + [counter_pb2.CounterGetRequest(name=b"batch-async")])

    answers = asyncio.run(run())
    assert sorted(a.value for a in answers[:50]) == list(range(1, 51)), "each increment applied once"
    assert 0 <= answers[50].value <= 50


def test_a_batch_through_a_follower_works(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    answers = follower.batch([kv_pb2.PutRequest(key=b"batch-f", value=b"v"), kv_pb2.GetRequest(key=b"batch-f")])
    assert all(not isinstance(a, TandemKVError) for a in answers), answers
    assert leader.get(b"batch-f").kv.value == b"v"


def test_a_batch_over_the_op_limit_or_empty_is_refused_whole(cluster):
    node = cluster.leader()
    with pytest.raises(InvalidArgument, match="BATCH_OPS_MAX"):
        node.batch([kv_pb2.GetRequest(key=b"k")] * (limits.BATCH_OPS_MAX + 1))
    with pytest.raises(InvalidArgument, match="at least one"):
        node.batch([])


def test_answers_past_the_byte_limit_become_retryable_errors(cluster, monkeypatch):
    node = cluster.leader()
    node.put(b"batch-big", b"x" * 4000)
    node.put(b"batch-big-written", b"x" * 4000)
    monkeypatch.setattr(limits, "BATCH_RESPONSE_BYTES_MAX", 6000)
    request_id = os.urandom(16)
    answers = node.batch([kv_pb2.GetRequest(key=b"batch-big"), kv_pb2.GetRequest(key=b"batch-big"),
                          kv_pb2.PutRequest(key=b"batch-big-written", value=b"y", prev_kv=True,
                                            request_id=request_id)])
    assert answers[0].kv.value == b"x" * 4000, "the first answer always fits"
    assert isinstance(answers[1], Unavailable) and "BATCH_RESPONSE_BYTES_MAX" in answers[1].message
    assert isinstance(answers[2], OutcomeUnknown) and answers[2].request_id == request_id
    monkeypatch.undo()
    retried = node.put(b"batch-big-written", b"y", prev_kv=True, request_id=request_id)
    assert retried.prev_kv.value == b"x" * 4000, "the retry returns the stored answer of the one apply"
