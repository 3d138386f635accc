"""CRDT tables on a real 3-node cluster of `tandemkv serve` processes:
writes on different nodes converge on every node; gossip frames that are
forged, tampered with or stamped far in the future are rejected and
counted; a node keeps its acknowledged CRDT writes across kill -9, even
writes it took while it had no Raft quorum; Cluster.Status shows which
gossip peers a node hears and the frames it rejected.

Method: one cluster for the module; tables are created through Raft on
one node, updates go to each node's own replica, and every check polls
each node's Read until it matches or a deadline passes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import grpc
import pytest

from tandemkv import errors
from tandemkv.client import AsyncClient, Client
from tandemkv.server.api.crdt_servicers import GOSSIP_REJECTED_METADATA_KEY
from tandemkv.server.available.gossip.protocol import GOSSIP_SUSPECT_AFTER_ROUNDS
from tandemkv.server.available.node_plane import gossip_key
from tandemkv.server.node.config import NodeConfig
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc, crdt_pb2
from tests.support import crdt_nodes
from tests.support.cluster import ServeCluster

LEADER_TIMEOUT_S = 60.0
TABLE_TIMEOUT_S = 20.0
# Gossip rounds are 1 s; five rounds plus the first catalog poll.
CONVERGE_TIMEOUT_S = 10.0
# A stamp this far ahead is past CLOCK_DRIFT_MS_MAX (60 s).
FUTURE_MS = 10 * 60 * 1000
CLI_TIMEOUT_S = 30.0
# A stopped peer is suspect after GOSSIP_SUSPECT_AFTER_ROUNDS rounds of 1 s;
# a restarted cluster needs a few rounds before every peer is heard.
LIVENESS_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("crdt"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


def endpoints(cluster, names=("n1", "n2", "n3")) -> dict[str, str]:
    return {name: cluster.endpoint(name) for name in names}


def test_writes_on_different_nodes_converge_on_every_node(cluster):
    crdt_nodes.create_table(cluster.endpoint("n1"), "views", crdt_pb2.PN_COUNTER, TABLE_TIMEOUT_S)
    crdt_nodes.create_table(cluster.endpoint("n2"), "online", crdt_pb2.OR_SET, TABLE_TIMEOUT_S)
    crdt_nodes.create_table(cluster.endpoint("n3"), "profile", crdt_pb2.AW_LWW_MAP, TABLE_TIMEOUT_S)
    for index, (name, endpoint) in enumerate(endpoints(cluster).items(), start=1):
        crdt_nodes.update_when_known(endpoint, "views", TABLE_TIMEOUT_S, increment=10 * index)
        crdt_nodes.update_when_known(endpoint, "online", TABLE_TIMEOUT_S, add=name.encode())
        crdt_nodes.update_when_known(endpoint, "profile", TABLE_TIMEOUT_S,
                                     put=(name.encode(), b"seen"))
    crdt_nodes.update(cluster.endpoint("n2"), "views", increment=-5)
    crdt_nodes.update(cluster.endpoint("n1"), "online", remove=b"n1")
    expected = {"views": 55, "online": [b"n2", b"n3"],
                "profile": {b"n1": b"seen", b"n2": b"seen", b"n3": b"seen"}}
    crdt_nodes.wait_until_all_read(endpoints(cluster), expected, CONVERGE_TIMEOUT_S)


def test_an_update_names_a_table_no_node_has(cluster):
    with pytest.raises(grpc.RpcError) as raised:
        crdt_nodes.update(cluster.endpoint("n1"), "no-such-table", increment=1)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-table" in raised.value.details()


def test_forged_tampered_and_far_future_frames_are_rejected_and_counted(cluster):
    target = cluster.endpoint("n1")
    key = gossip_key(NodeConfig(name="n1", data_dir=cluster.root, raft_address=cluster.members[0].raft_address,
                                peers=tuple(cluster.members[1:])))
    now_ms = int(time.time() * 1000)
    forged = crdt_nodes.signed_frame(b"not the cluster key", "n2", "n1", now_ms)
    code, details, metadata = crdt_nodes.deliver(target, [forged])
    assert code == grpc.StatusCode.UNAUTHENTICATED, details
    assert "bad_mac=1" in details
    genuine = crdt_nodes.signed_frame(key, "n2", "n1", now_ms)
    tampered = genuine[:-1] + bytes([genuine[-1] ^ 1])
    code, details, metadata = crdt_nodes.deliver(target, [tampered])
    assert code == grpc.StatusCode.UNAUTHENTICATED, details
    assert "bad_mac=2" in metadata[GOSSIP_REJECTED_METADATA_KEY]
    future = crdt_nodes.signed_frame(key, "n2", "n1", now_ms + FUTURE_MS)
    code, details, metadata = crdt_nodes.deliver(target, [future])
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert "clock_drift=1" in details


def test_sdk_recipes_create_their_tables_and_work_on_every_node(cluster):
    with Client(cluster.endpoints) as client:
        views = client.crdt.counter("sdk-views")
        views.incr(5)
        views.decr(2)
        assert views.get() == 3
        online = client.crdt.set("sdk-online")
        online.add(b"ann")
        online.add(b"bob")
        online.remove(b"ann")
        assert online.members() == [b"bob"]
        profile = client.crdt.map("sdk-profile")
        profile.put(b"name", b"Ann")
        profile.put(b"city", b"Oslo")
        profile.remove(b"city")
        assert profile.get(b"name") == b"Ann" and profile.items() == {b"name": b"Ann"}
        assert client.crdt.list()["sdk-views"] == "PN_COUNTER"
        with pytest.raises(errors.FailedPrecondition, match="sdk-online"):
            client.crdt.counter("sdk-online").incr()
    expected = {"sdk-views": 3, "sdk-online": [b"bob"], "sdk-profile": {b"name": b"Ann"}}
    crdt_nodes.wait_until_all_read(endpoints(cluster), expected, CONVERGE_TIMEOUT_S)


def test_async_sdk_and_cli_reach_the_same_tables(cluster):
    async def use():
        async with AsyncClient([cluster.endpoint("n2")]) as client:
            await client.crdt.counter("sdk-async").incr(4)
            return await client.crdt.counter("sdk-async").get()

    assert asyncio.run(use()) == 4
    command = [sys.executable, "-m", "tandemkv.server.cli", "crdt"]
    where = ["--endpoints", cluster.endpoint("n3"), "--output", "json"]
    added = subprocess.run(command + ["add", "cli-set", "m1"] + where, capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_S)
    assert added.returncode == 0, added.stderr
    shown = subprocess.run(command + ["get", "cli-set"] + where, capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_S)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"value": ["m1"]}


def test_a_node_keeps_updates_taken_without_quorum_across_kill_9(cluster):
    crdt_nodes.create_table(cluster.endpoint("n1"), "kept", crdt_pb2.OR_SET, TABLE_TIMEOUT_S)
    n3 = cluster.endpoint("n3")
    crdt_nodes.update_when_known(n3, "kept", TABLE_TIMEOUT_S, add=b"before")
    cluster.kill("n1")
    cluster.kill("n2")
    crdt_nodes.update(n3, "kept", add=b"alone")  # n3 has no quorum now
    cluster.kill("n3")
    cluster.restart("n3")
    crdt_nodes.wait_until_all_read({"n3": n3}, {"kept": [b"alone", b"before"]}, TABLE_TIMEOUT_S)
    cluster.restart("n1")
    cluster.restart("n2")
    crdt_nodes.wait_until_all_read(endpoints(cluster), {"kept": [b"alone", b"before"]},
                                   LEADER_TIMEOUT_S)


def node_status(endpoint: str) -> cluster_pb2.StatusResponse:
    with grpc.insecure_channel(endpoint) as channel:
        return cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(),
                                                            timeout=crdt_nodes.CALL_TIMEOUT_S)


def peer_states(status: cluster_pb2.StatusResponse) -> dict[str, int]:
    return {peer.name: peer.state for peer in status.gossip_peers}


def heard(status: cluster_pb2.StatusResponse) -> bool:
    """Every peer's heartbeat has reached the node (a peer never heard
    still counts as alive for its first rounds)."""
    return all(peer.heartbeat_ms > 0 for peer in status.gossip_peers)


def wait_for_status(endpoint: str, condition, what: str) -> cluster_pb2.StatusResponse:
    """Polls the node's Cluster.Status until `condition` holds for it."""
    deadline = time.monotonic() + LIVENESS_TIMEOUT_S
    while True:
        status = node_status(endpoint)
        if condition(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {LIVENESS_TIMEOUT_S} s; last status: {status}")
        time.sleep(crdt_nodes.POLL_S)


def test_cluster_status_shows_gossip_liveness_and_rejected_frames(cluster):
    n1 = cluster.endpoint("n1")
    forged = crdt_nodes.signed_frame(b"not the cluster key", "n2", "n1", int(time.time() * 1000))
    assert crdt_nodes.deliver(n1, [forged])[0] == grpc.StatusCode.UNAUTHENTICATED
    alive = {"n2": cluster_pb2.GOSSIP_PEER_ALIVE, "n3": cluster_pb2.GOSSIP_PEER_ALIVE}
    status = wait_for_status(n1, lambda s: peer_states(s) == alive and heard(s), "n2 and n3 heard at n1")
    assert status.gossip_running and status.gossip_rejected["bad_mac"] >= 1
    cluster.stop_node("n3")
    status = wait_for_status(n1, lambda s: peer_states(s)["n3"] != cluster_pb2.GOSSIP_PEER_ALIVE,
                             "n3 not alive at n1")
    silent = {peer.name: peer.rounds_silent for peer in status.gossip_peers}
    assert silent["n3"] >= GOSSIP_SUSPECT_AFTER_ROUNDS
    assert peer_states(status)["n2"] == cluster_pb2.GOSSIP_PEER_ALIVE
