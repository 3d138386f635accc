"""A node's observability port in-process: a scrape of `/metrics` after a
known workload shows the counts that workload caused; `/livez`,
`/readyz`, `/api/cluster` and `/dashboard` answer; the JSON and text log
formats tag each event with the node's name and the request id.

Method: one embedded node (fast Raft timings) with its gRPC server built
with the port's RPC observer and the port on a free loopback port, as
`tandemkv serve --http-address` runs them; the SDK makes the calls; scrapes
are parsed with prometheus-client's own parser. Every wait is a polled
deadline; the node, server and port are stopped at the end.
"""

from __future__ import annotations

import io
import json
import logging
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tandemkv.client import Client
from tandemkv.server import Member, Node, NodeConfig
from tandemkv.server.api import build_server
from tandemkv.server.observe import logs
from tandemkv.server.observe.context import REQUEST_ID, TAGS
from tandemkv.server.observe.http import ObservePort
from tests.support.ports import free_ports
from tests.test_embedded_node import FAST, READY_S

HTTP_TIMEOUT_S = 10.0
WAIT_S = 30.0


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    raft_port, client_port = free_ports(2)
    member = Member("m1", f"127.0.0.1:{raft_port}", f"127.0.0.1:{client_port}")
    node = Node(NodeConfig(name="m1", data_dir=tmp_path_factory.mktemp("observe") / "m1",
                           raft_address=member.raft_address, client_address=member.client_address,
                           peers=(member,), timings=FAST))
    port = ObservePort(node, "127.0.0.1:0")
    port.bind()
    server = build_server(node, member.client_address, observer=port.rpc_observer)
    node.start()
    server.start()
    port.follow_server(lambda: {"streams": server.streams_open})
    port.start()
    try:
        node.wait_ready(READY_S)
        yield node, port, member.client_address
    finally:
        port.stop()
        server.stop()
        node.stop()


def get(port: ObservePort, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port.port}{path}", timeout=HTTP_TIMEOUT_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(port: ObservePort) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    status, text = get(port, "/metrics")
    assert status == 200, text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def settled(port: ObservePort, condition) -> dict:
    """A scrape for which `condition` holds, or the last one after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        scrape = samples(port)
        if condition(scrape) or time.monotonic() > deadline:
            return scrape
        time.sleep(0.02)


def value(scrape: dict, name: str, **labels) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_scrape_after_n_puts_shows_n_more_kv_put_calls_and_their_raft_work(served):
    node, port, address = served
    puts = 25
    before = samples(port)
    with Client([address]) as client:
        for k in range(puts):
            client.put(f"observed-{k}".encode(), b"v")
        assert client.get(b"observed-0") == b"v"
    put_ok = dict(service="tandemkv.v1.KV", method="Put", code="OK")
    # A call is counted in its done callback, which may run after the client has its answer.
    after = settled(port, lambda scrape: value(scrape, "tandemkv_grpc_server_handled_total", **put_ok) >=
                    value(before, "tandemkv_grpc_server_handled_total", **put_ok) + puts)
    assert value(after, "tandemkv_grpc_server_handled_total", **put_ok) - \
        value(before, "tandemkv_grpc_server_handled_total", **put_ok) == puts
    latency = dict(service="tandemkv.v1.KV", method="Put")
    assert value(after, "tandemkv_grpc_server_handling_seconds_count", **latency) - \
        value(before, "tandemkv_grpc_server_handling_seconds_count", **latency) == puts
    assert value(after, "tandemkv_raft_proposed_commands_total") - \
        value(before, "tandemkv_raft_proposed_commands_total") >= puts
    assert value(after, "tandemkv_raft_log_fsync_seconds_count") > value(before, "tandemkv_raft_log_fsync_seconds_count")
    assert value(after, "tandemkv_raft_applied_index") >= value(before, "tandemkv_raft_applied_index") + puts
    assert value(after, "tandemkv_raft_term") >= 1
    assert value(after, "tandemkv_raft_role", role="leader") == 1
    assert 0 < value(after, "tandemkv_lmdb_map_used_ratio") < 1
    assert ("tandemkv_gossip_rounds_total", ()) in after
    assert ("tandemkv_pubsub_subscribers", ()) in after
    assert ("tandemkv_presence_entries", ()) in after


def test_a_scrape_shows_each_job_queues_jobs_by_state_and_its_limit(served):
    node, port, address = served
    with Client([address]) as client:
        client.jobs.enqueue_many("metered", [b"a", b"b", b"c"])
        with client.lease(ttl_s=30) as lease:
            client.jobs.claim("metered", lease.id)
            client.jobs.set_queue_limit("metered", 7)
            scrape = settled(port, lambda s: value(s, "tandemkv_job_queue_jobs", queue="metered", state="claimed") == 1)
    assert value(scrape, "tandemkv_job_queue_jobs", queue="metered", state="available") == 2
    assert value(scrape, "tandemkv_job_queue_jobs", queue="metered", state="claimed") == 1
    assert value(scrape, "tandemkv_job_queue_jobs", queue="metered", state="dead") == 0
    assert value(scrape, "tandemkv_job_queue_concurrency_limit", queue="metered") == 7


def test_a_refused_call_is_counted_under_its_status_code(served):
    _, port, address = served
    import grpc
    from tandemkv.v1 import kv_pb2, kv_pb2_grpc

    code = dict(service="tandemkv.v1.KV", method="Get", code="INVALID_ARGUMENT")
    before = value(samples(port), "tandemkv_grpc_server_handled_total", **code)
    with grpc.insecure_channel(address) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            kv_pb2_grpc.KVStub(channel).Get(kv_pb2.GetRequest(key=b""), timeout=HTTP_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = settled(port, lambda scrape: value(scrape, "tandemkv_grpc_server_handled_total", **code) > before)
    assert value(after, "tandemkv_grpc_server_handled_total", **code) == before + 1


def test_livez_and_readyz_answer_200_on_a_ready_node_and_the_dashboard_loads(served):
    node, port, _ = served
    assert get(port, "/livez") == (200, "ok\n")
    assert get(port, "/readyz") == (200, "ok\n")
    status, page = get(port, "/dashboard")
    assert status == 200 and "<title>TandemKV dashboard</title>" in page
    status, body = get(port, "/api/cluster")
    view = json.loads(body)
    assert status == 200 and view["node"] == "m1" and view["ready"]["ok"] is True
    assert [(m["name"], m["role"]) for m in view["members"]] == [("m1", "leader")]


def test_the_leader_change_counter_counts_what_the_sampler_sees(served):
    node, port, _ = served
    before = value(samples(port), "tandemkv_raft_leader_changes_total")
    port.sampler._leader = "someone-else"  # as if the last sample had seen another leader
    deadline = time.monotonic() + WAIT_S
    while value(samples(port), "tandemkv_raft_leader_changes_total") == before:
        assert time.monotonic() < deadline, "the sampler never counted the change"
        time.sleep(0.05)
    assert value(samples(port), "tandemkv_raft_leader_changes_total") == before + 1


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_every_log_event_is_one_line_tagged_with_the_node_and_the_request_id(log_format):
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, TAGS.node, TAGS.term)
    try:
        logs.configure("INFO", log_format, "n7", stream)
        TAGS.term = 4
        token = REQUEST_ID.set("00ff")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("tandemkv.test").exception("it failed")
        REQUEST_ID.reset(token)
        logging.getLogger("tandemkv.test").info("plain")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        TAGS.node, TAGS.term = saved[2], saved[3]
    text = stream.getvalue()
    if log_format == "json":
        events = [json.loads(line) for line in text.splitlines()]
        assert [e["message"] for e in events] == ["it failed", "plain"]
        assert all(e["node"] == "n7" and e["term"] == 4 for e in events)
        assert events[0]["request_id"] == "00ff" and "RuntimeError: boom" in events[0]["exception"]
        assert "request_id" not in events[1]
    else:
        first = text.splitlines()[0]
        assert " ERROR n7 tandemkv.test: it failed [request 00ff]" in first
        assert text.splitlines()[-1].endswith(" INFO n7 tandemkv.test: plain")
