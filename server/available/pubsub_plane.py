"""`PubSubPlane`: best-effort pub/sub on one node, running. It puts together
the pure hub (pubsub/hub.py), one `PeerSender` per peer and the
`RelayReceiver` of the peers' streams (pubsub_relay.py), and wakes the
readers of local subscriptions.

    plane = PubSubPlane("n1", peers={"n2": "127.0.0.1:7001"}, secret=b"...")
    add_PubSubServicer_to_server(plane.receiver, grpc_aio_server)   # Relay only
    plane.start()                                   # on the loop it will run on
    sub = plane.subscribe(topics=(b"room:1",))
    plane.publish(b"room:1", b"hi")                 # here, and once to each peer
    events = await sub.next_events()                # [Lagged(n)?, Message, ...]

Nothing here waits on Raft or on a peer: a publish buffers for local
subscribers and queues for each peer, and returns. A peer that is slow,
partitioned or down fills its own bounded queue (the oldest go, counted);
the others are not held up.

Every method runs on the plane's asyncio loop (the gRPC server's); the hub
is not shared with another thread. A node's plane is built by
`plane_for(config)` (peers: the other members' client addresses; secret:
the gossip key) when its gRPC server is built, which serves it
(server/api/pubsub_servicers.py) and starts and stops it.
"""

from __future__ import annotations

import asyncio
import random

from typing import Any

from tandemkv import limits

from tandemkv.server.available.node_plane import gossip_key
from tandemkv.server.available.pubsub import (Hub, InboundStreams, Lagged, Message, OutboundQueue, Published,
                                              Publisher)
from tandemkv.server.available.pubsub_relay import PeerSender, RelayReceiver

# Events one `next_events` returns at most, unless asked for fewer.
NEXT_EVENTS_MAX = 1_024


class Subscription:
    """A local subscriber: its topics and prefixes, and the events it has
    not taken. Close it when done (its buffer goes with it)."""

    def __init__(self, plane: PubSubPlane, subscriber: int):
        self._plane = plane
        self.id = subscriber
        self._readable = asyncio.Event()
        self.closed = False

    def add(self, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> None:
        self._plane.hub.add(self.id, topics, prefixes)

    def remove(self, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> None:
        self._plane.hub.remove(self.id, topics, prefixes)

    async def next_events(self, events_max: int = NEXT_EVENTS_MAX,
                          bytes_max: int | None = limits.GRPC_MESSAGE_BYTES_MAX // 2,
                          timeout_s: float | None = None) -> list[Message | Lagged]:
        """The next events, oldest first, waiting up to `timeout_s` (None:
        until there are some); [] when the wait ran out or it closed."""
        hub = self._plane.hub
        if not self.closed and not hub.readable(self.id):
            self._readable.clear()
            try:
                await asyncio.wait_for(self._readable.wait(), timeout_s)
            except asyncio.TimeoutError:
                return []
        if self.closed:
            return []
        return hub.take(self.id, events_max, bytes_max)

    def wake(self) -> None:
        """Ends a `next_events` wait now (it returns what there is, maybe
        nothing): for a reader that also waits on something else."""
        self._readable.set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._plane._close(self)
            self._readable.set()


class PubSubPlane:
    def __init__(self, node: str, peers: dict[str, str], secret: bytes, *, incarnation: int | None = None,
                 hub: Hub | None = None, queue_messages_max: int = limits.PUBSUB_RELAY_QUEUE_MESSAGES_MAX,
                 queue_bytes_max: int = limits.PUBSUB_RELAY_QUEUE_BYTES_MAX):
        assert node not in peers, "a node is not its own peer"
        self.node = node
        self.incarnation = incarnation if incarnation is not None else random.getrandbits(64)
        self.hub = hub if hub is not None else Hub(node, self.incarnation)
        assert (self.hub.node, self.hub.incarnation) == (node, self.incarnation)
        self.publisher = self.hub.open_publisher()
        self.senders = {name: PeerSender(node, self.incarnation, name, address, secret,
                                         queue=OutboundQueue(queue_messages_max, queue_bytes_max))
                        for name, address in peers.items()}
        self.receiver = RelayReceiver(node, secret, self._deliver_from_peer, InboundStreams())
        self._subscriptions: dict[int, Subscription] = {}
        self.started = False

    def start(self) -> None:
        """Starts the relay streams; call on the loop the plane runs on."""
        assert not self.started
        self.started = True
        for sender in self.senders.values():
            sender.start()

    async def stop(self) -> None:
        for sender in self.senders.values():
            await sender.stop()
        for subscription in list(self._subscriptions.values()):
            subscription.close()

    def publish(self, topic: bytes, payload: bytes, *, publisher: Publisher | None = None, skip: int | None = None,
                local_only: bool = False) -> Published:
        """Buffers the message for every local subscriber of `topic` (but
        `skip`), and unless `local_only` queues it once for each peer.
        `publisher`: a session from `open_publisher` (default: the node's)."""
        published = self.hub.publish(publisher or self.publisher, topic, payload, skip=skip,
                                     local_only=local_only)
        self._wake(published)
        if not local_only:
            for sender in self.senders.values():
                sender.put(published.message)
        return published

    def open_publisher(self) -> Publisher:
        """A publisher session of its own: its messages keep their order for every subscriber."""
        return self.hub.open_publisher()

    def subscribe(self, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> Subscription:
        subscription = Subscription(self, self.hub.subscribe(topics, prefixes))
        self._subscriptions[subscription.id] = subscription
        return subscription

    def status(self) -> dict[str, object]:
        return {"node": self.node, "incarnation": f"{self.incarnation:016x}", "hub": self.hub.status(),
                "peers": {name: sender.status() for name, sender in self.senders.items()},
                "inbound": self.receiver.streams.status(), "inbound_refused": dict(self.receiver.refused)}

    def _deliver_from_peer(self, message: Message) -> None:
        self._wake(self.hub.deliver(message))

    def _wake(self, published: Published) -> None:
        for subscriber in published.readable:
            self._subscriptions[subscriber].wake()

    def _close(self, subscription: Subscription) -> None:
        del self._subscriptions[subscription.id]
        self.hub.unsubscribe(subscription.id)


def plane_for(config: Any) -> PubSubPlane:
    """The plane of the node `config` (a NodeConfig) describes: its peers
    are the other members, reached on their client addresses (the relay is
    a gRPC stream to the peer's client server); its secret is the gossip
    key (node_plane.py), so the relay's tokens need no setting of their
    own; its incarnation is drawn at random, once per start."""
    peers = {member.name: member.client_address for member in config.members if member.name != config.name}
    return PubSubPlane(config.name, peers, gossip_key(config))
