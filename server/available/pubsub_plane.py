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

Readers are woken in rounds (`_flush_wakes`): each round wakes every
subscription made readable since the last, and the next is held back for
as long as this one's writes took (at most PUBSUB_WAKE_DELAY_MS_MAX), so
a busy node writes each stream one response carrying many messages rather
than one response per message.

Every method runs on the plane's asyncio loop (the node's, which its gRPC
server shares); the hub is not shared with another thread. A node's plane
is built by `plane_for(config)` (peers: the other members' client
addresses; secret: the gossip key) on the node's event loop, started and
stopped by the node (server/node/node.py), served by the gRPC server
(server/api/pubsub_servicers.py) and by `node.pubsub` (server/node/pubsub.py).
"""

from __future__ import annotations

import asyncio
import logging
import random

from typing import Any, Sequence

from tandemkv import limits
from tandemkv.errors import NodeRemoved

from tandemkv.server.available.node_plane import gossip_key, peer_addresses
from tandemkv.server.available.pubsub import (Hub, InboundStreams, Lagged, Message, OutboundQueue, Published,
                                              Publisher)
from tandemkv.server.available.pubsub_relay import PeerSender, RelayReceiver

log = logging.getLogger(__name__)

# Events one `next_events` returns at most, unless asked for fewer.
NEXT_EVENTS_MAX = 1_024


class Subscription:
    """A local subscriber: its topics and prefixes, and the events it has
    not taken. Close it when done (its buffer goes with it).

    Its reader waits on `_woken`, which the plane sets for a batch of
    subscriptions at once (`PubSubPlane._flush_wakes`), and which stays set
    while a take left events behind."""

    def __init__(self, plane: PubSubPlane, subscriber: int):
        self._plane = plane
        self.id = subscriber
        self._woken = asyncio.Event()
        self.closed = False

    def add(self, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> None:
        self._plane.hub.add(self.id, topics, prefixes)

    def remove(self, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> None:
        self._plane.hub.remove(self.id, topics, prefixes)

    async def next_events(self, events_max: int = NEXT_EVENTS_MAX,
                          bytes_max: int | None = limits.GRPC_MESSAGE_BYTES_MAX // 2,
                          timeout_s: float | None = None) -> list[Message | Lagged]:
        """The next events, oldest first, waiting up to `timeout_s` (None:
        until there are some); [] when the wait ran out, it closed or it
        was woken (`wake`) with nothing to read."""
        if not self.closed and not self._woken.is_set():
            try:
                await asyncio.wait_for(self._woken.wait(), timeout_s)
            except asyncio.TimeoutError:
                return []
        self._woken.clear()
        if self.closed:
            return []
        hub = self._plane.hub
        events = hub.take(self.id, events_max, bytes_max)
        if hub.readable(self.id):
            self._woken.set()  # more than one take's worth: the next goes on at once
        return events

    async def woken(self) -> None:
        """Waits for the next wake-up (events, `wake`, `close`), without
        taking anything: for a reader that may not take now."""
        if not self.closed:
            self._woken.clear()
            await self._woken.wait()

    def wake(self) -> None:
        """Ends a `next_events` wait now (it returns what there is, maybe
        nothing): for a reader that also waits on something else."""
        self._woken.set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._plane._close(self)
            self._woken.set()


class PubSubPlane:
    def __init__(self, node: str, peers: dict[str, str], secret: bytes, *, incarnation: int | None = None,
                 hub: Hub | None = None, queue_messages_max: int = limits.PUBSUB_RELAY_QUEUE_MESSAGES_MAX,
                 queue_bytes_max: int = limits.PUBSUB_RELAY_QUEUE_BYTES_MAX,
                 wake_delay_ms_max: int = limits.PUBSUB_WAKE_DELAY_MS_MAX):
        assert node not in peers, "a node is not its own peer"
        self.node = node
        self.incarnation = incarnation if incarnation is not None else random.getrandbits(64)
        self.hub = hub if hub is not None else Hub(node, self.incarnation)
        assert (self.hub.node, self.hub.incarnation) == (node, self.incarnation)
        self.publisher = self.hub.open_publisher()
        self._secret = secret
        self._queue_bounds = (queue_messages_max, queue_bytes_max)
        self.senders = {name: self._sender(name, address) for name, address in peers.items()}
        self.receiver = RelayReceiver(node, secret, self._deliver_from_peer, InboundStreams())
        self._subscriptions: dict[int, Subscription] = {}
        self.started = False
        # Readers made readable since the last round of wake-ups (in order).
        self._to_wake: dict[int, None] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._flushed_s = float("-inf")
        self._wake_delay_s = 0.0
        self._wake_delay_s_max = wake_delay_ms_max / 1000
        self.wake_rounds = 0
        # Why every call is refused, once this node was removed from the cluster (`retire`).
        self.retired: str | None = None

    def start(self) -> None:
        """Starts the relay streams; call on the loop the plane runs on."""
        assert not self.started
        self.started = True
        for sender in self.senders.values():
            sender.start()

    async def stop(self) -> None:
        # What the relay and the buffers lost over this incarnation, in the
        # log: a subscriber sees a relay loss only as a jump in the numbers.
        log.info("pubsub plane %s stopping: %s", self.node, self.status())
        for sender in self.senders.values():
            await sender.stop()
        self.senders = {}
        for subscription in list(self._subscriptions.values()):
            subscription.close()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    async def set_peers(self, peers: dict[str, str], secret: bytes) -> None:
        """Follows the committed member set (`peers`: the other members'
        client addresses; none when this node is not a member): a stream
        opens to each member added, the stream to each member removed ends
        (what was still queued for it is dropped), a peer whose address changed
        gets a new stream, and the streams of nodes no longer members are
        refused from now on (their cursors forgotten)."""
        assert self.node not in peers, "a node is not its own peer"
        self._secret = secret
        self.receiver.set_members(frozenset(peers) | {self.node}, secret)
        for name, sender in list(self.senders.items()):
            if peers.get(name) != sender.address or sender.secret != secret:
                log.info("pubsub relay to %s: stream ended (member set changed), %d queued messages dropped",
                         name, len(sender.queue))
                del self.senders[name]
                await sender.stop()
        for name, address in peers.items():
            if name not in self.senders:
                self.senders[name] = sender = self._sender(name, address)
                if self.started:
                    sender.start()

    async def retire(self, reason: str) -> None:
        """This node was removed from the cluster: the relay streams end,
        local subscriptions end, and every call is refused from now on with
        NodeRemoved(`reason`)."""
        self.retired = reason
        await self.stop()

    def _check_member(self) -> None:
        if self.retired is not None:
            raise NodeRemoved(self.retired)

    def _sender(self, name: str, address: str) -> PeerSender:
        return PeerSender(self.node, self.incarnation, name, address, self._secret,
                          queue=OutboundQueue(*self._queue_bounds))

    def publish(self, topic: bytes, payload: bytes, *, publisher: Publisher | None = None, skip: int | None = None,
                local_only: bool = False) -> Published:
        """Buffers the message for every local subscriber of `topic` (but
        `skip`), and unless `local_only` queues it once for each peer.
        `publisher`: a session from `open_publisher` (default: the node's)."""
        self._check_member()
        published = self.hub.publish(publisher or self.publisher, topic, payload, skip=skip,
                                     local_only=local_only)
        self._wake(published)
        if not local_only:
            for sender in self.senders.values():
                sender.put(published.message)
        return published

    def open_publisher(self) -> Publisher:
        """A publisher session of its own: its messages keep their order for every subscriber."""
        self._check_member()
        return self.hub.open_publisher()

    def subscribe(self, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> Subscription:
        self._check_member()
        subscription = Subscription(self, self.hub.subscribe(topics, prefixes))
        self._subscriptions[subscription.id] = subscription
        return subscription

    def status(self) -> dict[str, object]:
        return {"node": self.node, "incarnation": f"{self.incarnation:016x}", "hub": self.hub.status(),
                "peers": {name: sender.status() for name, sender in self.senders.items()},
                "inbound": self.receiver.streams.status(), "inbound_refused": dict(self.receiver.refused),
                "wake_rounds": self.wake_rounds, "wake_delay_ms": round(self._wake_delay_s * 1000, 3)}

    def _deliver_from_peer(self, message: Message) -> None:
        self._wake(self.hub.deliver(message))

    def _wake(self, published: Published) -> None:
        """Wakes the readers `published` made readable, with the others of
        this round: see `_flush_wakes`."""
        if not published.readable:
            return
        self._to_wake.update(dict.fromkeys(published.readable))
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            due_s = self._flushed_s + self._wake_delay_s
            self._flush_handle = (loop.call_soon(self._flush_wakes) if due_s <= loop.time()
                                  else loop.call_at(due_s, self._flush_wakes))

    def _flush_wakes(self) -> None:
        """Wakes every reader made readable since the last round, at once.

        Why rounds: each woken subscription's stream makes one gRPC write,
        whatever it carries, and the writes share this loop with the
        publishes. Woken at each publish, a thousand streams would each
        write one message per publish, and every publish would wait behind
        a thousand writes. So the next round is held back for as long as
        this one's writes took (at most PUBSUB_WAKE_DELAY_MS_MAX): meanwhile
        publishes run, and the next round's writes carry all of them. An
        idle plane wakes its readers on the next turn of the loop."""
        self._flush_handle = None
        to_wake, self._to_wake = self._to_wake, {}
        loop = asyncio.get_running_loop()
        began_s = loop.time()
        for subscriber in to_wake:
            subscription = self._subscriptions.get(subscriber)
            if subscription is not None:  # it may have closed since
                subscription.wake()
        # Scheduled after the woken readers' turns, so it runs once they
        # have taken their events and begun their writes.
        loop.call_soon(self._round_ended, began_s)
        self.wake_rounds += 1

    def _round_ended(self, began_s: float) -> None:
        now_s = asyncio.get_running_loop().time()
        self._flushed_s = now_s
        self._wake_delay_s = min(now_s - began_s, self._wake_delay_s_max)

    def _close(self, subscription: Subscription) -> None:
        del self._subscriptions[subscription.id]
        self.hub.unsubscribe(subscription.id)


def plane_for(config: Any, members: Sequence[Any]) -> PubSubPlane:
    """The plane of the node `config` (a NodeConfig) describes, with the
    committed `members`: its peers are the other members, reached on their
    client addresses (the relay is a gRPC stream to the peer's client
    server), and it follows the set as it changes (`set_peers`); its secret
    is the gossip key (node_plane.py), so the relay's tokens need no
    setting of their own; its incarnation is drawn at random, once per
    start."""
    plane = PubSubPlane(config.name, peer_addresses(config.name, members), gossip_key(config, members))
    plane.receiver.members = frozenset(member.name for member in members)
    return plane
