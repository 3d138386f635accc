"""The gRPC servicers against a fake node: every bad input and every
internal error becomes its documented status code, limits are enforced
before the node is called, the standard services are present, and
Cluster.Status carries the available plane's gossip view when it runs.

Method: a real gRPC server on 127.0.0.1 over `FakeNode`, called with the
generated stubs; the fake records what reached the node."""

from __future__ import annotations

import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tandemkv import errors, limits
from tandemkv.server.api import build_server
from tandemkv.server.api.edge import LEADER_METADATA_KEY, status_for_error
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc, counter_pb2, counter_pb2_grpc, kv_pb2, kv_pb2_grpc
from tests.support.fake_node import FakeGossipPlane

TIMEOUT_S = 5.0
KEY_OVER = b"k" * (limits.KEY_SIZE_BYTES_MAX + 1)
VALUE_OVER = b"v" * (limits.VALUE_SIZE_BYTES_MAX + 1)

BAD_INPUTS = [
    ("Put", kv_pb2.PutRequest(key=b"", value=b"v"), "KEY_SIZE_BYTES_MAX"),
    ("Put", kv_pb2.PutRequest(key=KEY_OVER, value=b"v"), "KEY_SIZE_BYTES_MAX"),
    ("Put", kv_pb2.PutRequest(key=b"k", value=VALUE_OVER), "VALUE_SIZE_BYTES_MAX"),
    ("Put", kv_pb2.PutRequest(key=b"k", value=b"v", request_id=b"short"), "REQUEST_ID_BYTES"),
    ("Put", kv_pb2.PutRequest(key=b"k", value=b"v", request_id=b"x" * 17), "REQUEST_ID_BYTES"),
    ("Get", kv_pb2.GetRequest(key=b""), "KEY_SIZE_BYTES_MAX"),
    ("Get", kv_pb2.GetRequest(key=b"k", consistency=7), "consistency"),
    ("Range", kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=KEY_OVER, prefix=True)), "KEY_SIZE_BYTES_MAX"),
    ("Delete", kv_pb2.DeleteRequest(range=kv_pb2.KeyRange(key=b"")), "KEY_SIZE_BYTES_MAX"),
    ("Txn", kv_pb2.TxnRequest(success=[kv_pb2.RequestOp(put=kv_pb2.PutRequest(key=b"", value=b""))]), "KEY_SIZE_BYTES_MAX"),
    ("Txn", kv_pb2.TxnRequest(compare=[kv_pb2.Compare(key=b"k", result=9)]), "result"),
    ("Txn", kv_pb2.TxnRequest(success=[kv_pb2.RequestOp()] * (limits.TXN_OPS_MAX + 1)), "TXN_OPS_MAX"),
    ("Incr", counter_pb2.CounterIncrRequest(name=b"", delta=1), "KEY_SIZE_BYTES_MAX"),
    ("Incr", counter_pb2.CounterIncrRequest(name=b"c", request_id=b"1"), "REQUEST_ID_BYTES"),
    ("CounterGet", counter_pb2.CounterGetRequest(name=b"c", consistency=5), "consistency"),
    ("Set", counter_pb2.CounterSetRequest(name=KEY_OVER), "KEY_SIZE_BYTES_MAX"),
]


def call(channel, method: str, request, **kwargs):
    if method == "CounterGet":
        return counter_pb2_grpc.CounterStub(channel).Get(request, **kwargs)
    if isinstance(request, (kv_pb2.PutRequest, kv_pb2.GetRequest, kv_pb2.RangeRequest,
                            kv_pb2.DeleteRequest, kv_pb2.TxnRequest)):
        return getattr(kv_pb2_grpc.KVStub(channel), method)(request, **kwargs)
    return getattr(counter_pb2_grpc.CounterStub(channel), method)(request, **kwargs)


@pytest.mark.parametrize("method,request_message,named", BAD_INPUTS)
def test_bad_input_is_invalid_argument_naming_the_limit_and_never_reaches_the_node(
    channel, fake_node, method, request_message, named
):
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, method, request_message, timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in caught.value.details()
    assert fake_node.calls == []


ERRORS = [
    (errors.InvalidArgument("bad", limit="X"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.FailedPrecondition("wrong type"), grpc.StatusCode.FAILED_PRECONDITION),
    (errors.OutOfRange("overflow"), grpc.StatusCode.OUT_OF_RANGE),
    (errors.NotFound("none"), grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists("taken"), grpc.StatusCode.ALREADY_EXISTS),
    (errors.Unavailable("no leader"), grpc.StatusCode.UNAVAILABLE),
    (errors.OutcomeUnknown("timed out", request_id=b"r" * 16), grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.ResourceExhausted("map full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unauthenticated("who"), grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied("no"), grpc.StatusCode.PERMISSION_DENIED),
    (RuntimeError("secret internals"), grpc.StatusCode.INTERNAL),
]


@pytest.mark.parametrize("error,code", ERRORS, ids=[type(e).__name__ for e, _ in ERRORS])
def test_each_node_error_maps_to_its_status_code(channel, fake_node, error, code):
    fake_node.errors.append(error)
    with pytest.raises(grpc.RpcError) as caught:
        kv_pb2_grpc.KVStub(channel).Put(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=TIMEOUT_S)
    assert caught.value.code() == code
    if isinstance(error, errors.TandemKVError):
        assert caught.value.details().startswith(error.message)
    else:
        assert "secret internals" not in caught.value.details()


def test_the_error_table_gives_every_tandemkv_error_its_own_code():
    codes = {status_for_error(error)[0] for error, _ in ERRORS}
    assert len(codes) == len(ERRORS)


def test_unavailable_carries_the_leader_hint_in_trailing_metadata(channel, fake_node):
    fake_node.errors.append(errors.Unavailable("not the leader", leader_hint="127.0.0.1:9999"))
    with pytest.raises(grpc.RpcError) as caught:
        counter_pb2_grpc.CounterStub(channel).Incr(counter_pb2.CounterIncrRequest(name=b"c"), timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (LEADER_METADATA_KEY, "127.0.0.1:9999") in tuple(caught.value.trailing_metadata())


def test_a_spent_deadline_is_deadline_exceeded_with_nothing_proposed(channel, fake_node):
    for timeout_s in (0.0, limits.DEADLINE_S_MIN / 5):
        with pytest.raises(grpc.RpcError) as caught:
            kv_pb2_grpc.KVStub(channel).Put(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=timeout_s)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert fake_node.calls == []


def test_a_call_without_deadline_gets_the_server_cap(channel, fake_node):
    kv_pb2_grpc.KVStub(channel).Put(kv_pb2.PutRequest(key=b"k", value=b"v"))
    assert 0 < fake_node.calls[0].timeout_s <= limits.DEADLINE_S_MAX
    assert fake_node.calls[0].timeout_s > limits.DEADLINE_S_MAX - 1


def test_the_node_gets_less_time_than_the_caller(channel, fake_node):
    kv_pb2_grpc.KVStub(channel).Get(kv_pb2.GetRequest(key=b"k"), timeout=2.0)
    assert fake_node.calls[0].kind == "query"
    assert 1.0 < fake_node.calls[0].timeout_s < 2.0


def test_writes_propose_and_reads_query(channel, fake_node):
    kv = kv_pb2_grpc.KVStub(channel)
    counter = counter_pb2_grpc.CounterStub(channel)
    kv.Put(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=TIMEOUT_S)
    assert kv.Get(kv_pb2.GetRequest(key=b"k"), timeout=TIMEOUT_S).kv.value == b"v"
    kv.Range(kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"", prefix=True)), timeout=TIMEOUT_S)
    kv.Delete(kv_pb2.DeleteRequest(range=kv_pb2.KeyRange(key=b"k")), timeout=TIMEOUT_S)
    kv.Txn(kv_pb2.TxnRequest(), timeout=TIMEOUT_S)
    assert counter.Incr(counter_pb2.CounterIncrRequest(name=b"c", delta=2), timeout=TIMEOUT_S).value == 2
    counter.Get(counter_pb2.CounterGetRequest(name=b"c"), timeout=TIMEOUT_S)
    counter.Set(counter_pb2.CounterSetRequest(name=b"c", value=5), timeout=TIMEOUT_S)
    counter.CompareAndSet(counter_pb2.CounterCompareAndSetRequest(name=b"c", expected=5, value=6), timeout=TIMEOUT_S)
    counter.Delete(counter_pb2.CounterDeleteRequest(name=b"c"), timeout=TIMEOUT_S)
    kinds = [c.kind for c in fake_node.calls]
    assert kinds == ["propose", "query", "query", "propose", "propose",
                     "propose", "query", "propose", "propose", "propose"]


def test_cluster_status_and_members_come_from_node_status(channel):
    cluster = cluster_pb2_grpc.ClusterStub(channel)
    status = cluster.Status(cluster_pb2.StatusRequest(), timeout=TIMEOUT_S)
    assert (status.name, status.role, status.term, status.ready) == ("fake", cluster_pb2.LEADER, 3, True)
    members = cluster.Members(cluster_pb2.MembersRequest(), timeout=TIMEOUT_S).members
    assert [m.name for m in members] == ["fake"]


def test_cluster_status_carries_the_gossip_view_of_the_available_plane(channel, fake_node):
    fake_node.available = FakeGossipPlane()
    status = cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(), timeout=TIMEOUT_S)
    assert status.gossip_running and status.gossip_round == 12
    assert [(p.name, p.state, p.rounds_silent, p.heartbeat_ms) for p in status.gossip_peers] == [
        ("n2", cluster_pb2.GOSSIP_PEER_ALIVE, 0, 1_700_000_011_000),
        ("n3", cluster_pb2.GOSSIP_PEER_SUSPECT, 4, 1_700_000_007_000),
        ("n4", cluster_pb2.GOSSIP_PEER_DEAD, 12, 0),
    ]
    assert dict(status.gossip_rejected) == {"bad_mac": 2, "clock_drift": 1}


@pytest.mark.parametrize("plane", [None, FakeGossipPlane(running=False)], ids=["absent", "stopped"])
def test_cluster_status_without_a_running_plane_answers_raft_state_only(channel, fake_node, plane):
    fake_node.available = plane
    status = cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(), timeout=TIMEOUT_S)
    assert (status.name, status.role, status.term) == ("fake", cluster_pb2.LEADER, 3)
    assert not status.gossip_running and status.gossip_round == 0
    assert not status.gossip_peers and not status.gossip_rejected


def test_health_reports_serving_for_every_service(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tandemkv.v1.KV", "tandemkv.v1.Counter", "tandemkv.v1.Cluster"):
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                        timeout=TIMEOUT_S)
    names = {s.name for answer in answers for s in answer.list_services_response.service}
    assert {"tandemkv.v1.KV", "tandemkv.v1.Counter", "tandemkv.v1.Cluster"} <= names


def test_calls_over_the_concurrency_limit_are_resource_exhausted(fake_node):
    fake_node.block = threading.Event()
    server = build_server(fake_node, "127.0.0.1:0", call_threads=4, concurrent_rpcs_max=2)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = kv_pb2_grpc.KVStub(channel)
            pending = [stub.Put.future(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=TIMEOUT_S)
                       for _ in range(2)]
            for _ in range(2):
                assert fake_node.entered.acquire(timeout=TIMEOUT_S)
            with pytest.raises(grpc.RpcError) as caught:
                stub.Put(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=TIMEOUT_S)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            fake_node.block.set()
            assert all(p.result(timeout=TIMEOUT_S).header.revision > 0 for p in pending)
    finally:
        fake_node.block.set()
        server.stop(grace_s=0)


def test_messages_over_the_size_limit_are_refused(channel, fake_node):
    with pytest.raises(grpc.RpcError) as caught:
        kv_pb2_grpc.KVStub(channel).Put(
            kv_pb2.PutRequest(key=b"k", value=b"v" * (limits.GRPC_MESSAGE_BYTES_MAX + 1)), timeout=TIMEOUT_S
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake_node.calls == []
