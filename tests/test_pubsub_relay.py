"""The relay between nodes, running: planes of pub/sub (hub + one relay
stream to each peer) in one process, each behind a grpc.aio server on
127.0.0.1, exchanging real frames.

Goal: a message published on one node reaches every matching subscriber on
every node, crossing to each peer once; each subscriber sees a publisher's
messages in order; a slow subscriber gets a lag notice counting exactly what
it missed; a peer's full queue and a restarted peer show up as counted gaps,
the same count on both sides and in the subscriber's numbers; a stream with
the wrong secret is refused; a peer that never answers is given up and tried
again.

Method: every wait is for a condition (events arriving, a counter reaching a
value), bounded by WAIT_S; nothing is timed.
"""

from __future__ import annotations

import asyncio
import socket
import time

import grpc
import pytest

from tandemkv.server.available.pubsub import GapCounter, Hub, Lagged, Message
from tandemkv.server.available.pubsub_plane import PubSubPlane
from tandemkv.server.available.pubsub_relay import PeerSender
from tandemkv.v1 import pubsub_pb2_grpc

SECRET = b"relay test secret"
# Longest any one condition is waited for (a loaded machine is slow, never this slow).
WAIT_S = 60.0
POLL_S = 0.01


class Cluster:
    def __init__(self):
        self.planes: dict[str, PubSubPlane] = {}
        self.servers: dict[str, grpc.aio.Server] = {}
        self.addresses: dict[str, str] = {}

    def bind(self, name: str) -> grpc.aio.Server:
        server = grpc.aio.server()
        port = server.add_insecure_port(self.addresses.get(name, "127.0.0.1:0"))
        assert port, f"cannot listen for {name}"
        self.addresses[name] = f"127.0.0.1:{port}"
        self.servers[name] = server
        return server

    async def serve(self, name: str) -> None:
        """Serves `name`'s relay receiver on its address (again, after a stop)."""
        server = self.bind(name)
        pubsub_pb2_grpc.add_PubSubServicer_to_server(self.planes[name].receiver, server)
        await server.start()

    async def stop(self) -> None:
        for plane in self.planes.values():
            await plane.stop()
        for server in self.servers.values():
            await server.stop(None)


async def start_cluster(names, secrets=None, start=True, **options) -> Cluster:
    """Planes named `names`, each a peer of every other; `options[name]`
    gives a plane's keyword arguments, `secrets[name]` its secret."""
    cluster = Cluster()
    for name in names:  # every port first: peers are given by address
        cluster.bind(name)
    for name in names:
        peers = {other: cluster.addresses[other] for other in names if other != name}
        cluster.planes[name] = PubSubPlane(name, peers, (secrets or {}).get(name, SECRET),
                                           **options.get(name, {}))
        pubsub_pb2_grpc.add_PubSubServicer_to_server(cluster.planes[name].receiver, cluster.servers[name])
        await cluster.servers[name].start()
    for name in names:
        if start:
            cluster.planes[name].start()
    return cluster


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what}"
        await asyncio.sleep(POLL_S)


async def collect(subscription, count: int, counter: GapCounter, into: list) -> None:
    """Reads until `count` messages are received or covered by lag notices."""
    deadline = time.monotonic() + WAIT_S
    while counter.received + counter.lagged < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"got {counter.received} messages and {counter.lagged} lagged of {count}"
        for event in await subscription.next_events(timeout_s=remaining):
            counter.observe(event)
            into.append(event)


def run(scenario):
    asyncio.run(asyncio.wait_for(scenario(), timeout=4 * WAIT_S))


def test_a_message_reaches_every_matching_subscriber_on_every_node_crossing_once_in_order():
    async def scenario():
        cluster = await start_cluster(["a", "b", "c"])
        a, b, c = (cluster.planes[name] for name in "abc")
        try:
            subscribers = {("b", "exact"): b.subscribe(topics=(b"room:1",)),
                           ("b", "prefix"): b.subscribe(prefixes=(b"room:",)),
                           ("b", "all"): b.subscribe(prefixes=(b"",)),
                           ("c", "prefix"): c.subscribe(prefixes=(b"room",)),
                           ("a", "prefix"): a.subscribe(prefixes=(b"room:",))}
            other = a.open_publisher()
            for i in range(200):
                a.publish(b"room:%d" % (1 + i % 2), b"%d" % i, publisher=other if i % 3 else None)
            expected = {"exact": 100, "prefix": 200, "all": 200}
            for (node, kind), subscription in subscribers.items():
                counter, events = GapCounter(from_start=True), []
                await collect(subscription, expected[kind], counter, events)
                assert (counter.received, counter.missing, counter.lagged, counter.out_of_order) == \
                    (expected[kind], 0, 0, 0), (node, kind)
                # One publisher's messages in the order published.
                for publisher in {event.publisher for event in events}:
                    own = [int(event.payload) for event in events if event.publisher == publisher]
                    assert own == sorted(own) and len(own) > 0
            for peer in (b, c):
                assert peer.hub.received_total == 200, "each message crosses to each peer once"
            assert [a.senders[name].queue.framed_total for name in "bc"] == [200, 200]
            assert a.hub.received_total == 0
        finally:
            await cluster.stop()
    run(scenario)


def test_local_only_and_publish_from_stay_where_they_should():
    async def scenario():
        cluster = await start_cluster(["a", "b"])
        a, b = cluster.planes["a"], cluster.planes["b"]
        try:
            remote, mine, neighbour = (b.subscribe(topics=(b"t",)), a.subscribe(topics=(b"t",)),
                                       a.subscribe(topics=(b"t",)))
            a.publish(b"t", b"here only", local_only=True)
            a.publish(b"t", b"not to me", skip=mine.id)
            a.publish(b"t", b"everyone")
            got_remote = [e.payload for e in await remote.next_events(timeout_s=WAIT_S)]
            while len(got_remote) < 2:
                got_remote += [e.payload for e in await remote.next_events(timeout_s=WAIT_S)]
            assert got_remote == [b"not to me", b"everyone"]
            assert [e.payload for e in await mine.next_events(timeout_s=0)] == [b"here only", b"everyone"]
            assert [e.payload for e in await neighbour.next_events(timeout_s=0)] == \
                [b"here only", b"not to me", b"everyone"]
        finally:
            await cluster.stop()
    run(scenario)


def test_a_slow_subscriber_gets_a_lag_notice_counting_exactly_what_it_missed():
    async def scenario():
        cluster = await start_cluster(["a", "b"], b={"hub": Hub("b", 77, buffer_messages_max=8),
                                                     "incarnation": 77})
        a, b = cluster.planes["a"], cluster.planes["b"]
        try:
            slow, fast = b.subscribe(topics=(b"t",)), b.subscribe(topics=(b"t",))
            for i in range(100):
                a.publish(b"t", b"%d" % i)
            counter, events = GapCounter(from_start=True), []
            # The fast reader takes a batch as soon as there is one, so it may
            # lag too; what matters is that it accounts for all 100.
            await collect(fast, 100, counter, events)
            # Every message reached the slow subscriber's buffer when it reached the fast one's.
            events = await slow.next_events(timeout_s=0)
            assert events[0] == Lagged(92)
            assert [int(event.payload) for event in events[1:]] == list(range(92, 100))
            assert b.hub.status()["missed_by_slow_subscribers"] >= 92
        finally:
            await cluster.stop()
    run(scenario)


def test_a_full_relay_queue_is_a_counted_gap_on_both_sides_and_in_the_numbers():
    async def scenario():
        cluster = await start_cluster(["a", "b"], start=False, a={"queue_messages_max": 10})
        a, b = cluster.planes["a"], cluster.planes["b"]
        try:
            subscription = b.subscribe(topics=(b"t",))
            for i in range(50):  # a's relay is not running yet: its queue to b overflows
                a.publish(b"t", b"%d" % i)
            a.start()
            b.start()
            counter, events = GapCounter(from_start=True), []
            await collect(subscription, 10, counter, events)
            assert [event.seq for event in events] == list(range(41, 51))
            assert counter.missing == 40 and counter.lagged == 0 and counter.out_of_order == 0
            assert a.senders["b"].queue.overflowed_total == 40
            inbound = b.status()["inbound"][f"a/{a.incarnation:016x}"]
            assert (inbound["overflowed"], inbound["lost_in_transit"], inbound["received"]) == (40, 0, 10)
        finally:
            await cluster.stop()
    run(scenario)


def test_a_restarted_peer_server_is_reached_again_and_every_loss_is_counted():
    async def scenario():
        cluster = await start_cluster(["a", "b"])
        a, b = cluster.planes["a"], cluster.planes["b"]
        try:
            subscription = b.subscribe(topics=(b"t",))
            counter, events = GapCounter(from_start=True), []
            a.publish(b"t", b"before")
            await collect(subscription, 1, counter, events)
            await cluster.servers["b"].stop(None)  # b's port closes; its plane (and state) stays
            for i in range(20):
                a.publish(b"t", b"%d" % i)
            await until(lambda: a.senders["b"].failures >= 1, "the relay to b to fail")
            await cluster.serve("b")  # the same port again
            a.publish(b"t", b"after")
            deadline = time.monotonic() + WAIT_S
            while not events or events[-1].payload != b"after":
                assert time.monotonic() < deadline, events
                for event in await subscription.next_events(timeout_s=WAIT_S):
                    counter.observe(event)
                    events.append(event)
            inbound = b.status()["inbound"][f"a/{a.incarnation:016x}"]
            assert counter.out_of_order == 0 and counter.lagged == 0
            assert counter.received + counter.missing == 22
            assert counter.missing == inbound["lost_in_transit"] + inbound["overflowed"]
            assert a.senders["b"].connections >= 2
        finally:
            await cluster.stop()
    run(scenario)


def test_a_relay_stream_with_another_secret_is_refused():
    async def scenario():
        cluster = await start_cluster(["a", "b"], secrets={"a": b"not the cluster's"})
        a, b = cluster.planes["a"], cluster.planes["b"]
        try:
            subscription = b.subscribe(topics=(b"t",))
            a.publish(b"t", b"forged?")
            await until(lambda: a.senders["b"].failures >= 1 and b.receiver.refused["unauthenticated"] >= 1,
                        "the refusal")
            # The sender sees the refusal's status, or the transport's error
            # when its hello write loses the race with it.
            assert a.senders["b"].last_error and a.senders["b"].frames_sent == 0
            assert await subscription.next_events(timeout_s=0) == []
            assert b.hub.received_total == 0
        finally:
            await cluster.stop()
    run(scenario)


def test_a_peer_that_never_answers_the_hello_is_given_up_and_tried_again_losing_nothing():
    async def scenario():
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts connections; nobody ever speaks on them
        sender = PeerSender("a", 1, "b", "127.0.0.1:%d" % silent.getsockname()[1], SECRET, hello_ms_max=100)
        try:
            hub = Hub("a", 1)
            sender.put(hub.publish(hub.open_publisher(), b"t", b"kept").message)
            sender.start()
            await until(lambda: sender.failures >= 2, "two attempts to give up")
            assert "PUBSUB_RELAY_HELLO_MS_MAX" in sender.last_error
            assert len(sender.queue) == 1 and sender.frames_sent == 0
        finally:
            await sender.stop()
            silent.close()
    run(scenario)
