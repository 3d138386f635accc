"""The Lease, Registry, Lock, Election and Watch servicers against a fake
node: bad input is INVALID_ARGUMENT naming its limit before the node is
called, waits are cut to the call's deadline, a taken name answers OK with
the owner, and streams end when the client goes away or the server stops.

Method: a real gRPC server on 127.0.0.1 over `FakeNode`, called with the
generated stubs; the fake records what reached the node."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tandemkv import limits
from tandemkv.server.api import build_server
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import coordination_pb2_grpc, kv_pb2, lease_pb2, lease_pb2_grpc, watch_pb2, watch_pb2_grpc

TIMEOUT_S = 5.0
NEW_SERVICES = ("tandemkv.v1.Lease", "tandemkv.v1.Registry", "tandemkv.v1.Lock",
                "tandemkv.v1.Election", "tandemkv.v1.Watch")
KEY_OVER = b"k" * (limits.KEY_SIZE_BYTES_MAX + 1)

BAD_INPUTS = [
    ("Lease", "Grant", lease_pb2.LeaseGrantRequest(ttl_ms=0), "LEASE_TTL_MS_MIN"),
    ("Lease", "Grant", lease_pb2.LeaseGrantRequest(ttl_ms=limits.LEASE_TTL_MS_MIN - 1), "LEASE_TTL_MS_MIN"),
    ("Lease", "Grant", lease_pb2.LeaseGrantRequest(ttl_ms=limits.LEASE_TTL_MS_MAX + 1), "LEASE_TTL_MS_MAX"),
    ("Lease", "Revoke", lease_pb2.LeaseRevokeRequest(id=0), "lease id is required"),
    ("Lease", "TimeToLive", lease_pb2.LeaseTimeToLiveRequest(id=0), "lease id is required"),
    ("Registry", "Register", co.RegisterRequest(name=b"", value=b"v", lease=1), "KEY_SIZE_BYTES_MAX"),
    ("Registry", "Register", co.RegisterRequest(name=KEY_OVER, value=b"v", lease=1), "KEY_SIZE_BYTES_MAX"),
    ("Registry", "Register", co.RegisterRequest(name=b"n", value=b"v", lease=0), "lease id is required"),
    ("Registry", "Register", co.RegisterRequest(name=b"n", lease=1, request_id=b"x"), "REQUEST_ID_BYTES"),
    ("Registry", "Whereis", co.WhereisRequest(name=b""), "KEY_SIZE_BYTES_MAX"),
    ("Registry", "Unregister", co.UnregisterRequest(name=b""), "KEY_SIZE_BYTES_MAX"),
    ("Registry", "List", co.RegistryListRequest(consistency=9), "consistency"),
    ("Lock", "Acquire", co.LockAcquireRequest(name=b"", lease=1), "KEY_SIZE_BYTES_MAX"),
    ("Lock", "Acquire", co.LockAcquireRequest(name=b"l", lease=0), "lease id is required"),
    ("Lock", "Acquire", co.LockAcquireRequest(name=b"l", lease=1, wait_ms=-1), "CLAIM_WAIT_MS_MAX"),
    ("Lock", "Acquire", co.LockAcquireRequest(name=b"l", lease=1, wait_ms=limits.CLAIM_WAIT_MS_MAX + 1),
     "CLAIM_WAIT_MS_MAX"),
    ("Lock", "Release", co.LockReleaseRequest(name=b""), "KEY_SIZE_BYTES_MAX"),
    ("Election", "Campaign", co.CampaignRequest(election=b"", lease=1), "KEY_SIZE_BYTES_MAX"),
    ("Election", "Campaign", co.CampaignRequest(election=b"e", lease=0), "lease id is required"),
    ("Election", "Campaign", co.CampaignRequest(election=b"e", lease=1, wait_ms=-5), "CLAIM_WAIT_MS_MAX"),
    ("Election", "Proclaim", co.ProclaimRequest(election=b""), "KEY_SIZE_BYTES_MAX"),
    ("Election", "Leader", co.LeaderRequest(election=b""), "KEY_SIZE_BYTES_MAX"),
]

STUBS = {"Lease": lease_pb2_grpc.LeaseStub, "Registry": coordination_pb2_grpc.RegistryStub,
         "Lock": coordination_pb2_grpc.LockStub, "Election": coordination_pb2_grpc.ElectionStub,
         "Watch": watch_pb2_grpc.WatchStub}


def stub(channel, service):
    return STUBS[service](channel)


@pytest.mark.parametrize("service,method,request_message,named", BAD_INPUTS,
                         ids=[f"{s}.{m}-{n}" for s, m, _, n in BAD_INPUTS])
def test_bad_input_is_invalid_argument_naming_the_limit_and_never_reaches_the_node(
        channel, fake_node, service, method, request_message, named):
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub(channel, service), method)(request_message, timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in caught.value.details()
    assert fake_node.calls == []


STREAM_BAD_INPUTS = [
    ("Watch", "Watch", watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=b"")), "KEY_SIZE_BYTES_MAX"),
    ("Watch", "Watch", watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=b"a", prefix=True, range_end=b"b")),
     "prefix or range_end"),
    ("Watch", "Watch", watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=b"a"), progress_interval_ms=-1),
     "progress_interval_ms"),
    ("Election", "Observe", co.LeaderRequest(election=b""), "KEY_SIZE_BYTES_MAX"),
]


@pytest.mark.parametrize("service,method,request_message,named", STREAM_BAD_INPUTS,
                         ids=[f"{s}.{m}-{n}" for s, m, _, n in STREAM_BAD_INPUTS])
def test_a_bad_stream_request_ends_the_stream_with_invalid_argument(
        channel, fake_node, service, method, request_message, named):
    with pytest.raises(grpc.RpcError) as caught:
        list(getattr(stub(channel, service), method)(request_message, timeout=TIMEOUT_S))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in caught.value.details()
    assert fake_node.calls == []


def test_a_keepalive_with_no_lease_id_ends_the_stream_with_invalid_argument(channel, fake_node):
    responses = stub(channel, "Lease").KeepAlive(iter([lease_pb2.LeaseKeepAliveRequest(id=0)]),
                                                 timeout=TIMEOUT_S)
    with pytest.raises(grpc.RpcError) as caught:
        list(responses)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fake_node.calls == []


def test_keepalive_answers_each_request_in_order(channel, fake_node):
    requests = [lease_pb2.LeaseKeepAliveRequest(id=n) for n in (7, 8, 9)]
    responses = list(stub(channel, "Lease").KeepAlive(iter(requests), timeout=TIMEOUT_S))
    assert [r.id for r in responses] == [7, 8, 9] and all(r.found for r in responses)
    assert [c.kind for c in fake_node.calls] == ["propose"] * 3


def test_a_taken_name_answers_ok_with_the_owner_and_its_token(channel, fake_node):
    registry = stub(channel, "Registry")
    first = registry.Register(co.RegisterRequest(name=b"svc", value=b"a", lease=1), timeout=TIMEOUT_S)
    second = registry.Register(co.RegisterRequest(name=b"svc", value=b"b", lease=2), timeout=TIMEOUT_S)
    assert first.registered and not second.registered
    assert (second.claim.value, second.claim.token) == (b"a", first.claim.token)


@pytest.mark.parametrize("service,method,request_message", [
    ("Lock", "Acquire", co.LockAcquireRequest(name=b"l", lease=1, wait_ms=limits.CLAIM_WAIT_MS_MAX)),
    ("Election", "Campaign", co.CampaignRequest(election=b"e", lease=1, wait_ms=limits.CLAIM_WAIT_MS_MAX)),
])
def test_a_wait_is_cut_to_end_before_the_call_deadline(channel, fake_node, service, method, request_message):
    getattr(stub(channel, service), method)(request_message, timeout=2.0)
    (call,) = fake_node.calls
    assert 0 < call.request.wait_ms < 2000
    assert call.request.wait_ms / 1000 + 2 * call.timeout_s <= 2.0


def test_a_wait_without_a_call_deadline_is_kept_under_the_server_cap(channel, fake_node):
    stub(channel, "Lock").Acquire(co.LockAcquireRequest(name=b"l", lease=1, wait_ms=1000))
    assert fake_node.calls[0].request.wait_ms == 1000


def test_a_watch_relays_the_node_stream_and_stops_it_when_the_client_cancels(channel, fake_node):
    fake_node.stream_responses = [watch_pb2.WatchResponse(progress=True)]
    responses = stub(channel, "Watch").Watch(
        watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=b"a", prefix=True)))  # no deadline
    assert next(responses).progress
    responses.cancel()
    assert fake_node.stops[0].wait(TIMEOUT_S), "the node's watch was not told to stop"


def test_an_observe_stops_when_its_deadline_passes(channel, fake_node):
    responses = stub(channel, "Election").Observe(co.LeaderRequest(election=b"e"), timeout=0.5)
    with pytest.raises(grpc.RpcError) as caught:
        list(responses)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert fake_node.stops[0].wait(TIMEOUT_S)


def test_a_stopping_server_ends_open_streams_at_once(fake_node):
    server = build_server(fake_node, "127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            responses = stub(channel, "Watch").Watch(
                watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=b"a", prefix=True)))
            assert fake_node.stream_opened.acquire(timeout=TIMEOUT_S)
            server.streams.stop_all()
            assert fake_node.stops[0].wait(TIMEOUT_S)
            assert list(responses) == []  # ended cleanly, not by the grace period
    finally:
        server.stop(grace_s=0)


def test_health_and_reflection_list_the_new_services(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in NEW_SERVICES:
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT_S)
    names = {s.name for answer in answers for s in answer.list_services_response.service}
    assert set(NEW_SERVICES) <= names


def test_streams_beyond_the_limit_get_resource_exhausted_and_never_starve_other_calls(fake_node):
    # Two stream slots and one thread for every other call: with both slots
    # held, a third stream is refused at once and a unary call still runs.
    server = build_server(fake_node, "127.0.0.1:0", call_threads=1, streams_open_max=2)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            watch = watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=b"a", prefix=True))
            held = [stub(channel, "Watch").Watch(watch) for _ in range(2)]
            for _ in held:
                assert fake_node.stream_opened.acquire(timeout=TIMEOUT_S)
            with pytest.raises(grpc.RpcError) as caught:
                next(stub(channel, "Watch").Watch(watch, timeout=TIMEOUT_S))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "STREAMS_OPEN_MAX=2" in caught.value.details()
            granted = stub(channel, "Lease").Grant(lease_pb2.LeaseGrantRequest(ttl_ms=limits.LEASE_TTL_MS_MIN),
                                                   timeout=TIMEOUT_S)
            assert granted.ttl_ms == limits.LEASE_TTL_MS_MIN
            held[0].cancel()  # a freed slot takes a new stream
            deadline = time.monotonic() + TIMEOUT_S
            while server.streams_open > 1:
                assert time.monotonic() < deadline, "the cancelled stream kept its slot"
                time.sleep(0.01)
            reopened = stub(channel, "Watch").Watch(watch)
            assert fake_node.stream_opened.acquire(timeout=TIMEOUT_S)
            reopened.cancel()
            held[1].cancel()
    finally:
        server.stop(grace_s=0)
