"""The keyed-table sync protocol, case by case, and 10,000 keys through it.

Method: KeyedSync nodes fed frames by hand (tests/support/keyed_network.py
where a case needs traffic): what equal tables cost, what a forged,
misaddressed, far-future or malformed frame does (nothing, counted by
reason), and a partition that diverges 500 of 10,000 keys and heals
within a bounded number of rounds, every frame within its limits and the
repair far smaller than the table."""

from __future__ import annotations

import random

import pytest

from tandemkv import limits
from tandemkv.errors import AlreadyExists, NotFound
from tandemkv.server.available.crdt.hlc import Hlc, HybridClock, MemoryHighWaterMark
from tandemkv.server.available.crdt.keyed import encode_state
from tandemkv.server.available.crdt.kinds import AWLWWMap, Origin, TableKind
from tandemkv.server.available.gossip.keyed_sync import KeyedSync
from tandemkv.server.available.gossip.keyed_wire import KeyedMessage, KeyedMessageKind, seal
from tandemkv.server.available.gossip.protocol import GossipNode
from tests.support.keyed_network import SECRET, KeyedNetwork

NOW_MS = 1_000_000


def node(name: str, members=("a", "b", "c"), kind=TableKind.AW_LWW_MAP) -> KeyedSync:
    sync = KeyedSync(name, SECRET, random.Random(name), HybridClock(MemoryHighWaterMark()), NOW_MS)
    sync.set_members(members)
    sync.create_table("users", kind)
    return sync


def entries_frame(sender: str, recipient: str, entries, kind=TableKind.AW_LWW_MAP) -> bytes:
    message = KeyedMessage(KeyedMessageKind.ENTRIES, sender, recipient, Hlc(NOW_MS, 0), "users", kind,
                           entries=tuple(entries))
    return seal(message, SECRET)


def map_state(wall_ms: int) -> bytes:
    state = AWLWWMap()
    state.merge(state.put(Origin("b", Hlc(wall_ms, 0)), b"name", b"Bob"))
    return encode_state(state)


def test_an_exchange_between_equal_tables_costs_one_frame_of_one_digest():
    first, second = node("a"), node("b")
    for number in range(100):
        first.mutate(NOW_MS, "users", b"user:%d" % number, "put", b"name", b"Ann")
    for out in first.flush():
        if out.peer == "b":
            second.receive(NOW_MS, out.frame)
    opening = [out for out in first.tick(NOW_MS) if out.peer == "b"]
    assert len(opening) == 1
    assert second.receive(NOW_MS, opening[0].frame) == []
    assert first.status().tables["users"].root == second.status().tables["users"].root


def test_a_write_is_pushed_to_every_member_at_the_next_round_and_reported_as_changed_there():
    first, second, third = node("a"), node("b"), node("c")
    first.mutate(NOW_MS, "users", b"user:9", "put", b"name", b"Ann")
    for out in first.tick(NOW_MS):
        {"b": second, "c": third}[out.peer].receive(NOW_MS, out.frame)
    assert second.read("users", b"user:9") == third.read("users", b"user:9") == {b"name": b"Ann"}
    assert second.take_changed() == {("users", b"user:9")}
    first.mutate(NOW_MS, "users", b"user:10", "put", b"name", b"Bob")
    for out in first.tick(NOW_MS + 1_000):
        {"b": second, "c": third}[out.peer].receive(NOW_MS, out.frame)
    assert second.take_changed() == {("users", b"user:10")}, "every later change is reported too"
    assert second.take_changed() == set()


@pytest.mark.parametrize("case", ["bad_mac", "wrong_recipient", "not_member", "clock_drift", "bad_payload",
                                  "bad_version"])
def test_a_frame_that_must_not_be_trusted_changes_nothing_and_is_counted_by_reason(case):
    target = node("a") if case != "not_member" else node("a", members=("a", "c"))
    good = (b"user:1", map_state(NOW_MS))
    frame = entries_frame("b", "a", [good])
    if case == "bad_mac":
        frame = frame[:-1] + bytes([frame[-1] ^ 1])
    elif case == "wrong_recipient":
        frame = entries_frame("b", "c", [good])
    elif case == "clock_drift":
        frame = entries_frame("b", "a", [good, (b"user:2", map_state(NOW_MS + limits.CLOCK_DRIFT_MS_MAX + 1))])
    elif case == "bad_payload":
        frame = entries_frame("b", "a", [good, (b"user:2", b"\x07\x00")])
    elif case == "bad_version":
        gossip = GossipNode("b", SECRET, random.Random(1), HybridClock(MemoryHighWaterMark()), NOW_MS)
        gossip.set_members(["a", "b"])
        frame = gossip.tick(NOW_MS)[0].frame
    assert target.receive(NOW_MS, frame) == []
    assert target.status().rejected == {case: 1}
    assert target.table("users").is_empty(), "nothing of a rejected frame is merged"
    accepted = entries_frame("b" if case != "not_member" else "c", "a", [good])
    target.receive(NOW_MS, accepted)
    assert target.read("users", b"user:1") == {b"name": b"Bob"}


def test_whole_table_gossip_refuses_keyed_frames_too():
    gossip = GossipNode("a", SECRET, random.Random(1), HybridClock(MemoryHighWaterMark()), NOW_MS)
    gossip.set_members(["a", "b"])
    assert gossip.receive(NOW_MS, entries_frame("b", "a", [(b"k", map_state(NOW_MS))])) == []
    assert gossip.status().rejected == {"bad_version": 1}


def test_frames_for_a_table_held_as_another_kind_are_ignored():
    target = node("a", kind=TableKind.OR_SET)
    target.receive(NOW_MS, entries_frame("b", "a", [(b"k", map_state(NOW_MS))]))
    assert target.status().ignored == {"kind_mismatch": 1}
    assert target.table("users").is_empty()


def test_tables_are_named_errors_when_missing_or_of_another_kind():
    sync = node("a")
    with pytest.raises(NotFound, match="no keyed CRDT table 'nope'"):
        sync.mutate(NOW_MS, "nope", b"k", "put", b"f", b"v")
    with pytest.raises(AlreadyExists, match="exists as a aw_lww_map"):
        sync.create_table("users", TableKind.OR_SET)
    sync.create_table("users", TableKind.AW_LWW_MAP)  # the same kind again is a no-op


def test_ten_thousand_keys_heal_a_five_hundred_key_divergence_in_bounded_frames():
    network = KeyedNetwork(("n1", "n2", "n3"), {"users": TableKind.AW_LWW_MAP}, seed=3)
    writer = network.nodes["n1"]
    for number in range(10_000):
        writer.mutate(network.now_ms, "users", b"user:%05d" % number, "put", b"name", b"u%d" % number)
    assert network.rounds_to_converge(3) is not None, "the eager push carries 10,000 fresh keys"
    network.groups = [{"n1", "n2"}, {"n3"}]
    rng = random.Random(5)
    for number in rng.sample(range(10_000), 300):
        network.nodes["n1"].mutate(network.now_ms, "users", b"user:%05d" % number, "put", b"city", b"Oslo")
    for number in range(10_000, 10_100):
        network.nodes["n3"].mutate(network.now_ms, "users", b"user:%05d" % number, "put", b"name", b"new")
    for number in rng.sample(range(10_000), 100):
        network.nodes["n3"].remove(network.now_ms, "users", b"user:%05d" % number)
    network.run_until(network.now_ms + 3 * network.config.round_interval_ms)  # pushes lost in the cut
    assert not network.converged()
    network.groups = []
    before = network.traffic.bytes
    rounds = network.rounds_to_converge(10)
    assert rounds is not None, "not converged 10 rounds after the heal"
    tables = [sync.table("users") for sync in network.nodes.values()]
    assert tables[0] == tables[1] == tables[2] and len(tables[0]) == 10_100
    full_state_bytes = sum(len(key) + len(data) for key, data in tables[0].items_encoded())
    repair_bytes = network.traffic.bytes - before
    assert repair_bytes < full_state_bytes // 2, (repair_bytes, full_state_bytes)
    traffic = network.traffic
    assert traffic.largest_frame_bytes <= limits.UDP_FRAME_BYTES_MAX
    assert traffic.most_keys_in_a_frame <= limits.KEYED_SYNC_FRAME_KEYS_MAX
    assert traffic.most_digests_in_a_frame <= limits.KEYED_SYNC_FRAME_DIGESTS_MAX


def test_a_one_key_table_heals_in_four_frames_by_listing_instead_of_descending():
    first, second = node("a"), node("b")
    first.mutate(NOW_MS, "users", b"", "put", b"name", b"Ann")
    first.flush()  # the push is lost: only the exchange can heal it
    frames = [out for out in second.tick(NOW_MS) if out.peer == "a"]
    sent = len(frames)
    for _ in range(10):
        replies = []
        for out in frames:
            replies += (first if out.peer == "a" else second).receive(NOW_MS, out.frame)
        frames = [out for out in replies if out.peer in ("a", "b")]
        sent += len(frames)
        if not frames:
            break
    assert second.read("users", b"") == {b"name": b"Ann"}
    assert sent == 4, "the root, the listed key, the request for its state, the state"


def test_a_rounds_exchanges_go_to_live_members_and_one_dead_one():
    sync = node("a", members=("a", "b", "c", "d", "e"))
    sync.set_dead(["d", "e", "not-a-member"])
    for round_number in range(20):
        targets = [peer for peer, _ in sync.tick(NOW_MS + round_number * 1_000)]
        assert len(targets) == 3
        assert len(set(targets) & {"d", "e"}) == 1 and set(targets) - {"d", "e"} == {"b", "c"}
    sync.set_dead([])
    assert len(sync.tick(NOW_MS + 100_000)) == 2
