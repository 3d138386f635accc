"""The gRPC edge against a fake node: requests are decoded in the handler
(malformed bytes and invalid UTF-8 are INVALID_ARGUMENT saying what is
wrong, counted, never a traceback), every stream holds a slot of
STREAMS_OPEN_MAX (CRDT Subscribe included), health and status keep their
own allowance when the other calls are at CONCURRENT_RPCS_MAX, health
follows the node's readiness, and a keepalive stream the client closes
logs nothing.

Method: a real gRPC server on 127.0.0.1 over `FakeNode`, called with raw
bytes (`channel.unary_unary(path)`) or the generated stubs."""

from __future__ import annotations

import logging
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tandemkv import limits
from tandemkv.server.api import build_server
from tandemkv.server.api.dispatch import LANE_CALLS, LANE_OPERATOR, LANE_PEERS, LANE_STREAMS
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.feeds import Feed
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc, crdt_pb2, crdt_pb2_grpc, kv_pb2, kv_pb2_grpc
from tandemkv.v1 import lease_pb2, lease_pb2_grpc
from tests.support.fuzz import invalid_utf8_cases, rpc_methods
from tests.support.fake_node import FakeStatus

TIMEOUT_S = 5.0
# Longest a test waits for a condition it polls.
WAIT_S = 5.0
POLL_S = 0.01


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        time.sleep(POLL_S)


@pytest.fixture
def started(fake_node):
    server = build_server(fake_node, "127.0.0.1:0", call_threads=2, streams_open_max=2,
                          concurrent_rpcs_max=4)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield server, channel
    finally:
        if fake_node.block is not None:
            fake_node.block.set()
        server.stop(grace_s=0)


@pytest.mark.parametrize("rpc", rpc_methods(), ids=lambda rpc: rpc.path)
def test_malformed_bytes_on_every_rpc_are_invalid_argument_without_a_traceback(started, rpc, caplog):
    server, channel = started
    garbage = b"\x0a\x05ab"  # field 1 declares 5 bytes, 2 follow
    with pytest.raises(grpc.RpcError) as caught:
        if rpc.method.server_streaming:
            call = (channel.stream_stream(rpc.path)(iter([garbage]), timeout=TIMEOUT_S)
                    if rpc.method.client_streaming else channel.unary_stream(rpc.path)(garbage, timeout=TIMEOUT_S))
            next(call)
        else:
            channel.unary_unary(rpc.path)(garbage, timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"not a valid {rpc.method.input_type.full_name}" in caught.value.details()
    assert "declares 5 bytes, 2 remain" in caught.value.details()
    assert server.malformed.by_method == {rpc.path: 1}
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_invalid_utf8_in_a_crdt_table_name_is_invalid_argument_naming_the_field(started, fake_node):
    server, channel = started
    for raw in invalid_utf8_cases(crdt_pb2.CrdtReadRequest.DESCRIPTOR):
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary("/tandemkv.v1.Crdt/Read")(raw, timeout=TIMEOUT_S)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "(table)" in caught.value.details() and "not valid UTF-8" in caught.value.details()
    assert fake_node.calls == []


def test_every_slot_is_given_back_after_calls_streams_and_refusals(started, fake_node):
    server, channel = started
    put = kv_pb2_grpc.KVStub(channel).Put
    for _ in range(20):
        put(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=TIMEOUT_S)
        with pytest.raises(grpc.RpcError):
            channel.unary_unary("/tandemkv.v1.KV/Put")(b"\xff", timeout=TIMEOUT_S)
        cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(), timeout=TIMEOUT_S)
    watches = [channel.unary_stream("/tandemkv.v1.Watch/Watch")(b"", timeout=TIMEOUT_S) for _ in range(3)]
    for watch in watches:
        watch.cancel()
    _wait_until(lambda: all(server.admission.open_count(lane) == 0
                            for lane in (LANE_CALLS, LANE_STREAMS, LANE_OPERATOR)),
                "every lane back to 0 open calls")


class _SubscribablePlane:
    """The part of an AvailablePlane that Subscribe uses: one OR_SET table
    whose changes never come; the stream stays open until stopped."""

    node_name = "fake"

    def __init__(self) -> None:
        self.opened = threading.Semaphore(0)

    def read(self, table):
        return TableKind.OR_SET, []

    def value_feed(self, table, wake, *, shape):
        feed = Feed(wake)
        feed.offer(1, shape(TableKind.OR_SET, [b"first"]))
        self.opened.release()
        return feed

    def status(self):
        raise AssertionError("not used")


def test_unary_calls_waiting_for_their_message_hold_no_slot(started, fake_node):
    # grpcio never runs the handler of a unary call cancelled before its
    # message is read; such calls must not take a slot they cannot give back.
    server, channel = started
    never_sent = threading.Event()

    def no_message():
        never_sent.wait(WAIT_S)
        return
        yield

    put = kv_pb2_grpc.KVStub(channel).Put
    calls = [channel.stream_unary("/tandemkv.v1.KV/Put").future(no_message(), timeout=TIMEOUT_S)
             for _ in range(12)]  # three times the server's concurrent_rpcs_max of 4
    for _ in range(8):  # the server has seen the 12 calls (one connection, in order)
        put(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=TIMEOUT_S)
    for call in calls:
        call.cancel()
    never_sent.set()
    for _ in range(8):
        put(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=TIMEOUT_S)
    _wait_until(lambda: server.admission.open_count(LANE_CALLS) == 0, "no call holding a slot")


def test_crdt_subscriptions_count_against_the_stream_limit_and_other_calls_still_run(started, fake_node):
    server, channel = started
    plane = fake_node.available = _SubscribablePlane()
    crdt = crdt_pb2_grpc.CrdtStub(channel)
    held = [crdt.Subscribe(crdt_pb2.CrdtSubscribeRequest(table="t")) for _ in range(2)]
    for stream in held:
        assert next(stream).values.items == [b"first"]
    assert plane.opened.acquire(timeout=TIMEOUT_S) and plane.opened.acquire(timeout=TIMEOUT_S)
    with pytest.raises(grpc.RpcError) as caught:
        next(crdt.Subscribe(crdt_pb2.CrdtSubscribeRequest(table="t"), timeout=TIMEOUT_S))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "STREAMS_OPEN_MAX=2" in caught.value.details()
    put = kv_pb2_grpc.KVStub(channel).Put(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=TIMEOUT_S)
    assert put.header.revision > 0
    held[0].cancel()
    _wait_until(lambda: server.streams_open < 2, "the cancelled subscription gave its slot back")
    reopened = crdt.Subscribe(crdt_pb2.CrdtSubscribeRequest(table="t"))
    assert next(reopened).values.items == [b"first"]
    reopened.cancel()
    held[1].cancel()


def test_health_and_status_answer_while_other_calls_are_at_the_concurrency_limit(started, fake_node):
    server, channel = started
    fake_node.block = threading.Event()
    stub = kv_pb2_grpc.KVStub(channel)
    pending = [stub.Put.future(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=TIMEOUT_S * 2)
               for _ in range(4)]  # concurrent_rpcs_max=4: two run, two queue for a thread
    for _ in range(2):
        assert fake_node.entered.acquire(timeout=TIMEOUT_S)
    _wait_until(lambda: server.admission.open_count(LANE_CALLS) == 4, "four calls in flight")
    with pytest.raises(grpc.RpcError) as caught:
        stub.Put(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "CONCURRENT_RPCS_MAX=4" in caught.value.details()
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    status = cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(), timeout=TIMEOUT_S)
    assert status.name == "fake"
    fake_node.block.set()
    assert all(p.result(timeout=TIMEOUT_S).header.revision > 0 for p in pending)


def test_status_calls_over_their_own_allowance_are_resource_exhausted(fake_node):
    server = build_server(fake_node, "127.0.0.1:0", operator_rpcs_max=0)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with pytest.raises(grpc.RpcError) as caught:
                cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(), timeout=TIMEOUT_S)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "OPERATOR_RPCS_MAX=0" in caught.value.details()
    finally:
        server.stop(grace_s=0)


@pytest.mark.parametrize("status", [
    FakeStatus(leader=None, role="candidate"), FakeStatus(has_quorum=False), FakeStatus(ready=False),
], ids=["no leader", "no quorum", "catching up"])
def test_health_follows_the_nodes_readiness(started, fake_node, status):
    server, channel = started
    health = health_pb2_grpc.HealthStub(channel)

    def answer(service: str) -> int:
        return health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S).status

    assert answer("") == answer("tandemkv.v1.KV") == health_pb2.HealthCheckResponse.SERVING
    fake_node.status_value = status
    for service in ("", "tandemkv.v1.KV", "tandemkv.v1.Lease", "tandemkv.v1.Watch"):
        _wait_until(lambda: answer(service) == health_pb2.HealthCheckResponse.NOT_SERVING,
                    f"{service!r} NOT_SERVING")
    fake_node.status_value = FakeStatus()
    _wait_until(lambda: answer("") == health_pb2.HealthCheckResponse.SERVING, "'' SERVING again")


def test_health_is_not_serving_once_the_server_stops(fake_node):
    server = build_server(fake_node, "127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        stopping = threading.Thread(target=server.stop, kwargs={"grace_s": 1.0})
        stopping.start()
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        stopping.join(TIMEOUT_S)
    assert not stopping.is_alive()


@pytest.mark.parametrize("close", ["cancel", "end of requests"])
def test_a_keepalive_stream_the_client_closes_logs_nothing_at_error(started, fake_node, caplog, close):
    server, channel = started
    ending = threading.Event()

    def requests():
        yield lease_pb2.LeaseKeepAliveRequest(id=7)
        if close == "cancel":
            ending.wait(TIMEOUT_S)

    with caplog.at_level(logging.INFO):
        responses = lease_pb2_grpc.LeaseStub(channel).KeepAlive(requests())
        assert next(responses) is not None
        if close == "cancel":
            responses.cancel()
            ending.set()
        else:
            assert list(responses) == []
        _wait_until(lambda: server.streams_open == 0 and server.streams.open_count == 0,
                    "the keepalive ended and gave its slot back")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_an_unexpected_error_in_a_keepalive_is_still_logged(started, fake_node, caplog):
    server, channel = started
    fake_node.errors.append(RuntimeError("disk on fire"))
    responses = lease_pb2_grpc.LeaseStub(channel).KeepAlive(iter([lease_pb2.LeaseKeepAliveRequest(id=7)]))
    with pytest.raises(grpc.RpcError) as caught:
        next(responses)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert any(r.levelno >= logging.ERROR and "unexpected error in a stream" in r.getMessage()
               for r in caplog.records)


def test_the_default_limits_are_the_named_ones(fake_node):
    server = build_server(fake_node, "127.0.0.1:0")
    try:
        assert server.admission._limits == {LANE_CALLS: limits.CONCURRENT_RPCS_MAX,
                                            LANE_STREAMS: limits.STREAMS_OPEN_MAX,
                                            LANE_OPERATOR: limits.OPERATOR_RPCS_MAX,
                                            LANE_PEERS: limits.PEER_STREAMS_OPEN_MAX}
        assert len(server.method_paths) == len(rpc_methods()) + 3  # health Check and Watch, reflection
    finally:
        server.stop(grace_s=0)
