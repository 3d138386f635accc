"""Embedded `Node`s: three members in this process, on 127.0.0.1.

Covers what needs real Raft but no process kills: every operation through
the Python API, restarting every node (no double apply on replay), a wiped
follower rebuilding from the log and from a snapshot, and a command the
state machine refuses on every node while the cluster keeps working."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

import pytest

from tests.support.ports import free_ports
from tandemkv import limits
from tandemkv.errors import InvalidArgument, OutcomeUnknown, OutOfRange, Unavailable
from tandemkv.server import Member, Node, NodeConfig, RaftTimings
from tandemkv.server.raft import testing as raft_testing
from tandemkv.server.storage import snapshot
from tandemkv.server.strong import commands
from tandemkv.v1 import counter_pb2, kv_pb2

READY_S = 20.0
FAST = RaftTimings(election_timeout_min_s=0.4, election_timeout_max_s=0.8,
                   leader_fallback_timeout_s=1.5)


class Cluster:
    def __init__(self, base, size=3):
        ports = free_ports(2 * size)
        self.members = [Member(f"n{i}", f"127.0.0.1:{ports[i]}", f"127.0.0.1:{ports[size + i]}")
                        for i in range(size)]
        self.base = base
        self.nodes: dict[str, Node] = {}

    def config(self, member):
        return NodeConfig(name=member.name, data_dir=self.base / member.name,
                          raft_address=member.raft_address, client_address=member.client_address,
                          peers=self.members, timings=FAST)

    def start(self, name=None):
        for member in self.members:
            if name in (None, member.name):
                node = Node(self.config(member))
                node.start()
                self.nodes[member.name] = node
        for node in self.nodes.values():
            node.wait_ready(READY_S)

    def stop(self, name=None):
        for key in [k for k in self.nodes if name in (None, k)]:
            self.nodes.pop(key).stop()

    def leader(self) -> Node:
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            leaders = [n for n in self.nodes.values() if n.status().role == "leader"]
            if len(leaders) == 1:
                return leaders[0]
            time.sleep(0.02)
        raise AssertionError("no single leader")

    def compact_all(self) -> None:
        """Every node compacts its log; returns once each wrote its snapshot."""
        for node in self.nodes.values():
            node.compact()
        deadline = time.monotonic() + READY_S
        while not all((self.base / n / snapshot.FILE_NAME).exists() for n in self.nodes):
            assert time.monotonic() < deadline, "snapshots were not written"
            time.sleep(0.02)

    def wait_applied(self, node: Node, index: int) -> None:
        deadline = time.monotonic() + READY_S
        while node.status().applied_index < index:
            assert time.monotonic() < deadline, f"{node.config.name} stuck below {index}"
            time.sleep(0.02)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.stop()


def test_every_operation_works_through_any_node(cluster):
    a, b, c = cluster.nodes.values()
    assert a.put(b"k", b"v1").header.revision > 0
    assert b.get(b"k").kv.value == b"v1"
    assert c.put(b"k", b"v2", prev_kv=True).prev_kv.value == b"v1"
    a.put(b"dir/x", b"1")
    a.put(b"dir/y", b"2")
    assert [kv.key for kv in b.range(b"dir/", prefix=True).kvs] == [b"dir/x", b"dir/y"]
    assert c.delete(b"dir/", prefix=True).deleted == 2
    assert a.incr(b"n", 5).value == 5
    assert b.incr(b"n", -2).value == 3
    assert c.counter_compare_and_set(b"n", 3, 10).succeeded
    assert a.counter_set(b"n", 1).prev_value == 10
    assert b.counter_get(b"n").value == 1
    assert c.counter_delete(b"n").deleted
    txn = kv_pb2.TxnRequest(
        compare=[kv_pb2.Compare(key=b"k", target=kv_pb2.Compare.VALUE, value=b"v2")],
        success=[kv_pb2.RequestOp(put=kv_pb2.PutRequest(key=b"k", value=b"v3"))])
    assert a.txn(txn).succeeded and c.get(b"k").kv.value == b"v3"
    with pytest.raises(InvalidArgument, match="key must not be empty"):
        a.put(b"", b"x")
    a.counter_set(b"max", 2**63 - 1)
    with pytest.raises(OutOfRange):
        b.incr(b"max", 1)


async def _async_ops(node):
    await node.propose_async(kv_pb2.PutRequest(key=b"async", value=b"yes"))
    return await node.query_async(kv_pb2.GetRequest(key=b"async"))


def test_async_twins_work(cluster):
    response = asyncio.run(_async_ops(cluster.nodes["n1"]))
    assert response.kv.value == b"yes"


async def _concurrent_increments(node, count, request_ids):
    return await asyncio.gather(*(
        node.propose_async(counter_pb2.CounterIncrRequest(name=b"busy", delta=1,
                                                          request_id=request_ids[k]))
        for k in range(count)))


def test_concurrent_writes_share_log_entries_and_each_applies_once(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    ids = [os.urandom(16) for _ in range(400)]
    responses = []
    for node, part in ((leader, ids[:200]), (follower, ids[200:])):
        responses += asyncio.run(_concurrent_increments(node, 200, part))
    assert sorted(r.value for r in responses) == list(range(1, 401))
    revisions = [r.header.revision for r in responses]
    assert len(set(revisions)) < len(revisions) / 2, "busy writes were batched"
    # Retried request ids get their first results, from any node.
    retried = asyncio.run(_concurrent_increments(follower, 400, ids))
    assert [r.value for r in retried] == [r.value for r in responses]
    cluster.stop()
    cluster.start()
    for node in cluster.nodes.values():
        assert node.counter_get(b"busy").value == 400


def test_restarting_every_node_keeps_values_and_applies_nothing_twice(cluster):
    leader = cluster.leader()
    for _ in range(30):
        leader.incr(b"c")
    leader.put(b"k", b"v")
    cluster.stop()
    cluster.start()
    for node in cluster.nodes.values():
        assert node.counter_get(b"c").value == 30
        assert node.get(b"k").kv.version == 1


def test_a_wiped_follower_rebuilds_from_the_log(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes if cluster.nodes[n] is not leader)
    for i in range(20):
        leader.put(b"k%d" % i, b"v%d" % i)
    cluster.stop(follower)
    shutil.rmtree(cluster.base / follower)
    cluster.start(follower)
    node = cluster.nodes[follower]
    assert node.range(b"k", prefix=True).kvs[19].value == b"v9"
    assert len(node.range(b"k", prefix=True, consistency=kv_pb2.STALE).kvs) == 20


def test_a_wiped_follower_rebuilds_from_a_snapshot(cluster):
    leader = cluster.leader()
    for i in range(50):
        leader.incr(b"snap")
    cluster.compact_all()
    leader.incr(b"snap")  # after the snapshot: must come from the log
    follower = next(n for n in cluster.nodes if cluster.nodes[n] is not leader)
    cluster.stop(follower)
    shutil.rmtree(cluster.base / follower)
    cluster.start(follower)
    node = cluster.nodes[follower]
    cluster.wait_applied(node, leader.status().applied_index)
    assert node.counter_get(b"snap", consistency=kv_pb2.STALE).value == 51
    cluster.stop()
    cluster.start()  # restart from the installed snapshot plus the log
    assert all(n.counter_get(b"snap").value == 51 for n in cluster.nodes.values())


def test_a_command_refused_inside_apply_is_an_error_result_everywhere(cluster):
    leader = cluster.leader()
    before = leader.status().applied_index
    outcome = leader._replica.submit(b"\x00not a command").result(timeout=READY_S)
    with pytest.raises(Exception, match="undecodable"):
        commands.decode_result(outcome[0])
    for node in cluster.nodes.values():
        cluster.wait_applied(node, before + 1)
    assert leader.put(b"after", b"ok").header.revision > before
    assert all(n.get(b"after").found for n in cluster.nodes.values())


def _solo_config(tmp_path) -> NodeConfig:
    port = free_ports(1)[0]
    return NodeConfig(name="solo", data_dir=tmp_path / "solo",
                      raft_address=f"127.0.0.1:{port}", timings=FAST)


def test_a_single_node_cluster_commits_alone(tmp_path):
    with Node(_solo_config(tmp_path)) as node:
        node.wait_ready(READY_S)
        assert node.incr(b"c", 2).value == 2
        assert node.counter_get(b"c").value == 2


def test_a_node_whose_snapshot_is_gone_after_compaction_refuses_to_start(tmp_path):
    # Without the check it would start, never apply the compacted entries,
    # and wait forever, never ready (its log matches the leader's).
    config = _solo_config(tmp_path)
    with Node(config) as node:
        node.wait_ready(READY_S)
        for _ in range(20):
            node.incr(b"c")
        node.compact()
        deadline = time.monotonic() + READY_S
        while raft_testing.log_first_index(node._replica) <= 1:
            assert time.monotonic() < deadline, "the log was not compacted"
            time.sleep(0.02)
    shutil.rmtree(config.data_dir / "state")  # as after a machine crash
    (config.data_dir / snapshot.FILE_NAME).unlink()
    with pytest.raises(RuntimeError, match=r"snapshot.bin is missing.*move this node's data dir aside"):
        Node(config).start()


def test_a_full_command_queue_refuses_writes_at_once(tmp_path, monkeypatch):
    with Node(_solo_config(tmp_path)) as node:
        node.wait_ready(READY_S)
        monkeypatch.setattr(limits, "RAFT_QUEUE_COMMANDS_MAX", 0)
        with pytest.raises(Unavailable, match="QUEUE_FULL"):
            node.incr(b"c", 1, timeout_s=5)
        monkeypatch.undo()
        assert node.incr(b"c", 1).value == 1, "nothing of the refused write applied"


def _isolate(node: Node) -> None:
    """Cuts `node` off from its peers: nothing it sends arrives, nothing
    they send reaches it. Clients still reach it (it is in this process)."""
    raft_testing.cut_off(node._replica)


def test_a_cut_off_leader_never_answers_a_linearizable_read_with_stale_data(cluster):
    old_leader = cluster.leader()
    old_leader.put(b"k", b"v1")
    for node in cluster.nodes.values():
        cluster.wait_applied(node, old_leader.status().applied_index)
    _isolate(old_leader)
    others = [n for n in cluster.nodes.values() if n is not old_leader]
    deadline = time.monotonic() + READY_S
    while not any(n.status().role == "leader" for n in others):
        assert time.monotonic() < deadline, "the others elected no leader"
        time.sleep(0.02)
    others[0].put(b"k", b"v2")
    # The scenario is real: the cut-off node still holds v1 (and, until its
    # fallback timeout, believes it leads) ...
    assert old_leader.get(b"k", consistency=kv_pb2.STALE).kv.value == b"v1"
    # ... yet a linearizable read there fails rather than answer v1.
    with pytest.raises((OutcomeUnknown, Unavailable)):
        old_leader.get(b"k", timeout_s=2.0)
    assert all(n.get(b"k").kv.value == b"v2" for n in others)
