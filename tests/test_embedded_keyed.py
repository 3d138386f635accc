"""Keyed CRDT tables through the embedded `Node` (`node.crdt`), on three
members in this process (127.0.0.1): one table holds far more keys than
CRDT_TABLES_MAX would allow tables; 10,000 keys written across the nodes
converge on every node; a gossip partition lets both sides write and
heals to the join; a prefix subscription gets the changed keys and only
those, and one that falls CRDT_KEY_FEED_PENDING_KEYS_MAX keys behind is
told to resync; a dropped table ends its subscriptions; a key names its
shape (a key on a single-value table, none on a keyed one, is refused
naming what to do); keys survive a restart.

Method: `tests.test_embedded_node.Cluster`; cross-node checks poll until
they hold or a deadline passes (keyed gossip rounds are 1 s). The
partition drops gossip datagrams between the two sides at the sender
(each plane's transport), so Raft is untouched and the CRDT plane sees
exactly a cut."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from tandemkv.server.node.crdt import Add, Assign, Increment, Put, TableKind
from tests.test_embedded_coordination import wait_until
from tests.test_embedded_node import Cluster

KEYS_IN_CI = 10_000
WRITERS_PER_NODE = 4
# Keyed exchanges heal about 600 keys per round at worst; 10,000 keys pushed
# eagerly need a round or two, plus the first catalog poll.
CONVERGE_TIMEOUT_S = 60.0
SUBSCRIBE_WAIT_S = 15.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("keyed"))
    c.start()
    yield c
    c.stop()


def create_after_restarts(node, table: str, kind: TableKind) -> None:
    """Creates `table` through `node`, again while it answers Unavailable
    (not applied: safe to send again). The tests before restart n0, and a
    restarted member may start an election that discards a write in flight."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while True:
        try:
            node.crdt.create_table(table, kind, keyed=True)
            return
        except Unavailable:
            assert time.monotonic() < deadline, f"{table} was never created"
            time.sleep(0.05)


def key_count_everywhere(cluster, table: str) -> dict[str, int]:
    counts = {}
    for name, node in cluster.nodes.items():
        try:
            status = node.crdt.status().keyed.tables.get(table)
        except NotFound:
            status = None
        counts[name] = 0 if status is None else status.keys
    return counts


def roots_everywhere(cluster, table: str) -> set[str]:
    return {(node.crdt.status().keyed.tables.get(table) or type("x", (), {"root": "missing"})).root
            for node in cluster.nodes.values()}


def test_a_keyed_table_holds_a_value_per_key_and_refuses_the_other_shape(cluster):
    a, b, _ = cluster.nodes.values()
    assert a.crdt.create_table("profiles", TableKind.AW_LWW_MAP, keyed=True).created
    assert a.crdt.create_table("profiles", "aw_lww_map", keyed=True).created is False
    with pytest.raises(FailedPrecondition, match="keyed table"):
        a.crdt.create_table("profiles", TableKind.AW_LWW_MAP)
    a.crdt.update("profiles", Put(b"name", b"Ann"), key=b"user:ann")
    a.crdt.update("profiles", Put(b"name", b"Bob"), key=b"user:bob")
    assert a.crdt.read("profiles", b"user:ann").value == {b"name": b"Ann"}
    assert a.crdt.read("profiles", b"user:zed").value is None
    wait_until(lambda: b.crdt.read("profiles", b"user:bob").value == {b"name": b"Bob"}, 15,
               "user:bob on n1")
    with pytest.raises(FailedPrecondition, match="keyed table: name the key"):
        a.crdt.read("profiles")
    with pytest.raises(FailedPrecondition, match="scan_keys"):
        a.crdt.scan("profiles")
    a.crdt.create_table("single", TableKind.OR_SET)
    with pytest.raises(FailedPrecondition, match="single-value table"):
        a.crdt.update("single", Add(b"x"), key=b"k")
    with pytest.raises(InvalidArgument, match="KEYED_KEY_BYTES_MAX|limit is 256"):
        a.crdt.update("profiles", Put(b"f", b"v"), key=b"k" * (limits.KEYED_KEY_BYTES_MAX + 1))
    a.crdt.remove_entry("profiles", b"user:bob")
    assert a.crdt.read("profiles", b"user:bob").value is None
    page = a.crdt.scan_keys("profiles", b"user:")
    assert [(v.key, v.value) for v in page.values] == [(b"user:ann", {b"name": b"Ann"})]
    assert page.resume_after is None


def test_counters_refuse_removal_of_a_key(cluster):
    a = cluster.nodes["n0"]
    a.crdt.create_table("visits", TableKind.PN_COUNTER, keyed=True)
    a.crdt.update("visits", Increment(3), key=b"page:/")
    with pytest.raises(FailedPrecondition, match="cannot be removed"):
        a.crdt.remove_entry("visits", b"page:/")
    assert a.crdt.read("visits", b"page:/").value == 3


def test_ten_thousand_keys_written_across_nodes_converge_on_every_node(cluster):
    nodes = list(cluster.nodes.values())
    nodes[0].crdt.create_table("users", TableKind.AW_LWW_MAP, keyed=True)
    assert KEYS_IN_CI > limits.CRDT_TABLES_MAX  # one table holds what 256 tables could not

    def write(worker: int) -> None:
        node = nodes[worker % len(nodes)]
        for index in range(worker, KEYS_IN_CI, len(nodes) * WRITERS_PER_NODE):
            wait_known = time.monotonic() + 10
            while True:
                try:
                    node.crdt.update("users", Put(b"n", str(index).encode()), key=b"user:%06d" % index)
                    break
                except NotFound:  # this node has not followed the catalog yet
                    assert time.monotonic() < wait_known, "the table appears on every node"
                    time.sleep(0.05)

    with concurrent.futures.ThreadPoolExecutor(len(nodes) * WRITERS_PER_NODE) as pool:
        list(pool.map(write, range(len(nodes) * WRITERS_PER_NODE)))
    wait_until(lambda: set(key_count_everywhere(cluster, "users").values()) == {KEYS_IN_CI}
               and len(roots_everywhere(cluster, "users")) == 1, CONVERGE_TIMEOUT_S,
               f"{KEYS_IN_CI} keys on every node (last: {key_count_everywhere(cluster, 'users')})")
    for node in nodes:
        assert node.crdt.read("users", b"user:%06d" % 4321).value == {b"n": b"4321"}
        page = node.crdt.scan_keys("users", b"user:0099", limit=100)
        assert [v.key for v in page.values] == [b"user:%06d" % i for i in range(9900, 10000)]


def test_a_prefix_subscription_gets_the_changed_keys_and_only_those(cluster):
    a, b, _ = cluster.nodes.values()
    a.crdt.create_table("rooms", TableKind.OR_SET, keyed=True)
    stop = threading.Event()
    received: list = []
    subscribed = threading.Event()

    def follow() -> None:
        for value in b.crdt.subscribe("rooms", stop, prefix=b"room:1:"):
            received.append(value)
            subscribed.set()

    wait_until(lambda: "rooms" in b.available.tables(), 10, "rooms known on n1")
    thread = threading.Thread(target=follow)
    thread.start()
    try:
        assert subscribed.wait(SUBSCRIBE_WAIT_S)
        assert received[0].resync and received[0].value is None
        a.crdt.update("rooms", Add(b"ann"), key=b"room:1:members")
        a.crdt.update("rooms", Add(b"bob"), key=b"room:2:members")  # not followed
        a.crdt.update("rooms", Add(b"cyd"), key=b"room:1:members")
        wait_until(lambda: any(v.key == b"room:1:members" and v.value == [b"ann", b"cyd"] for v in received),
                   SUBSCRIBE_WAIT_S, f"the change on n1's subscription (got {received})")
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert {v.key for v in received[1:]} == {b"room:1:members"}
    assert all(isinstance(v.value, list) for v in received[1:])  # a key's value, never the table's


def test_a_gossip_partition_heals_to_the_join_of_both_sides(cluster):
    nodes = cluster.nodes
    nodes["n0"].crdt.create_table("carts", TableKind.OR_SET, keyed=True)
    wait_until(lambda: all("carts" in n.available.tables() for n in nodes.values()), 10, "carts everywhere")
    cut = {"n2"}
    originals = {}
    for name, node in nodes.items():
        transport = node.available._transport
        original = originals[name] = transport.send

        def send(outgoing, original=original, inside=name in cut):
            original([(peer, frame) for peer, frame in outgoing if (peer in cut) == inside])
        transport.send = send
    try:
        for index in range(200):
            nodes["n0"].crdt.update("carts", Add(b"a%d" % index), key=b"cart:%d" % (index % 50))
            nodes["n2"].crdt.update("carts", Add(b"c%d" % index), key=b"cart:%d" % (index % 70))
        assert nodes["n2"].crdt.read("carts", b"cart:60").value == [b"c130", b"c60"]
        assert nodes["n1"].crdt.read("carts", b"cart:60").value is None
    finally:
        for name, node in nodes.items():
            node.available._transport.send = originals[name]
    expected = {b"a%d" % i for i in range(200) if i % 50 == 3} | {b"c%d" % i for i in range(200) if i % 70 == 3}
    wait_until(lambda: all(set(n.crdt.read("carts", b"cart:3").value or ()) == expected for n in nodes.values())
               and len(roots_everywhere(cluster, "carts")) == 1, CONVERGE_TIMEOUT_S,
               "every node holds the join after the heal")


def test_keys_survive_a_restart(cluster):
    a = cluster.nodes["n0"]
    a.crdt.create_table("sessions", TableKind.LWW_REGISTER, keyed=True)
    a.crdt.update("sessions", Assign(b"tok"), key=b"s:1")
    cluster.stop("n0")
    cluster.start("n0")
    assert cluster.nodes["n0"].crdt.read("sessions", b"s:1").value == b"tok"


def test_dropping_a_keyed_table_ends_its_subscriptions_with_not_found(cluster):
    a = cluster.nodes["n0"]
    create_after_restarts(a, "scratch", TableKind.OR_SET)
    a.crdt.update("scratch", Add(b"m"), key=b"k")
    values = a.crdt.subscribe("scratch", key=b"k")
    assert next(values).value == [b"m"]
    a.crdt.drop_table("scratch")
    with pytest.raises(NotFound, match="scratch"):
        next(values)
    values.close()
    a.crdt.create_table("single", TableKind.OR_SET)
    with pytest.raises(FailedPrecondition, match="single-value"):
        next(a.crdt.subscribe("single", key=b"k"))


def test_a_subscriber_that_falls_behind_is_told_to_resync_never_silently_skipped(cluster):
    b = cluster.nodes["n1"]
    create_after_restarts(b, "burst", TableKind.OR_SET)
    values = b.crdt.subscribe("burst", prefix=b"")
    try:
        assert next(values).resync  # the start: scan from here
        keys = limits.CRDT_KEY_FEED_PENDING_KEYS_MAX + 1

        def write(worker: int) -> None:
            for index in range(worker, keys, WRITERS_PER_NODE):
                b.crdt.update("burst", Add(b"m"), key=b"k%06d" % index)

        with concurrent.futures.ThreadPoolExecutor(WRITERS_PER_NODE) as pool:
            list(pool.map(write, range(WRITERS_PER_NODE)))
        # Every key is saved; the subscriber has taken none of them.
        overflowed = next(values)
        assert overflowed.resync and overflowed.value is None
        b.crdt.update("burst", Add(b"n"), key=b"after")
        following = next(values)
        assert (following.key, following.value, following.resync) == (b"after", [b"n"], False)
    finally:
        values.close()


def test_a_keyed_table_dropped_and_created_again_starts_empty_after_a_restart(cluster):
    a = cluster.nodes["n0"]
    create_after_restarts(a, "again", TableKind.OR_SET)
    a.crdt.update("again", Add(b"old"), key=b"k")
    a.crdt.drop_table("again")
    a.crdt.create_table("again", TableKind.OR_SET, keyed=True)
    assert a.crdt.read("again", b"k").value is None
    cluster.stop("n0")
    cluster.start("n0")
    assert cluster.nodes["n0"].crdt.read("again", b"k").value is None
