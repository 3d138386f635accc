"""Batch.Call through gRPC on an embedded 3-node cluster: each op's answer
or error in its own result, errors in the form a single call reports them
(code, message, trailing metadata), empty ops fail alone, and the op limit
refuses a whole call."""

from __future__ import annotations

import os

import grpc
import pytest

from tandemkv import limits
from tandemkv.errors import ERROR_METADATA_KEY
from tandemkv.server.api import build_server
from tandemkv.v1 import batch_pb2, batch_pb2_grpc, counter_pb2, kv_pb2
from tests.test_embedded_node import Cluster

pytestmark = pytest.mark.timeout(120)
CALL_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("api-batch"))
    cluster.start()
    server = build_server(cluster.leader(), "127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield batch_pb2_grpc.BatchStub(channel)
    finally:
        channel.close()
        server.stop()
        cluster.stop()


def _ops(*requests) -> batch_pb2.BatchRequest:
    fields = {kv_pb2.PutRequest: "put", kv_pb2.GetRequest: "get", counter_pb2.CounterIncrRequest: "counter_incr",
              counter_pb2.CounterGetRequest: "counter_get"}
    return batch_pb2.BatchRequest(ops=[batch_pb2.BatchOp(**{fields[type(r)]: r}) if r is not None
                                       else batch_pb2.BatchOp() for r in requests])


def test_each_op_gets_its_own_result_and_a_bad_op_fails_alone(stub):
    request_id = os.urandom(limits.REQUEST_ID_BYTES)
    response = stub.Call(_ops(
        kv_pb2.PutRequest(key=b"api-batch-a", value=b"1"),
        kv_pb2.PutRequest(key=b"k" * (limits.KEY_SIZE_BYTES_MAX + 1), value=b"v"),
        None,
        counter_pb2.CounterIncrRequest(name=b"api-batch-n", delta=2, request_id=request_id),
    ), timeout=CALL_TIMEOUT_S)
    kinds = [r.WhichOneof("result") for r in response.results]
    assert kinds == ["put", "error", "error", "counter_incr"]
    too_long = response.results[1].error
    assert too_long.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "KEY_SIZE_BYTES_MAX" in too_long.message
    assert too_long.metadata[ERROR_METADATA_KEY] == "InvalidArgument"
    assert "sets no operation" in response.results[2].error.message
    assert response.results[3].counter_incr.value == 2

    again = stub.Call(_ops(counter_pb2.CounterIncrRequest(name=b"api-batch-n", delta=2, request_id=request_id),
                           kv_pb2.GetRequest(key=b"api-batch-a")), timeout=CALL_TIMEOUT_S)
    assert again.results[0].counter_incr.value == 2, "a resent request id applies once"
    assert again.results[1].get.kv.value == b"1"


def test_a_call_over_the_op_limit_is_refused_whole(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.Call(_ops(*[kv_pb2.GetRequest(key=b"k")] * (limits.BATCH_OPS_MAX + 1)), timeout=CALL_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "BATCH_OPS_MAX" in caught.value.details()
