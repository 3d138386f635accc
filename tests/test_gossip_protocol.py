"""The gossip protocol, one rule at a time, over a perfect in-memory link.

Method: a few GossipNode instances share a virtual clock; `exchange`
delivers every frame at once (or drops those a test cuts off), then the
test reads status() and the tables. Forged, misdirected, stale and
far-future frames are built with the real wire code."""

from __future__ import annotations

import dataclasses
import random

import pytest

from tandemkv import limits
from tandemkv.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from tandemkv.server.available.crdt.kinds import Origin, TableKind, encode_crdt
from tandemkv.server.available.gossip.protocol import GossipConfig, GossipNode, Outgoing
from tandemkv.server.available.gossip.liveness import PeerState
from tandemkv.server.available.gossip.wire import (Chunk, Message, MessageKind, Section,
                                                   open_frame, seal)
from tandemkv.server.available.crdt.hlc import Hlc, HybridClock, MemoryHighWaterMark

SECRET = b"cluster-secret"
INTERVAL_MS = 1_000
TABLES = {"hits": TableKind.PN_COUNTER, "tags": TableKind.OR_SET, "names": TableKind.AW_LWW_MAP}


class Cluster:
    def __init__(self, names=("a", "b", "c"), config: GossipConfig = GossipConfig(),
                 seed: int = 1) -> None:
        self.now_ms = 0
        self.config = config
        self.high_water = {name: MemoryHighWaterMark() for name in names}
        self.nodes = {name: self._node(name, index + seed) for index, name in enumerate(names)}
        self.cut: set[str] = set()
        self.frames: list[Outgoing] = []

    def _node(self, name: str, seed: int, tables: dict[str, bytes] | None = None) -> GossipNode:
        node = GossipNode(name, SECRET, random.Random(seed), HybridClock(self.high_water[name]),
                          self.now_ms, self.config)
        node.set_members(self.high_water)
        for table, kind in TABLES.items():
            node.create_table(table, kind, (tables or {}).get(table))
        return node

    def restart(self, name: str) -> None:
        old = self.nodes[name]
        saved = {table: old.encoded_table(table) for table in TABLES}
        self.nodes[name] = self._node(name, 99, saved)

    def exchange(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            self.now_ms += INTERVAL_MS
            queue = [out for node in self.nodes.values() for out in node.tick(self.now_ms)]
            while queue:
                out = queue.pop(0)
                self.frames.append(out)
                sender = open_frame(out.frame, SECRET, 1 << 30).sender
                if out.peer in self.cut or sender in self.cut:
                    continue
                queue += self.nodes[out.peer].receive(self.now_ms, out.frame)

    def digests(self) -> set[tuple]:
        return {tuple(table.digest for table in node.status().tables.values())
                for name, node in self.nodes.items() if name not in self.cut}

    def converge(self, rounds_max: int = 10) -> int:
        for rounds in range(1, rounds_max + 1):
            self.exchange()
            if len(self.digests()) == 1:
                return rounds
        raise AssertionError(f"no convergence in {rounds_max} rounds")


def forged(sender: str, recipient: str, stamp: Hlc, sections=(), secret: bytes = SECRET) -> bytes:
    message = Message(MessageKind.FINAL, sender, recipient, Hlc(1, 0), None, stamp,
                      {sender: stamp}, tuple(sections))
    return seal(message, secret)


def test_writes_on_every_node_reach_every_node():
    cluster = Cluster()
    cluster.nodes["a"].mutate(0, "hits", "increment", 5)
    cluster.nodes["b"].mutate(0, "tags", "add", b"x")
    cluster.nodes["c"].mutate(0, "names", "put", b"k", b"v")
    cluster.converge(rounds_max=5)
    for node in cluster.nodes.values():
        assert node.read("hits").value() == 5
        assert node.read("tags").value() == [b"x"]
        assert node.read("names").value() == {b"k": b"v"}


def test_after_the_first_sync_writes_travel_as_deltas_and_equal_tables_send_no_payload():
    cluster = Cluster()
    cluster.nodes["a"].mutate(0, "tags", "add", b"x")
    cluster.converge()
    cluster.exchange(rounds=2)
    before = {name: node.status().counters for name, node in cluster.nodes.items()}
    first = len(cluster.frames)
    cluster.exchange(rounds=3)
    for name, node in cluster.nodes.items():
        counters = node.status().counters
        assert counters.get("deltas_sent", 0) == before[name].get("deltas_sent", 0)
        assert counters.get("full_states_sent", 0) == before[name].get("full_states_sent", 0)
    quiet = cluster.frames[first:]
    assert quiet and all(len(out.frame) < 600 for out in quiet)
    cluster.nodes["b"].mutate(cluster.now_ms, "tags", "add", b"y")
    cluster.converge()
    assert cluster.nodes["b"].status().counters["deltas_sent"] >= 1
    assert cluster.nodes["b"].status().counters.get("full_states_sent", 0) == \
        before["b"].get("full_states_sent", 0)


def test_a_peer_too_far_behind_the_delta_buffer_gets_the_whole_state():
    cluster = Cluster(config=GossipConfig(delta_buffer_entries_max=4))
    cluster.converge()
    cluster.exchange(rounds=2)
    cluster.cut = {"c"}
    for step in range(10):
        cluster.nodes["a"].mutate(cluster.now_ms, "tags", "add", b"e%d" % step)
    cluster.exchange(rounds=2)
    assert cluster.nodes["a"].status().tables["tags"].buffered_deltas <= 4
    full_before = sum(n.status().counters.get("full_states_sent", 0) for n in cluster.nodes.values())
    cluster.cut = set()
    cluster.converge()
    full_after = sum(n.status().counters.get("full_states_sent", 0) for n in cluster.nodes.values())
    assert full_after > full_before
    assert len(cluster.nodes["c"].read("tags").value()) == 10


def test_large_states_travel_in_frames_within_the_size_limit():
    cluster = Cluster(config=GossipConfig(message_bytes_max=4_096))
    for step in range(300):
        cluster.nodes["a"].mutate(0, "names", "put", b"key-%03d" % step, b"v" * 40)
    cluster.converge()
    assert max(len(out.frame) for out in cluster.frames) <= 4_096
    assert len(cluster.nodes["c"].read("names").value()) == 300
    assert any(out for out in cluster.frames if len(out.frame) > 3_000), "chunks were needed"


def test_a_frame_with_a_bad_mac_is_rejected_counted_and_changes_nothing():
    cluster = Cluster()
    target = cluster.nodes["b"]
    payload = cluster.nodes["a"].read("names").put(Origin("a", Hlc(1, 0)), b"k", b"evil")
    section = Section("names", TableKind.AW_LWW_MAP, b"\x00" * 16, 1, None, False,
                      Chunk(1, False, 1, 0, 1, encode_crdt(payload)))
    wrong_key = forged("a", "b", Hlc(1, 0), [section], secret=b"not-the-secret")
    tampered = bytearray(forged("a", "b", Hlc(1, 0), [section]))
    tampered[-3] ^= 0x01
    assert target.receive(0, wrong_key) == [] and target.receive(0, bytes(tampered)) == []
    assert target.status().rejected == {"bad_mac": 2}
    assert target.read("names").value() == {}
    assert target.receive(0, forged("a", "b", Hlc(1, 0), [section])) == []
    assert target.read("names").value() == {b"k": b"evil"}, "the same frame, sealed, is taken"


def test_a_frame_stamped_too_far_in_the_future_is_rejected():
    cluster = Cluster()
    target = cluster.nodes["b"]
    drift = limits.CLOCK_DRIFT_MS_MAX
    target.receive(1_000, forged("a", "b", Hlc(1_000 + drift + 1, 0)))
    assert target.status().rejected == {"clock_drift": 1}
    target.receive(1_000, forged("a", "b", Hlc(1_000 + drift, 0)))
    assert target.status().rejected == {"clock_drift": 1}
    assert target.status().counters["frames_received"] == 1


def test_a_write_stamped_too_far_in_the_future_is_rejected_even_in_a_fresh_frame():
    cluster = Cluster()
    target = cluster.nodes["b"]
    future = Hlc(5_000 + limits.CLOCK_DRIFT_MS_MAX + 1, 0)
    payload = target.read("names").put(Origin("a", future), b"k", b"from-the-future")
    section = Section("names", TableKind.AW_LWW_MAP, b"\x00" * 16, 1, None, False,
                      Chunk(1, False, 1, 0, 1, encode_crdt(payload)))
    target.receive(5_000, forged("a", "b", Hlc(5_000, 0), [section]))
    assert target.status().rejected == {"clock_drift": 1}
    assert target.read("names").value() == {}


def test_misdirected_foreign_and_removed_senders_are_rejected():
    cluster = Cluster()
    target = cluster.nodes["b"]
    target.receive(0, forged("a", "c", Hlc(1, 0)))
    target.receive(0, forged("mallory", "b", Hlc(1, 0)))
    assert target.status().rejected == {"wrong_recipient": 1, "not_member": 1}
    cluster.exchange(rounds=2)
    assert "c" in target.status().peers
    target.set_members(["a", "b"])
    assert set(target.status().peers) == {"a"}
    target.receive(cluster.now_ms, forged("c", "b", Hlc(cluster.now_ms, 0)))
    assert target.status().rejected["not_member"] == 2


def test_frames_from_an_earlier_incarnation_are_rejected_after_a_restart():
    cluster = Cluster()
    cluster.exchange(rounds=2)
    old_frame = cluster.nodes["a"].tick(cluster.now_ms + INTERVAL_MS)
    cluster.restart("a")
    cluster.exchange(rounds=2)
    b_frames = [out.frame for out in old_frame if out.peer == "b"]
    assert b_frames, "a pushed to b in that round"
    cluster.nodes["b"].receive(cluster.now_ms, b_frames[0])
    assert cluster.nodes["b"].status().rejected == {"stale_incarnation": 1}


def test_a_restarted_node_keeps_its_writes_and_never_reuses_a_dot():
    cluster = Cluster()
    cluster.nodes["a"].mutate(0, "tags", "add", b"before")
    cluster.converge()
    cluster.restart("a")
    restarted = cluster.nodes["a"]
    assert restarted.read("tags").value() == [b"before"]
    cluster.nodes["a"].mutate(cluster.now_ms, "tags", "add", b"after")
    cluster.nodes["b"].mutate(cluster.now_ms, "tags", "remove", b"before")
    cluster.converge()
    for node in cluster.nodes.values():
        assert node.read("tags").value() == [b"after"]


def test_peers_become_suspect_then_dead_and_come_back_alive():
    config = GossipConfig(suspect_after_rounds=2, dead_after_rounds=4)
    cluster = Cluster(config=config)
    cluster.exchange(rounds=2)
    assert cluster.nodes["a"].status().peers["c"].state == PeerState.ALIVE
    cluster.cut = {"c"}
    cluster.exchange(rounds=2)
    assert cluster.nodes["a"].status().peers["c"].state == PeerState.SUSPECT
    cluster.exchange(rounds=2)
    assert cluster.nodes["a"].status().peers["c"].state == PeerState.DEAD
    assert cluster.nodes["a"].status().peers["b"].state == PeerState.ALIVE
    cluster.cut = set()
    cluster.exchange(rounds=2)
    assert cluster.nodes["a"].status().peers["c"].state == PeerState.ALIVE


def test_nodes_without_tables_still_hear_each_other():
    cluster = Cluster(config=GossipConfig(suspect_after_rounds=2, dead_after_rounds=4))
    for node in cluster.nodes.values():
        for table in TABLES:
            node.drop_table(table)
    cluster.exchange(rounds=6)
    peers = cluster.nodes["a"].status().peers
    assert {name: peer.state for name, peer in peers.items()} == {"b": PeerState.ALIVE,
                                                                "c": PeerState.ALIVE}
    assert all(peer.heartbeat is not None for peer in peers.values())


def test_table_and_mutation_errors_name_the_problem():
    node = Cluster().nodes["a"]
    with pytest.raises(FailedPrecondition):
        node.mutate(0, "hits", "add", b"x")
    with pytest.raises(NotFound):
        node.mutate(0, "missing", "increment", 1)
    with pytest.raises(AlreadyExists):
        node.create_table("hits", TableKind.OR_SET)
    node.create_table("hits", TableKind.PN_COUNTER)  # idempotent
    with pytest.raises(InvalidArgument):
        node.create_table("x" * (limits.CRDT_TABLE_NAME_BYTES_MAX + 1), TableKind.OR_SET)


def test_sections_for_unknown_tables_are_ignored_and_counted():
    cluster = Cluster()
    cluster.nodes["a"].create_table("only-on-a", TableKind.G_COUNTER)
    cluster.nodes["a"].mutate(0, "only-on-a", "increment", 1)
    cluster.exchange(rounds=2)
    assert sum(node.status().ignored.get("unknown_table", 0)
               for name, node in cluster.nodes.items() if name != "a") > 0
    assert "only-on-a" not in cluster.nodes["b"].tables()


def test_changed_tables_are_reported_once_for_persistence():
    cluster = Cluster()
    cluster.nodes["a"].mutate(0, "hits", "increment", 1)
    assert cluster.nodes["a"].take_changed() == {"hits"}
    assert cluster.nodes["a"].take_changed() == set()
    cluster.converge()
    assert cluster.nodes["b"].take_changed() == {"hits"}


def test_a_sealed_frame_opens_to_the_same_message():
    message = Message(MessageKind.PUSH, "a", "b", Hlc(1, 2), Hlc(3, 4), Hlc(5, 6), {"a": Hlc(5, 6)},
                      (Section("t", TableKind.OR_SET, b"d" * 16, 3, 2, True,
                               Chunk(7, True, 3, 0, 2, b"xyz")),))
    assert open_frame(seal(message, SECRET), SECRET, 1 << 20) == message
    assert dataclasses.replace(message, kind=MessageKind.FINAL) != message
