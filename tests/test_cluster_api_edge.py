"""The gRPC edge of real nodes (`tandemkv serve` processes on 127.0.0.1):

- malformed request bytes get INVALID_ARGUMENT, the node logs no traceback
  and its memory does not grow with them;
- every stream, CRDT subscriptions included, holds a slot of
  STREAMS_OPEN_MAX: one more is RESOURCE_EXHAUSTED and other calls go on;
- with CONCURRENT_RPCS_MAX calls in flight, health checks and
  Cluster.Status still answer (OPERATOR_RPCS_MAX of their own);
- health follows readiness: a node left without a quorum turns NOT_SERVING
  and SERVING again once its peers are back;
- lease keepalives the SDK closes normally leave no ERROR in the log.

Small limits (`ServeCluster(limits=...)`) make the limits reachable.
"""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tandemkv.client import NO_RETRY, Client
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc, coordination_pb2, coordination_pb2_grpc
from tandemkv.v1 import crdt_pb2, crdt_pb2_grpc, kv_pb2, kv_pb2_grpc, lease_pb2, lease_pb2_grpc
from tests.support.cluster import ServeCluster, rss_bytes
from tests.support.fuzz import invalid_utf8_cases, rpc_methods

STREAMS_OPEN_MAX = 4
CONCURRENT_RPCS_MAX = 8
LEADER_TIMEOUT_S = 60
CALL_TIMEOUT_S = 10
# Bounds on how long health may take to follow: Raft notices a lost quorum
# within its election timeouts and leaderFallbackTimeout, and the health
# follower polls every HEALTH_POLL_INTERVAL_S.
NOT_SERVING_WAIT_S = 30
SERVING_AGAIN_WAIT_S = 60
POLL_S = 0.1
MALFORMED_REQUESTS = 3000
# RSS the malformed requests may add to a node (they used to leak ~19 KB each).
MALFORMED_RSS_GROWTH_BYTES_MAX = 20 << 20



@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    limits = {"STREAMS_OPEN_MAX": STREAMS_OPEN_MAX, "CONCURRENT_RPCS_MAX": CONCURRENT_RPCS_MAX}
    with ServeCluster(tmp_path_factory.mktemp("edge"), limits=limits) as started:
        started.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
        yield started


def _health(channel, service: str = "") -> int:
    return health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_S).status


def _wait_health(channel, wanted: int, within_s: float, services=("", "tandemkv.v1.KV")) -> None:
    deadline = time.monotonic() + within_s
    while True:
        try:
            if all(_health(channel, s) == wanted for s in services):
                return
        except grpc.RpcError:
            pass
        assert time.monotonic() < deadline, f"health not {wanted} within {within_s} s"
        time.sleep(POLL_S)


def _no_errors_in_logs(cluster: ServeCluster) -> None:
    for name in cluster.processes:
        log = cluster.log_path(name).read_text(errors="replace")
        assert "Traceback" not in log and " ERROR " not in log, f"see {cluster.log_path(name)}"


def test_malformed_requests_are_invalid_argument_without_traceback_or_memory_growth(cluster):
    pid = cluster.processes["n1"].pid
    rpcs = [rpc for rpc in rpc_methods() if not rpc.streaming]
    cases = [(rpc.path, raw) for rpc in rpcs
             for raw in (b"\x0f", b"\x0a\x09short", *invalid_utf8_cases(rpc.method.input_type))]
    with grpc.insecure_channel(cluster.endpoint("n1")) as channel:
        def send(k: int) -> grpc.StatusCode:
            path, raw = cases[k % len(cases)]
            try:
                channel.unary_unary(path)(raw, timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as error:
                return error.code()
            return grpc.StatusCode.OK
        for k in range(len(cases)):
            assert send(k) == grpc.StatusCode.INVALID_ARGUMENT, cases[k]
        rss_start = rss_bytes(pid)
        codes = {send(k) for k in range(MALFORMED_REQUESTS)}
        grown = rss_bytes(pid) - rss_start
    assert codes == {grpc.StatusCode.INVALID_ARGUMENT}
    assert grown < MALFORMED_RSS_GROWTH_BYTES_MAX, f"n1 grew {grown >> 20} MiB"
    log = cluster.log_path("n1").read_text(errors="replace")
    assert "Traceback" not in log and log.count("malformed request(s)") <= 2


def test_every_stream_holds_a_slot_and_other_calls_go_on_at_the_limit(cluster):
    with Client(cluster.endpoints, retry=NO_RETRY) as client:
        client.crdt.set("edge-subscribed").add(b"x")
    with grpc.insecure_channel(cluster.endpoint("n2")) as channel:
        crdt = crdt_pb2_grpc.CrdtStub(channel)
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:  # n2 learns of the table through the replicated catalog
            try:
                crdt.Read(crdt_pb2.CrdtReadRequest(table="edge-subscribed"), timeout=CALL_TIMEOUT_S)
                break
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND and time.monotonic() < deadline
                time.sleep(POLL_S)
        subscribe = crdt_pb2.CrdtSubscribeRequest(table="edge-subscribed")
        held = [crdt.Subscribe(subscribe, timeout=60) for _ in range(STREAMS_OPEN_MAX)]
        for stream in held:
            assert next(stream).table == "edge-subscribed"
        with pytest.raises(grpc.RpcError) as refused:
            next(crdt.Subscribe(subscribe, timeout=CALL_TIMEOUT_S))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"STREAMS_OPEN_MAX={STREAMS_OPEN_MAX}" in refused.value.details()
        kv = kv_pb2_grpc.KVStub(channel)
        assert kv.Put(kv_pb2.PutRequest(key=b"edge", value=b"v"), timeout=CALL_TIMEOUT_S).header.revision
        assert kv.Get(kv_pb2.GetRequest(key=b"edge"), timeout=CALL_TIMEOUT_S).kv.value == b"v"
        assert cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(),
                                                            timeout=CALL_TIMEOUT_S).name == "n2"
        for stream in held:
            stream.cancel()


def test_health_and_status_answer_while_calls_are_at_the_concurrency_limit(cluster):
    with grpc.insecure_channel(cluster.endpoint("n3")) as channel:
        lease = lease_pb2_grpc.LeaseStub(channel).Grant(lease_pb2.LeaseGrantRequest(ttl_ms=60_000),
                                                        timeout=CALL_TIMEOUT_S).id
        other = lease_pb2_grpc.LeaseStub(channel).Grant(lease_pb2.LeaseGrantRequest(ttl_ms=60_000),
                                                        timeout=CALL_TIMEOUT_S).id
        lock = coordination_pb2_grpc.LockStub(channel)
        assert lock.Acquire(coordination_pb2.LockAcquireRequest(name=b"edge-lock", lease=lease),
                            timeout=CALL_TIMEOUT_S).acquired
        waiting = coordination_pb2.LockAcquireRequest(name=b"edge-lock", lease=other, wait_ms=25_000)
        held = [lock.Acquire.future(waiting, timeout=30) for _ in range(CONCURRENT_RPCS_MAX)]
        try:
            deadline = time.monotonic() + CALL_TIMEOUT_S
            while True:  # until every call slot is held by a waiting acquire
                try:
                    kv_pb2_grpc.KVStub(channel).Get(kv_pb2.GetRequest(key=b"edge"), timeout=CALL_TIMEOUT_S)
                except grpc.RpcError as error:
                    refused = error
                    break
                assert time.monotonic() < deadline, "the waiting acquires never filled the call slots"
                time.sleep(POLL_S)
            assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert f"CONCURRENT_RPCS_MAX={CONCURRENT_RPCS_MAX}" in refused.details()
            assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
            status = cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(),
                                                                  timeout=CALL_TIMEOUT_S)
            assert status.name == "n3" and status.ready
        finally:
            for call in held:
                call.cancel()
    with grpc.insecure_channel(cluster.endpoint("n1")) as channel:  # n3's slots free as the waits end
        for lease_id in (lease, other):
            lease_pb2_grpc.LeaseStub(channel).Revoke(lease_pb2.LeaseRevokeRequest(id=lease_id),
                                                     timeout=CALL_TIMEOUT_S)


def test_lease_keepalives_the_client_closes_log_nothing_at_error(cluster):
    with Client(cluster.endpoints, retry=NO_RETRY) as client:
        for _ in range(3):
            with client.lease(3) as lease:
                for _ in range(3):
                    assert lease.keepalive() > 0
    _no_errors_in_logs(cluster)


@pytest.mark.parametrize("reuse", [
    "Grant", "Delete", "Campaign"])
def test_a_request_id_reused_by_a_different_request_is_invalid_argument(cluster, reuse):
    request_id = reuse.encode().ljust(16, b"-")
    with grpc.insecure_channel(cluster.endpoint("n1")) as channel:
        kv_pb2_grpc.KVStub(channel).Put(kv_pb2.PutRequest(key=b"reused", value=b"v", request_id=request_id),
                                        timeout=CALL_TIMEOUT_S)
        calls = {
            "Grant": lambda: lease_pb2_grpc.LeaseStub(channel).Grant(
                lease_pb2.LeaseGrantRequest(ttl_ms=60_000, request_id=request_id), timeout=CALL_TIMEOUT_S),
            "Delete": lambda: kv_pb2_grpc.KVStub(channel).Delete(
                kv_pb2.DeleteRequest(range=kv_pb2.KeyRange(key=b"reused"), request_id=request_id),
                timeout=CALL_TIMEOUT_S),
            "Campaign": lambda: coordination_pb2_grpc.ElectionStub(channel).Campaign(
                coordination_pb2.CampaignRequest(election=b"reused", lease=1, request_id=request_id),
                timeout=CALL_TIMEOUT_S),
        }
        with pytest.raises(grpc.RpcError) as refused:
            calls[reuse]()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
        assert "request_id was already used by a different request" in refused.value.details()


@pytest.mark.parametrize("survivor_role", ["leader", "follower"])
def test_health_follows_readiness_when_a_node_loses_its_quorum_and_regains_it(cluster, survivor_role):
    leader = cluster.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
    names = sorted(cluster.processes)
    survivor = leader if survivor_role == "leader" else next(n for n in names if n != leader)
    others = [n for n in names if n != survivor]
    with grpc.insecure_channel(cluster.endpoint(survivor)) as channel:
        _wait_health(channel, health_pb2.HealthCheckResponse.SERVING, SERVING_AGAIN_WAIT_S)
        for name in others:
            assert cluster.stop_node(name) == 0
        _wait_health(channel, health_pb2.HealthCheckResponse.NOT_SERVING, NOT_SERVING_WAIT_S,
                     services=("", "tandemkv.v1.KV", "tandemkv.v1.Lease", "tandemkv.v1.Cluster"))
        # CRDT tables stay writable without a quorum, and their health says so.
        assert _health(channel, "tandemkv.v1.Crdt") == health_pb2.HealthCheckResponse.SERVING
        for name in others:
            cluster.restart(name)
        _wait_health(channel, health_pb2.HealthCheckResponse.SERVING, SERVING_AGAIN_WAIT_S)
    cluster.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
