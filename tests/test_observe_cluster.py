"""The observability port of `tandemkv serve` processes: a 3-node cluster
started with `http_address` and `log_format = "json"`.

- A scrape after a known workload shows it: N puts through one node are
  N more KV.Put calls with code OK on that node's /metrics.
- Logs: every line a node writes is a JSON event (or one of serve's own
  lines on stdout), tagged with the node's name; lease holders that close
  their keepalive streams normally leave no ERROR event and no traceback.
- Readiness: with two of three nodes stopped, the remaining (minority)
  node's /readyz answers 503 with the reason and its gRPC health
  NOT_SERVING within MINORITY_NOT_READY_S; with both back, 200 and
  SERVING again within RECOVERY_S, and its leader-change counter has
  counted the changes.
Every wait is a polled deadline; the harness stops every process.
"""

from __future__ import annotations

import json
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tandemkv.client import Client
from tests.support.cluster import ServeCluster
from tests.support.observed import get, observe, wait_for_status

START_TIMEOUT_S = 120.0
# A minority node notices it has lost its quorum after the Raft timeouts
# (pysyncobj's leader fallback, ~3 s by default) plus the health follower's poll.
MINORITY_NOT_READY_S = 30.0
RECOVERY_S = 90.0
POLL_S = 0.1


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = ServeCluster(tmp_path_factory.mktemp("observed"), nodes=3)
    cluster.urls = observe(cluster, log_format="json")
    with cluster:
        cluster.wait_for_leader(START_TIMEOUT_S)
        yield cluster


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    status, text = get(url + "/metrics")
    assert status == 200, text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def puts_ok(url: str) -> float:
    labels = tuple(sorted({"service": "tandemkv.v1.KV", "method": "Put", "code": "OK"}.items()))
    return scrape(url).get(("tandemkv_grpc_server_handled_total", labels), 0.0)


def health_of(endpoint: str) -> int:
    with grpc.insecure_channel(endpoint) as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        except grpc.RpcError:
            return health_pb2.HealthCheckResponse.UNKNOWN


def test_n_puts_are_n_more_kv_put_calls_on_the_leaders_metrics(cluster):
    name = cluster.wait_for_leader(START_TIMEOUT_S)  # a client sends writes to the leader
    before = puts_ok(cluster.urls[name])
    with Client([cluster.endpoint(name)]) as client:
        for k in range(10):
            client.put(f"scraped-{k}".encode(), b"v")
    # A call is counted in its done callback, which may run after the client has its answer.
    deadline = time.monotonic() + MINORITY_NOT_READY_S
    while puts_ok(cluster.urls[name]) < before + 10 and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert puts_ok(cluster.urls[name]) == before + 10


def test_logs_are_json_events_tagged_with_the_node_and_closed_keepalives_are_no_errors(cluster):
    with Client(cluster.endpoints) as client:
        for k in range(3):  # idle holders: a keepalive stream each, closed normally at the end
            with client.registry.hold(f"holder-{k}".encode(), b"v", ttl=2):
                client.put(b"while-held", b"v")
    # A status round on every node: the holders' stream ends were served before it.
    cluster.wait_for_leader(START_TIMEOUT_S)
    for member in cluster.members:
        lines = cluster.log_path(member.name).read_text().splitlines()
        events = [json.loads(line) for line in lines if not line.startswith("tandemkv: ")]
        assert events, f"{member.name} logged nothing"
        assert {e["node"] for e in events} == {member.name}, f"see {cluster.log_path(member.name)}"
        assert all({"ts", "level", "logger", "message"} <= set(e) for e in events)
        errors = [e for e in events if e["level"] in ("ERROR", "CRITICAL") or "exception" in e]
        assert not errors, f"{member.name}: {errors[:3]}"


def test_readyz_is_503_on_a_minority_node_and_200_after_the_others_return(cluster):
    leader = cluster.wait_for_leader(START_TIMEOUT_S)
    survivor = next(m.name for m in cluster.members if m.name != leader)
    stopped = [m.name for m in cluster.members if m.name != survivor]
    url = cluster.urls[survivor]
    assert get(url + "/readyz") == (200, "ok\n")
    for name in stopped:
        assert cluster.stop_node(name) == 0
    body = wait_for_status(url + "/readyz", 503, MINORITY_NOT_READY_S)
    assert body.startswith("not ready: ") and ("no leader" in body or "no quorum" in body), body
    assert get(url + "/livez") == (200, "ok\n")
    deadline = time.monotonic() + MINORITY_NOT_READY_S
    while health_of(cluster.endpoint(survivor)) != health_pb2.HealthCheckResponse.NOT_SERVING:
        assert time.monotonic() < deadline, "gRPC health still SERVING on a minority node"
        time.sleep(POLL_S)
    for name in stopped:
        cluster.restart(name)
    wait_for_status(url + "/readyz", 200, RECOVERY_S)
    deadline = time.monotonic() + RECOVERY_S  # the health follower polls on its own
    while health_of(cluster.endpoint(survivor)) != health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() < deadline, "gRPC health not SERVING again after the others returned"
        time.sleep(POLL_S)
    assert scrape(url)[("tandemkv_raft_leader_changes_total", ())] >= 1
