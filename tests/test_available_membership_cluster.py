"""The available plane follows the committed member set, on four embedded
nodes in this process (127.0.0.1, each served by `build_server` on its
client address, so gossip datagrams, relay streams and presence exchanges
travel between real ports).

Three members start; a fourth is added at runtime, as a voter and (in a
second run) as a learner, which is a member of the available plane like
any other (its config lists the set it joined with, as `serve --join`
writes it). Then: a CRDT write made
on the fourth reaches the other three and a write on them reaches it;
pub/sub published on the fourth reaches a subscriber on n1 and the other
way round; presence tracked on the fourth is listed on the others. The
fourth is removed: its presence entries leave the others by the removal
(the `owners_removed` counter, not the down timer), nobody holds a gossip
peer, relay sender, relay cursor or presence link for it any more, and
its own planes stop and refuse calls with NodeRemoved. What it wrote to
the CRDT table stays: it was acknowledged, and merged state is not
garbage (docs/available-plane.md, "Membership").

Method: every cross-node check polls a condition under a deadline
(CHANGE_TIMEOUT_S, loose for a loaded machine); nothing is timed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tandemkv.errors import NodeRemoved, Unavailable
from tandemkv.server import Node
from tandemkv.server.api import build_server
from tandemkv.server.node.config import Member, NodeConfig
from tandemkv.server.node.crdt import Add
from tandemkv.server.node.pubsub import Message
from tandemkv.v1 import cluster_pb2
from tests.support.ports import free_ports
from tests.test_embedded_node import FAST

READY_TIMEOUT_S = 30.0
CHANGE_TIMEOUT_S = 30.0
POLL_S = 0.05
FIRST = ("n1", "n2", "n3")


class Members:
    """Embedded nodes with their gRPC servers; `start(name, peers, since)`."""

    def __init__(self, root: Path):
        self.root = root
        ports = free_ports(8)
        self.addresses = {f"n{k + 1}": Member(f"n{k + 1}", f"127.0.0.1:{ports[2 * k]}",
                                              f"127.0.0.1:{ports[2 * k + 1]}") for k in range(4)}
        self.nodes: dict[str, Node] = {}
        self._servers: dict[str, object] = {}

    def start(self, name: str, peers, since: int = 0) -> Node:
        me = self.addresses[name]
        node = Node(NodeConfig(name=name, data_dir=self.root / name, raft_address=me.raft_address,
                               client_address=me.client_address, member_since_index=since, timings=FAST,
                               peers=tuple(Member(p.name, p.raft_address, p.client_address)
                                           for p in peers if p.name != name)))
        server = build_server(node, me.client_address)  # before start, as serve does
        node.start()
        server.start()
        self.nodes[name] = node
        self._servers[name] = server
        return node

    def stop_node(self, name: str) -> None:
        self._servers.pop(name).stop(grace_s=0)
        self.nodes.pop(name).stop()

    def leader(self) -> Node:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            for node in self.nodes.values():
                if node.removed_reason() is None and node.status().role == "leader":
                    return node
            time.sleep(POLL_S)
        raise AssertionError("no leader")

    def stop(self) -> None:
        for name in list(self.nodes):
            self.stop_node(name)


def wait_until(condition, what: str):
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {CHANGE_TIMEOUT_S} s"
        time.sleep(POLL_S)


def _through_leader(members: Members, change, what: str) -> cluster_pb2.MemberSet:
    """`change(leader)`, again while it is Unavailable: a leader refuses a
    change until it committed an entry of its term, and a leader being
    removed hands over first."""
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while True:
        try:
            return change(members.leader())
        except Unavailable:
            assert time.monotonic() < deadline, f"{what} never committed"
            time.sleep(POLL_S)


def remove(members: Members, name: str) -> cluster_pb2.MemberSet:
    return _through_leader(members, lambda leader: leader.remove_member(name, timeout_s=CHANGE_TIMEOUT_S),
                           f"the removal of {name}")


def add(members: Members, name: str, *, learner: bool) -> cluster_pb2.MemberSet:
    address = members.addresses[name]
    member = cluster_pb2.Member(name=name, raft_address=address.raft_address,
                                client_address=address.client_address)
    return _through_leader(members, lambda leader: leader.add_member(member, learner=learner,
                                                                     timeout_s=CHANGE_TIMEOUT_S),
                           f"the addition of {name}")


def messages(subscription, count: int, what: str) -> list[bytes]:
    received: list[bytes] = []
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while len(received) < count:
        assert time.monotonic() < deadline, f"{what}: only {received} within {CHANGE_TIMEOUT_S} s"
        received += [event.payload for event in subscription.poll(POLL_S) if isinstance(event, Message)]
    return received


def dialled_by(node: Node) -> dict[str, set[str]]:
    """Whom each of the node's planes sends to or keeps state of."""
    available = node.available
    relay_origins = {origin.split("/")[0] for origin in node.pubsub_plane.receiver.streams.status()}
    return {"gossip": set(available.members()) - {node.config.name},
            "gossip status": set(available.status().gossip.peers),
            "keyed sync": set(available._keyed.sync._peers),
            "udp": set(available._transport.peers()),
            "relay senders": set(node.pubsub_plane.senders),
            "relay cursors": relay_origins,
            "presence links": set(node.presence_plane.links),
            "presence owners": {owner.node for owner in node.presence_plane.engine.replica.owners()}
            - {node.config.name}}


@pytest.fixture
def members(tmp_path):
    started = Members(tmp_path)
    try:
        first = [started.addresses[name] for name in FIRST]
        for name in FIRST:
            started.start(name, first)
        for node in started.nodes.values():
            node.wait_ready(READY_TIMEOUT_S)
        yield started
    finally:
        started.stop()


@pytest.mark.parametrize("learner", [False, True], ids=["voter", "learner"])
def test_a_member_added_at_runtime_joins_every_plane_and_a_removed_one_leaves_them_all(members, learner):
    leader = members.leader()
    leader.crdt.create_table("carts", "or_set")
    added = add(members, "n4", learner=learner)
    assert [m.voter for m in added.members if m.name == "n4"] == [not learner]
    fourth = members.start("n4", added.members, since=added.config_index)
    fourth.wait_ready(READY_TIMEOUT_S)
    everyone = ["n1", "n2", "n3", "n4"]
    for name, node in members.nodes.items():
        others = set(everyone) - {name}
        wait_until(lambda: all(peers == others for kind, peers in dialled_by(node).items()
                               if kind not in ("relay cursors", "presence owners")),
                   f"{name}'s planes never took up n4: {dialled_by(node)}")

    # CRDT: a write on the fourth reaches the first three, and theirs reach it.
    wait_until(lambda: "carts" in fourth.available.status().gossip.tables, "n4 never followed the catalog")
    fourth.crdt.update("carts", Add(b"from-n4"))
    members.nodes["n1"].crdt.update("carts", Add(b"from-n1"))
    for name, node in members.nodes.items():
        wait_until(lambda: node.crdt.read("carts").value == [b"from-n1", b"from-n4"],
                   f"both adds on {name}")

    # Pub/sub both ways between the fourth and n1.
    on_n1 = members.nodes["n1"].pubsub.subscribe(topics=(b"news",))
    on_n4 = fourth.pubsub.subscribe(topics=(b"news",))
    fourth.pubsub.publish(b"news", b"from-n4")
    members.nodes["n1"].pubsub.publish(b"news", b"from-n1")
    assert sorted(messages(on_n1, 2, "n1's subscriber")) == [b"from-n1", b"from-n4"]
    assert sorted(messages(on_n4, 2, "n4's subscriber")) == [b"from-n1", b"from-n4"]
    on_n1.close()
    on_n4.close()

    # Presence tracked on the fourth is listed on every node.
    session = fourth.presence.session()
    session.track(b"room", b"ann")
    for name, node in members.nodes.items():
        wait_until(lambda: b"ann" in node.presence.list(b"room"), f"ann listed on {name}")

    # The fourth leaves: every trace of it but what it wrote goes from the others.
    after = remove(members, "n4")
    assert [m.name for m in after.members] == list(FIRST)
    for name in FIRST:
        node = members.nodes[name]
        wait_until(lambda: node.member_set().config_index >= after.config_index, f"{name} applied the removal")
        wait_until(lambda: not any("n4" in peers for peers in dialled_by(node).values()),
                   f"{name} still holds n4: {dialled_by(node)}")
        assert node.presence.list(b"room") == {}
        counters = node.presence_plane.engine.replica.counters
        assert counters["owners_removed"] == 1 and counters["owners_lapsed"] == 0, counters
        assert node.crdt.read("carts").value == [b"from-n1", b"from-n4"]
    # ... and its own planes stop, refusing calls with the reason.
    wait_until(lambda: fourth.presence_plane.retired and fourth.pubsub_plane.retired,
               "n4's planes never retired")
    for call in (lambda: fourth.crdt.read("carts"), lambda: fourth.pubsub.publish(b"news", b"late"),
                 lambda: fourth.presence.list(b"room")):
        with pytest.raises(NodeRemoved, match="n4 was removed"):
            call()
    # The first three still gossip with each other.
    members.nodes["n2"].crdt.update("carts", Add(b"from-n2"))
    for name in FIRST:
        node = members.nodes[name]
        wait_until(lambda: b"from-n2" in node.crdt.read("carts").value, f"n2's add on {name}")


def test_a_restarted_member_takes_its_peers_from_the_committed_set_not_its_config(members):
    added = add(members, "n4", learner=True)
    fourth = members.start("n4", added.members, since=added.config_index)
    fourth.wait_ready(READY_TIMEOUT_S)
    wait_until(lambda: members.nodes["n1"].member_set().config_index >= added.config_index, "n1 applied the add")
    members.stop_node("n1")
    restarted = members.start("n1", [members.addresses[name] for name in FIRST])  # its config lists three
    restarted.wait_ready(READY_TIMEOUT_S)
    assert [m.name for m in restarted.member_set().members] == ["n1", "n2", "n3", "n4"]
    wait_until(lambda: all(peers == {"n2", "n3", "n4"} for kind, peers in dialled_by(restarted).items()
                           if kind in ("gossip", "udp", "relay senders", "presence links")),
               f"n1 restarted without n4 among its peers: {dialled_by(restarted)}")
