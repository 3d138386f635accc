"""Learners on embedded nodes (no gRPC, no processes): a member that
replicates the log without voting, then is promoted to voter.

Three voters and a learner on 127.0.0.1: the learner holds every
acknowledged key and serves stale reads, a write sent to it is forwarded
to the leader, CRDT writes cross between it and the voters, and it does
not count for the quorum (with two voters
stopped, writes stop although the learner runs, and it never starts an
election). Promotion is refused while the learner is not with the leader
and for a voter or a stranger; once it caught up it is accepted, and the
quorum is then 3 of 4. The record's rules (server/strong/members.py) and
the refusal's words are checked first, without a cluster.
"""

from __future__ import annotations

import time

import pytest

from tandemkv import errors, limits
from tandemkv.errors import FailedPrecondition
from tandemkv.server.node.crdt import Add
from tandemkv.server.raft.contract import ROLE_LEADER
from tandemkv.server.raft.testing import log_first_index
from tandemkv.server.strong import members
from tandemkv.v1 import cluster_pb2, kv_pb2
from tests.test_membership_node import (CHANGE_TIMEOUT_S, READY_TIMEOUT_S, THREE, Nodes, proto_member,
                                        wait_until)

# How long a write is given when it must not commit (no quorum).
STALLED_WRITE_TIMEOUT_S = 3.0
KEYS = 40


# -- the pure record --
def test_a_learner_is_added_as_a_non_voter_and_promoted_to_a_voter():
    added = members.with_member(THREE, proto_member("n4", "127.0.0.1:5", "127.0.0.1:6"), learner=True)
    assert [(m.name, m.voter) for m in added.members][-1] == ("n4", False)
    assert members.describe_change(THREE, added).startswith("add learner n4")
    promoted = members.with_promoted(added, "n4")
    assert all(m.voter for m in promoted.members)
    assert members.describe_change(added, promoted) == "promote n4"
    assert members.with_member(added, proto_member("n4", "127.0.0.1:5", "127.0.0.1:6"), learner=True) is None


def test_promoting_a_voter_or_a_stranger_and_adding_in_the_other_role_are_refused_saying_why():
    added = members.with_member(THREE, proto_member("n4", "127.0.0.1:5", "127.0.0.1:6"), learner=True)
    with pytest.raises(FailedPrecondition, match="n1 is a voter already"):
        members.with_promoted(added, "n1")
    with pytest.raises(FailedPrecondition, match="'n9' is not a member"):
        members.with_promoted(added, "n9")
    with pytest.raises(FailedPrecondition, match="promote it"):
        members.with_member(added, proto_member("n4", "127.0.0.1:5", "127.0.0.1:6"))
    with pytest.raises(FailedPrecondition, match="cannot become a learner"):
        members.with_member(added, proto_member("n1", "127.0.0.1:10", "127.0.0.1:11"), learner=True)


def test_the_last_voter_cannot_be_removed_while_learners_remain():
    alone = members.without_member(members.without_member(THREE, "n1"), "n2")
    with_learner = members.with_member(alone, proto_member("n4", "127.0.0.1:5", "127.0.0.1:6"), learner=True)
    with pytest.raises(FailedPrecondition, match="only voter"):
        members.without_member(with_learner, "n3")
    assert [m.name for m in members.without_member(with_learner, "n4").members] == ["n3"]


class _Progress:
    """A replica as `_refuse_if_behind` reads it: a learner at `matched`."""

    def __init__(self, matched: int, connected: bool, commit: int):
        self._progress = (matched, connected)
        self._commit = commit

    def learner_progress(self, _address):
        return self._progress

    def status(self):
        return type("Status", (), {"commit_index": self._commit})()


@pytest.mark.parametrize("matched, connected, words", [
    (10, True, f"{limits.LEARNER_PROMOTE_LAG_ENTRIES_MAX + 990} entries behind"),
    (5_000, False, "not connected to the leader"),
])
def test_a_learner_behind_or_away_is_refused_saying_how_far_behind(matched, connected, words):
    from tandemkv.server.node.membership import NodeMembership

    commit = limits.LEARNER_PROMOTE_LAG_ENTRIES_MAX + 1_000
    holder = type("Holder", (NodeMembership,), {})()
    holder._require_replica = lambda: _Progress(matched, connected, commit)
    with pytest.raises(FailedPrecondition) as refused:
        holder._refuse_if_behind(proto_member("n4", "127.0.0.1:5", "127.0.0.1:6"))
    assert words in refused.value.message and str(commit) in refused.value.message
    holder._require_replica = lambda: _Progress(commit - 1, True, commit)
    holder._refuse_if_behind(proto_member("n4", "127.0.0.1:5", "127.0.0.1:6"))  # caught up: allowed


# -- embedded nodes --
@pytest.fixture
def cluster(tmp_path):
    """Three voters n1..n3 and a learner n4, started and caught up."""
    nodes = Nodes(tmp_path)
    try:
        first = [nodes.members[n] for n in ("n1", "n2", "n3")]
        for name in ("n1", "n2", "n3"):
            nodes.start(name, first)
        for node in nodes.nodes.values():
            node.wait_ready(READY_TIMEOUT_S)
        leader = nodes.leader()
        n4 = nodes.members["n4"]
        after = _retried(lambda: leader.add_member(proto_member("n4", n4.raft_address, n4.client_address),
                                                   learner=True, timeout_s=CHANGE_TIMEOUT_S))
        assert [(m.name, m.voter) for m in after.members] == [("n1", True), ("n2", True), ("n3", True),
                                                             ("n4", False)]
        learner = nodes.start("n4", list(leader.members()), since=after.config_index)
        learner.wait_ready(READY_TIMEOUT_S)
        yield nodes
    finally:
        nodes.stop()


def put(node, key: str, timeout_s: float = CHANGE_TIMEOUT_S):
    return node.propose(kv_pb2.PutRequest(key=key.encode(), value=b"v"), timeout_s=timeout_s)


def stale_get(node, key: str) -> bytes:
    return node.query(kv_pb2.GetRequest(key=key.encode(), consistency=kv_pb2.STALE)).kv.value


def caught_up(learner, leader) -> bool:
    return learner.status().applied_index >= leader.status().commit_index


def test_a_learner_holds_every_acknowledged_key_and_does_not_count_for_the_quorum(cluster):
    leader = cluster.leader()
    learner = cluster.nodes["n4"]
    leader.crdt.create_table("carts", "or_set")
    for k in range(KEYS):
        put(leader, f"k{k}")
    put(learner, "through-the-learner")  # forwarded to the leader
    wait_until(lambda: caught_up(learner, leader), "the learner never caught up")
    assert all(stale_get(learner, f"k{k}") == b"v" for k in range(KEYS))
    assert stale_get(leader, "through-the-learner") == b"v"
    assert learner._replica.is_learner() and not leader._replica.is_learner()
    assert learner.member_set() == leader.member_set()
    # The available plane counts the learner as a replica: CRDT writes cross both ways.
    wait_until(lambda: "carts" in learner.available.status().gossip.tables, "the learner never saw the table")
    learner.crdt.update("carts", Add(b"from-learner"))
    leader.crdt.update("carts", Add(b"from-leader"))
    for node in (learner, leader):
        wait_until(lambda: node.crdt.read("carts").value == [b"from-leader", b"from-learner"],
                   f"both adds on {node.config.name}")
    # The learner and one voter stopped: two of three voters still commit
    # (were the learner a voter, two of four would not).
    first, second = [n for n in ("n1", "n2", "n3") if cluster.nodes[n] is not leader]
    cluster.nodes.pop(first).stop()
    cluster.nodes.pop("n4").stop()
    put(leader, "without-the-learner", timeout_s=CHANGE_TIMEOUT_S)
    learner = cluster.start("n4", list(leader.members()))  # restarted from its data dir
    learner.wait_ready(READY_TIMEOUT_S)
    wait_until(lambda: caught_up(learner, leader), "the restarted learner never caught up")
    assert stale_get(learner, "without-the-learner") == b"v" and learner._replica.is_learner()
    # Two voters stopped: the leader and the learner are two of four up, but
    # only voters count, and one of three cannot commit.
    cluster.nodes.pop(second).stop()
    with pytest.raises((errors.Unavailable, errors.OutcomeUnknown)):
        put(leader, "no-quorum", timeout_s=STALLED_WRITE_TIMEOUT_S)
    wait_until(lambda: not leader.status().has_quorum, "the lone voter kept its quorum")
    assert learner.status().role != ROLE_LEADER
    assert learner.status().term <= leader.status().term  # it never started an election of its own


def test_promotion_is_refused_while_the_learner_is_away_and_accepted_once_it_caught_up(cluster):
    leader = cluster.leader()
    n4 = cluster.members["n4"]
    cluster.nodes.pop("n4").stop()
    for k in range(KEYS):
        put(leader, f"k{k}")
    with pytest.raises(FailedPrecondition) as refused:
        leader.promote_member("n4", timeout_s=CHANGE_TIMEOUT_S)
    assert "learner n4" in refused.value.message and "commit index" in refused.value.message
    with pytest.raises(FailedPrecondition, match="voter already"):
        leader.promote_member(leader.config.name, timeout_s=CHANGE_TIMEOUT_S)
    with pytest.raises(FailedPrecondition, match="not a member"):
        leader.promote_member("n9", timeout_s=CHANGE_TIMEOUT_S)
    assert [m.voter for m in leader.member_set().members] == [True, True, True, False]
    # Back (its data dir holds the set naming it a learner), it catches up and is promoted.
    learner = cluster.start("n4", list(leader.members()))
    learner.wait_ready(READY_TIMEOUT_S)
    assert learner._replica.is_learner()
    wait_until(lambda: caught_up(learner, leader), "the learner never caught up")
    promoted = _promote_when_caught_up(leader, "n4")
    assert all(m.voter for m in promoted.members) and len(promoted.members) == 4
    wait_until(lambda: not learner._replica.is_learner(), "n4 never learned it votes")
    assert stale_get(learner, f"k{KEYS - 1}") == b"v"
    assert n4.raft_address not in leader._replica.learner_addresses()
    # 3 of 4 commit: one original voter down, n4's vote makes the majority.
    follower = next(n for n in ("n1", "n2", "n3") if cluster.nodes[n] is not leader)
    cluster.nodes.pop(follower).stop()
    put(leader, "three-of-four")
    # 2 of 4 do not (as a learner n4 would not have mattered: 2 of 3 voters commit).
    cluster.nodes.pop("n4").stop()
    with pytest.raises((errors.Unavailable, errors.OutcomeUnknown)):
        put(leader, "two-of-four", timeout_s=STALLED_WRITE_TIMEOUT_S)


def _retried(change):
    """Runs `change` again while a new leader has not committed an entry of
    its term yet (Unavailable), until CHANGE_TIMEOUT_S."""
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while True:
        try:
            return change()
        except errors.Unavailable as refused:
            assert time.monotonic() < deadline, refused.message
        time.sleep(0.05)


def _promote_when_caught_up(leader, name: str) -> cluster_pb2.MemberSet:
    """Promotes `name`, asking again while it is refused as behind (it may
    still be reconnecting), until CHANGE_TIMEOUT_S."""
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while True:
        try:
            return _retried(lambda: leader.promote_member(name, timeout_s=CHANGE_TIMEOUT_S))
        except FailedPrecondition as refused:
            assert "learner" in refused.message and time.monotonic() < deadline, refused.message
        time.sleep(0.05)


def test_a_learner_joining_after_compaction_installs_a_snapshot_and_follows_a_new_leader(tmp_path):
    nodes = Nodes(tmp_path)
    try:
        first = [nodes.members[n] for n in ("n1", "n2", "n3")]
        for name in ("n1", "n2", "n3"):
            nodes.start(name, first)
        leader = nodes.leader()
        n4 = nodes.members["n4"]
        after = _retried(lambda: leader.add_member(proto_member("n4", n4.raft_address, n4.client_address),
                                                   learner=True, timeout_s=CHANGE_TIMEOUT_S))
        for k in range(KEYS):
            put(leader, f"k{k}")
        leader.compact()
        wait_until(lambda: log_first_index(leader._replica) > after.config_index,
                   "the leader never compacted past the learner's addition")
        learner = nodes.start("n4", list(leader.members()), since=after.config_index)
        learner.wait_ready(READY_TIMEOUT_S)
        wait_until(lambda: caught_up(learner, leader), "the learner never caught up from the snapshot")
        assert stale_get(learner, f"k{KEYS - 1}") == b"v"
        assert learner._replica.is_learner()
        assert learner._replica.learner_addresses() == [n4.raft_address]
        # The leader goes: one of the two voters left leads, and the learner follows it.
        nodes.nodes.pop(leader.config.name).stop()
        new_leader = nodes.leader()
        assert new_leader is not learner and new_leader._replica.learner_addresses() == [n4.raft_address]
        _retried(lambda: put(new_leader, "after-the-leader", timeout_s=CHANGE_TIMEOUT_S))
        wait_until(lambda: caught_up(learner, new_leader), "the learner never followed the new leader")
        assert stale_get(learner, "after-the-leader") == b"v"
        assert learner.status().role != ROLE_LEADER
    finally:
        nodes.stop()
