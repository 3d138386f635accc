"""Membership on embedded nodes (no gRPC, no processes): the member set as
strong state, changes one at a time, a new member that catches up from a
snapshot after the leader compacted its log, the hook other planes
follow, and a removed node that learns its removal and refuses calls.
The pure record functions (server/strong/members.py) are checked on an
in-memory view first."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tandemkv.errors import FailedPrecondition, InvalidArgument, Unavailable
from tandemkv.server import Node
from tandemkv.server.node.config import Member, NodeConfig
from tandemkv.server.raft.contract import ROLE_LEADER
from tandemkv.server.raft.testing import log_first_index
from tandemkv.server.strong import members
from tandemkv.server.strong.view import MemoryView
from tandemkv.v1 import cluster_pb2, kv_pb2
from tests.support.ports import free_ports

READY_TIMEOUT_S = 30.0
CHANGE_TIMEOUT_S = 10.0
POLL_S = 0.02


def proto_member(name: str, raft: str, client: str) -> cluster_pb2.Member:
    return cluster_pb2.Member(name=name, raft_address=raft, client_address=client)


THREE = members.initial_set([Member(f"n{k}", f"127.0.0.1:{k}0", f"127.0.0.1:{k}1") for k in (1, 2, 3)])


# -- the pure record --
def test_an_added_member_joins_the_set_sorted_and_as_a_voter():
    added = members.with_member(THREE, proto_member("n0", "127.0.0.1:5", "127.0.0.1:6"))
    assert [m.name for m in added.members] == ["n0", "n1", "n2", "n3"]
    assert all(m.voter for m in added.members)


def test_adding_a_member_again_with_the_same_addresses_changes_nothing():
    assert members.with_member(THREE, proto_member("n2", "127.0.0.1:20", "127.0.0.1:21")) is None


@pytest.mark.parametrize("member, words", [
    (proto_member("n2", "127.0.0.1:99", "127.0.0.1:21"), "remove it first"),
    (proto_member("n4", "127.0.0.1:20", "127.0.0.1:98"), "n2's"),
    (proto_member("n4", "127.0.0.1:97", "127.0.0.1:31"), "n3's"),
    (proto_member("", "127.0.0.1:97", "127.0.0.1:96"), "needs a name"),
    (proto_member("n4", "", "127.0.0.1:96"), "--raft"),
    (proto_member("0", "0", "0"), "--raft takes HOST:PORT"),
    (proto_member("n4", "127.0.0.1:97", "127.0.0.1:70000"), "--client takes HOST:PORT"),
    (proto_member("n4", "127.0.0.1:", "127.0.0.1:96"), "--raft takes HOST:PORT"),
    (proto_member("n 4", "127.0.0.1:97", "127.0.0.1:96"), "without spaces"),
    (proto_member("n" * 129, "127.0.0.1:97", "127.0.0.1:96"), "at most 128 bytes"),
])
def test_an_addition_that_clashes_or_lacks_an_address_is_refused_saying_what_to_fix(member, words):
    with pytest.raises(InvalidArgument) as refused:
        members.with_member(THREE, member)
    assert words in refused.value.message


def test_removing_a_stranger_or_the_last_member_is_refused():
    with pytest.raises(FailedPrecondition, match="not a member"):
        members.without_member(THREE, "n9")
    alone = members.without_member(members.without_member(THREE, "n1"), "n2")
    with pytest.raises(FailedPrecondition, match="only member"):
        members.without_member(alone, "n3")


def test_a_committed_set_is_stored_with_its_index_once_and_a_replay_is_skipped():
    view = MemoryView()
    assert members.stored_set(view) is None
    changed = members.without_member(THREE, "n1")
    result = members.apply_member_set(view, 7, changed.SerializeToString())
    assert cluster_pb2.MemberSet.FromString(result).config_index == 7
    assert members.apply_member_set(view, 7, THREE.SerializeToString()) is None  # replayed
    assert [m.name for m in members.stored_set(view).members] == ["n2", "n3"]
    assert members.apply_member_set(view, 8, b"\xff\xff") == b""  # undecodable: nothing stored
    assert members.stored_set(view).config_index == 7


# -- embedded nodes --
class Nodes:
    """Embedded nodes on 127.0.0.1; `start(name, peers)` builds one."""

    def __init__(self, root: Path):
        self.root = root
        self.nodes: dict[str, Node] = {}
        ports = free_ports(10)
        self.members = {f"n{k + 1}": Member(f"n{k + 1}", f"127.0.0.1:{ports[2 * k]}",
                                            f"127.0.0.1:{ports[2 * k + 1]}") for k in range(5)}

    def start(self, name: str, peers: list[Member], since: int = 0) -> Node:
        me = self.members[name]
        node = Node(NodeConfig(name=name, data_dir=self.root / name, raft_address=me.raft_address,
                               client_address=me.client_address, member_since_index=since,
                               peers=tuple(p for p in peers if p.name != name)))
        node.start()
        self.nodes[name] = node
        return node

    def leader(self) -> Node:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            for node in self.nodes.values():
                if node.removed_reason() is None and node.status().role == ROLE_LEADER:
                    return node
            time.sleep(POLL_S)
        raise AssertionError("no leader")

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()


@pytest.fixture
def cluster(tmp_path):
    nodes = Nodes(tmp_path)
    try:
        first = [nodes.members[n] for n in ("n1", "n2", "n3")]
        for name in ("n1", "n2", "n3"):
            nodes.start(name, first)
        for node in nodes.nodes.values():
            node.wait_ready(READY_TIMEOUT_S)
        yield nodes
    finally:
        nodes.stop()


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(POLL_S)


def test_a_member_added_after_compaction_catches_up_from_a_snapshot_and_every_node_agrees(cluster):
    leader = cluster.leader()
    for k in range(20):
        leader.propose(kv_pb2.PutRequest(key=b"k%d" % k, value=b"v"), timeout_s=CHANGE_TIMEOUT_S)
    leader.compact()
    wait_until(lambda: log_first_index(leader._replica) > 1, "the leader never compacted its log")
    seen: list[list[str]] = []
    cluster.nodes["n2"].on_members_changed(lambda member_set: seen.append([m.name for m in member_set.members]))
    n4 = cluster.members["n4"]
    after = leader.add_member(proto_member("n4", n4.raft_address, n4.client_address), timeout_s=CHANGE_TIMEOUT_S)
    assert [m.name for m in after.members] == ["n1", "n2", "n3", "n4"] and after.config_index > 0
    joined = cluster.start("n4", list(leader.members()), since=after.config_index)
    joined.wait_ready(READY_TIMEOUT_S)
    wait_until(lambda: joined.status().applied_index >= after.config_index, "n4 never caught up")
    got = joined.query(kv_pb2.GetRequest(key=b"k19", consistency=kv_pb2.STALE))
    assert got.kv.value == b"v"
    for node in cluster.nodes.values():
        wait_until(lambda: node.member_set() == after, f"{node.config.name} never applied the set")
    assert seen == [["n1", "n2", "n3", "n4"]]
    assert joined.removed_reason() is None


def test_a_change_while_another_is_in_progress_is_refused_naming_it(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    cluster.nodes.pop(follower.config.name).stop()  # two of four cannot commit the addition
    n4 = cluster.members["n4"]
    adding = threading.Thread(target=lambda: pytest.raises(
        Exception, leader.add_member, proto_member("n4", n4.raft_address, n4.client_address), timeout_s=2.0))
    adding.start()
    wait_until(lambda: leader.change_in_progress(), "the addition never showed as in progress")
    with pytest.raises(FailedPrecondition) as refused:
        leader.remove_member(follower.config.name, timeout_s=CHANGE_TIMEOUT_S)
    adding.join()
    assert "add n4" in refused.value.message and "in progress" in refused.value.message


def test_a_follower_refuses_to_make_a_change_and_names_the_leader(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    with pytest.raises(Unavailable) as refused:
        follower.remove_member("n3", timeout_s=CHANGE_TIMEOUT_S)
    assert refused.value.leader_hint == leader.config.client_address


def test_removing_the_leader_hands_over_then_the_removed_node_refuses_every_call(cluster):
    leader = cluster.leader()
    name = leader.config.name
    with pytest.raises(Unavailable, match="handed leadership") as handed:
        leader.remove_member(name, timeout_s=CHANGE_TIMEOUT_S)
    new_leader = next(n for n in cluster.nodes.values() if n.config.client_address == handed.value.leader_hint)
    after = new_leader.remove_member(name, timeout_s=CHANGE_TIMEOUT_S)
    assert name not in [m.name for m in after.members]
    wait_until(lambda: leader.removed_reason() is not None, "the removed node never learned it")
    with pytest.raises(FailedPrecondition, match="removed from the cluster"):
        leader.query(kv_pb2.GetRequest(key=b"k", consistency=kv_pb2.STALE))
    assert new_leader.propose(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout_s=CHANGE_TIMEOUT_S)
