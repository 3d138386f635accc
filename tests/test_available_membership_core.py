"""The available plane's pure cores following the committed member set,
and the garbage collection of a removed member's state, which is a
function of that set alone (no timer).

Goal: a member added at runtime is gossiped with and converges; a member
removed leaves nothing behind that waits on it or is kept for it (links,
acknowledgements, liveness, delta buffers pinned for it; its presence
entries; its relay cursors) and its frames are refused; what it wrote to
CRDT tables stays (it was acknowledged: merged state is not garbage);
the gossip key without a cluster secret follows the set, and a node
outside the set has no peers.

Method: the cores driven directly with explicit times, over the
in-memory links of tests/test_gossip_protocol.py and
tests/test_presence_core.py; the pub/sub plane's member changes on a
plane that is not started (no stream is dialled).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from tandemkv.errors import NodeRemoved
from tandemkv.server.available.crdt.hlc import MemoryHighWaterMark
from tandemkv.server.available.gossip.protocol import GossipNode
from tandemkv.server.available.node_plane import gossip_key, peer_addresses
from tandemkv.server.available.presence import OwnerId, PresenceEngine
from tandemkv.server.available.pubsub import InboundStreams
from tandemkv.server.available.pubsub_plane import PubSubPlane
from tests.test_gossip_protocol import SECRET, Cluster
from tests.test_presence_core import TTL_MS, exchange

# -- CRDT gossip --------------------------------------------------------------


def grow(cluster: Cluster, name: str) -> None:
    """Adds node `name` and gives every node the grown set."""
    cluster.high_water[name] = MemoryHighWaterMark()
    cluster.nodes[name] = cluster._node(name, 7)
    for node in cluster.nodes.values():
        node.set_members(cluster.high_water)


def shrink(cluster: Cluster, name: str) -> GossipNode:
    """The other nodes apply a set without `name`; returns the removed node,
    still running (it has not learnt of its removal)."""
    removed = cluster.nodes.pop(name)
    del cluster.high_water[name]
    for node in cluster.nodes.values():
        node.set_members(cluster.high_water)
    return removed


def test_a_node_added_at_runtime_gets_every_table_and_its_writes_reach_every_node():
    cluster = Cluster()
    cluster.nodes["a"].mutate(cluster.now_ms, "tags", "add", b"before")
    cluster.converge()
    grow(cluster, "d")
    cluster.nodes["d"].mutate(cluster.now_ms, "tags", "add", b"from-d")
    cluster.converge()
    for node in cluster.nodes.values():
        assert node.read("tags").value() == [b"before", b"from-d"]
        assert sorted(node.status().peers) == sorted(set(cluster.nodes) - {node.node_id})


def test_a_removed_node_is_forgotten_its_frames_refused_and_its_writes_kept():
    cluster = Cluster(names=("a", "b", "c", "d"))
    cluster.nodes["d"].mutate(cluster.now_ms, "tags", "add", b"from-d")
    cluster.nodes["d"].mutate(cluster.now_ms, "hits", "increment", 5)
    cluster.converge()
    removed = shrink(cluster, "d")
    for node in cluster.nodes.values():
        assert "d" not in node.status().peers and "d" not in node._links
        assert node.read("tags").value() == [b"from-d"] and node.read("hits").value() == 5
    # It keeps writing and gossiping (it has not applied its removal): refused everywhere.
    removed.mutate(cluster.now_ms, "tags", "add", b"late")
    cluster.now_ms += 1_000
    for peer, frame in removed.tick(cluster.now_ms):
        assert cluster.nodes[peer].receive(cluster.now_ms, frame) == []
    assert sum(node.status().rejected.get("not_member", 0) for node in cluster.nodes.values()) >= 1
    # The others' writes are acknowledged by the three alone: nothing is buffered for the removed one.
    cluster.nodes["a"].mutate(cluster.now_ms, "tags", "add", b"from-a")
    cluster.converge()
    cluster.exchange(2)
    for node in cluster.nodes.values():
        assert node.read("tags").value() == [b"from-a", b"from-d"]
        assert node.status().tables["tags"].buffered_deltas == 0


def test_a_new_key_keys_frames_from_the_next_round_and_the_old_key_is_refused():
    cluster = Cluster()
    other = b"the key of the next member set"
    for name in ("a", "b"):
        cluster.nodes[name].set_members(cluster.high_water, other)
    a, b, c = (cluster.nodes[name] for name in "abc")
    a.mutate(cluster.now_ms, "tags", "add", b"x")
    cluster.now_ms += 1_000
    pushed = a.tick(cluster.now_ms)  # a round pushes to both peers (fanout 2)
    assert sorted(peer for peer, _ in pushed) == ["b", "c"]
    for peer, frame in pushed:  # c has not applied the new set yet: it holds the old key
        cluster.nodes[peer].receive(cluster.now_ms, frame)
    assert b.status().rejected.get("bad_mac", 0) == 0 and b.status().counters["frames_received"] == 1
    assert c.status().rejected["bad_mac"] == 1


# -- presence -----------------------------------------------------------------

A, B, C = OwnerId("a", 1), OwnerId("b", 1), OwnerId("c", 1)


def test_a_removed_members_presence_entries_leave_at_once_and_its_frames_are_refused():
    engines = {"a": PresenceEngine(A, SECRET, 0, {"b", "c"}), "b": PresenceEngine(B, SECRET, 0, {"a", "c"}),
               "c": PresenceEngine(C, SECRET, 0, {"a", "b"})}
    engines["b"].open_session(1, TTL_MS, 0)
    engines["b"].track(1, b"room", b"bob", b"", 0)
    engines["c"].open_session(1, TTL_MS, 0)
    engines["c"].track(1, b"room", b"cat", b"", 0)
    exchange(engines, [engine.tick(0) for engine in engines.values()], 0)
    assert set(engines["a"].list(b"room")) == {b"bob", b"cat"}

    diffs = engines["a"].set_peers({"b"}, 10)  # the committed set is now a, b
    assert [(d.topic, sorted(d.leaves), sorted(d.joins)) for d in diffs] == [(b"room", [b"cat"], [])]
    assert set(engines["a"].list(b"room")) == {b"bob"}
    assert engines["a"].replica.counters["owners_removed"] == 1
    assert {owner.node for owner in engines["a"].replica.owners()} == {"a", "b"}
    # c, unaware, keeps heartbeating and changing: nothing of it comes back.
    refused = engines["a"].counters["refused_sender"]
    engines["c"].track(1, b"room", b"cat2", b"", 20)
    for peer, data in engines["c"].tick(20).frames:
        if peer == "a":
            assert engines["a"].receive(data, 20).diffs == []
    assert engines["a"].counters["refused_sender"] > refused
    assert set(engines["a"].list(b"room")) == {b"bob"}
    # Nothing lapses by the timer later: c was gone already.
    engines["a"].advance(10 * TTL_MS)
    assert engines["a"].replica.counters["owners_lapsed"] == 1  # b, silent since: the timer's own case


def test_a_node_that_is_not_a_member_has_no_presence_peers():
    engine = PresenceEngine(A, SECRET, 0, {"b"})
    engine.open_session(1, TTL_MS, 0)
    engine.track(1, b"room", b"ann", b"", 0)
    assert engine.set_peers((), 5) == []
    assert engine.tick(5).frames == [] and list(engine.list(b"room")) == [b"ann"]


# -- pub/sub ------------------------------------------------------------------


def test_a_removed_origins_relay_cursors_are_forgotten():
    streams = InboundStreams()
    for origin, incarnation in (("n1", 1), ("n4", 1), ("n4", 2)):
        streams.open(origin, incarnation, from_start=True)
    assert streams.keep_origins({"n1", "n2"}) == 2
    assert list(streams.status()) == [f"n1/{1:016x}"]


def test_the_pubsub_plane_follows_the_member_set_and_refuses_calls_once_retired():
    async def scenario() -> None:
        plane = PubSubPlane("n1", {"n2": "127.0.0.1:1", "n3": "127.0.0.1:2"}, SECRET)
        old_n3 = plane.senders["n3"]
        await plane.set_peers({"n2": "127.0.0.1:1", "n3": "127.0.0.1:9", "n4": "127.0.0.1:4"}, SECRET)
        assert sorted(plane.senders) == ["n2", "n3", "n4"] and plane.senders["n3"] is not old_n3
        assert plane.receiver.members == {"n1", "n2", "n3", "n4"}
        plane.receiver.streams.open("n4", 1, from_start=True)
        await plane.set_peers({"n2": "127.0.0.1:1"}, b"a new key")
        assert sorted(plane.senders) == ["n2"] and plane.senders["n2"].secret == b"a new key"
        assert plane.receiver.members == {"n1", "n2"} and plane.receiver.streams.status() == {}
        await plane.retire("node n1 was removed from the cluster")
        with pytest.raises(NodeRemoved, match="n1 was removed"):
            plane.publish(b"t", b"x")
        with pytest.raises(NodeRemoved):
            plane.subscribe((b"t",))
    asyncio.run(scenario())


# -- the node's view of the set -------------------------------------------------


def member(name: str, port: int) -> SimpleNamespace:
    return SimpleNamespace(name=name, raft_address=f"127.0.0.1:{port}", client_address=f"127.0.0.1:{port + 1}")


def test_peers_are_the_other_members_and_none_for_a_node_outside_the_set():
    members = [member("n1", 10), member("n2", 20), member("n3", 30)]
    assert peer_addresses("n1", members) == {"n2": "127.0.0.1:21", "n3": "127.0.0.1:31"}
    assert peer_addresses("n4", members) == {}


def test_the_gossip_key_without_a_secret_follows_the_member_set_and_with_one_never_changes():
    three = [member("n1", 10), member("n2", 20), member("n3", 30)]
    four = [*three, member("n4", 40)]
    plain = SimpleNamespace(cluster_secret="", members=three)
    assert gossip_key(plain) == gossip_key(plain, list(reversed(three)))
    assert gossip_key(plain, four) != gossip_key(plain, three)
    secret = SimpleNamespace(cluster_secret="s3cret", members=three)
    assert gossip_key(secret, four) == gossip_key(secret, three)
