"""`PresencePlane`: presence on one node, running. It drives the pure
engine (presence/engine.py): lets time pass every PRESENCE_TICK_MS, feeds
it the frames peers send, sends the frames it asks for, and hands the
diffs it returns to this node's watchers.

    plane = PresencePlane("n1", peers={"n2": "127.0.0.1:7001"}, secret=b"...")
    plane.start()                                   # on the loop it will run on
    session = plane.open_session(15_000)
    plane.track(session, b"room:1", b"ann", b'{"status": "away"}')
    plane.list(b"room:1")                           # {b"ann": [Meta(ref, meta)]}
    watch = plane.watch(b"room:1")                  # watch.state, then watch.next_items()

How frames travel: as unary `Presence.Exchange` calls to each peer's
client port (one call carries the frames queued for that peer), not as
UDP datagrams. The engine tolerates loss (a lost delta is asked for again
after the next heartbeat; the full state goes when a peer is too far
behind), so a datagram would do; but the node's UDP port belongs to the
CRDT plane's socket and thread, and a call on the client port needs no
port, no socket and no thread of its own. Each peer has a bounded queue
(PRESENCE_PEER_QUEUE_FRAMES_MAX, oldest dropped and counted) and at most
one call in flight; a failed call's frames are dropped and counted, as a
lost datagram would be. Every frame carries its own HMAC (the gossip key,
with presence's domain tag), so the call itself needs no credentials.

A plane that stops (`stop()`, the node stopping cleanly) says goodbye:
the engine's goodbye frame goes to every peer in place of what was still
queued, and the plane waits up to PRESENCE_GOODBYE_WAIT_MS for the calls
to end, so the node's entries leave every node at once instead of after
PRESENCE_NODE_DOWN_MS. A peer it cannot reach in that time drops them by
the down bound, as for a node that died.

Nothing here waits on Raft: presence works without a quorum. Every method
runs on the plane's asyncio loop (the node's, which its gRPC server
shares); the engine is never shared with another thread. Time is the wall
clock in ms: heartbeats
compare owners' clocks (docs/presence.md, "Liveness by the owner's clock").
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from typing import Any, Callable, Iterable, Sequence

from tandemkv import limits
from tandemkv.errors import NodeRemoved

from tandemkv.server.available.node_plane import gossip_key, peer_addresses
from tandemkv.server.available.presence import Diff, Listing, OwnerId, PresenceEngine, Ref
from tandemkv.server.available.presence.model import ID_LIMIT, check_topic
from tandemkv.server.available.presence_link import PeerLink

log = logging.getLogger(__name__)

# Calls a goodbye to one peer gets within PRESENCE_GOODBYE_WAIT_MS: a failed one (a connection reset) once more.
GOODBYE_TRIES = 2

# `list` is a method of PresencePlane, so inside it the builtin's type goes by this name.
Diffs = list[Diff]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_incarnation() -> int:
    """Rises at every start: the wall clock in µs (a restart within the
    same µs, or after the clock stepped back past the last start, would
    reuse or lower it; docs/presence.md says why clocks must agree)."""
    return time.time_ns() // 1_000 % ID_LIMIT


class PresenceWatch:
    """A watcher of one topic on this node: `state` (the listing when it
    opened), then `next_items()`: diffs in order, or a fresh listing (a
    resync) where its buffer overflowed. Close it when done."""

    def __init__(self, plane: PresencePlane, topic: bytes, diffs_max: int):
        self._plane = plane
        self.topic = topic
        self.state: Listing = plane.engine.list(topic)
        self._diffs: collections.deque[Diff] = collections.deque()
        self._diffs_max = diffs_max
        self._resync = False
        self._readable = asyncio.Event()
        self.closed = False
        self.resyncs = 0

    def offer(self, diff: Diff) -> None:
        if self._resync:
            return  # the state it will get covers this diff
        if len(self._diffs) >= self._diffs_max:
            self._diffs.clear()
            self._resync = True
            self.resyncs += 1
        else:
            self._diffs.append(diff)
        self._readable.set()

    async def next_items(self, timeout_s: float | None = None) -> list[Diff | Listing]:
        """Diffs not yet taken, oldest first, or [a listing] after an
        overflow; waits up to `timeout_s` (None: until there are some);
        [] when the wait ran out or it closed."""
        if not self.closed and not self._diffs and not self._resync:
            self._readable.clear()
            try:
                await asyncio.wait_for(self._readable.wait(), timeout_s)
            except asyncio.TimeoutError:
                return []
        if self.closed:
            return []
        if self._resync:
            self._resync = False
            self._diffs.clear()
            return [self._plane.engine.list(self.topic)]
        items: list[Diff | Listing] = list(self._diffs)
        self._diffs.clear()
        return items

    def wake(self) -> None:
        self._readable.set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._plane._forget(self)
            self._readable.set()


class PresencePlane:
    def __init__(self, node: str, peers: dict[str, str], secret: bytes, *, incarnation: int | None = None,
                 tick_ms: int = limits.PRESENCE_TICK_MS, clock: Callable[[], int] = now_ms):
        assert node not in peers, "a node is not its own peer"
        self.node = node
        self._clock = clock
        self.owner = OwnerId(node, incarnation if incarnation is not None else new_incarnation())
        self.engine = PresenceEngine(self.owner, secret, clock(), peers)
        self.links = {name: PeerLink(name, address) for name, address in peers.items()}
        self._tick_ms = tick_ms
        self._watches: dict[bytes, set[PresenceWatch]] = {}
        self._ticker: asyncio.Task | None = None
        self._rng = random.SystemRandom()
        self.started = False
        # Peers the goodbye reached within PRESENCE_GOODBYE_WAIT_MS (None: not said yet).
        self.goodbye_delivered: list[str] | None = None
        # Why every call is refused, once this node was removed from the cluster (`retire`).
        self.retired: str | None = None

    def start(self) -> None:
        """Starts ticking and the peer links; call on the loop the plane runs on."""
        assert not self.started
        self.started = True
        for link in self.links.values():
            link.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever(), name="presence ticks")

    async def stop(self) -> None:
        """Stops ticking, says goodbye to every peer (waiting up to
        PRESENCE_GOODBYE_WAIT_MS for it to go), stops the links and ends
        the watches."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self.started and self.goodbye_delivered is None:
            await self._say_goodbye()
        for link in self.links.values():
            await link.stop()
        for watches in list(self._watches.values()):
            for watch in list(watches):
                watch.close()

    async def set_peers(self, peers: dict[str, str], secret: bytes) -> None:
        """Follows the committed member set (`peers`: the other members'
        client addresses; none when this node is not a member). A member
        removed has its entries leave this node's view now (watchers get
        the leaves) and its link closed; a member added gets a link and the
        full state once its heartbeat shows it has nothing; a peer whose
        address changed gets a new link."""
        assert self.node not in peers, "a node is not its own peer"
        for name, link in list(self.links.items()):
            if peers.get(name) != link.address:
                del self.links[name]
                await link.stop()
        for name, address in peers.items():
            if name not in self.links:
                self.links[name] = link = PeerLink(name, address)
                if self.started:
                    link.start()
        self._dispatch((), self.engine.set_peers(peers, self._clock(), secret))

    async def retire(self, reason: str) -> None:
        """This node was removed from the cluster: the plane stops (its
        peers dropped its entries already) and refuses every call from now
        on with NodeRemoved(`reason`)."""
        self.retired = reason
        await self.stop()

    def _check_member(self) -> None:
        if self.retired is not None:
            raise NodeRemoved(self.retired)

    # -- the calls of the Presence service (errors: tandemkv.errors) -------

    def open_session(self, ttl_ms: int) -> int:
        session = self._rng.randrange(1, ID_LIMIT)
        self._run(lambda now: self.engine.open_session(session, ttl_ms, now))
        return session

    def keepalive(self, session: int) -> None:
        self._run(lambda now: self.engine.keepalive(session, now))

    def close_session(self, session: int) -> None:
        self._run(lambda now: self.engine.close_session(session, now))

    def track(self, session: int, topic: bytes, key: bytes, meta: bytes) -> str:
        self._run(lambda now: self.engine.track(session, topic, key, meta, now))
        return self._ref_of(session)

    def update(self, session: int, topic: bytes, key: bytes, meta: bytes) -> str:
        self._run(lambda now: self.engine.update(session, topic, key, meta, now))
        return self._ref_of(session)

    def untrack(self, session: int, topic: bytes, key: bytes) -> None:
        self._run(lambda now: self.engine.untrack(session, topic, key, now))

    def list(self, topic: bytes) -> Listing:
        """As of now: time is let pass first, so nothing past its bound
        shows (a node just resumed from a pause has not ticked yet)."""
        topic = check_topic(topic)
        self._run(self.engine.advance)
        return self.engine.list(topic)

    def watch(self, topic: bytes, diffs_max: int = limits.PRESENCE_WATCH_DIFFS_MAX) -> PresenceWatch:
        self._check_member()
        watch = PresenceWatch(self, check_topic(topic), diffs_max)
        self._watches.setdefault(watch.topic, set()).add(watch)
        return watch

    def receive(self, frames: Iterable[bytes]) -> int:
        """Feeds peers' frames to the engine; how many it took (a refused
        frame is counted in `status()` under its reason)."""
        refused_before = self._refused()
        count = 0
        for frame in frames:
            count += 1
            output = self.engine.receive(frame, self._clock())
            self._dispatch(output.frames, output.diffs)
        return count - (self._refused() - refused_before)

    def status(self) -> dict[str, Any]:
        return {"engine": self.engine.status(), "peers": {name: link.status() for name, link in self.links.items()},
                "watches": sum(len(watches) for watches in self._watches.values())}

    # -- inside -----------------------------------------------------------

    def _refused(self) -> int:
        counters = self.engine.counters
        return counters["refused_sender"] + sum(v for k, v in counters.items() if k.startswith("rejected_"))

    def _ref_of(self, session: int) -> str:
        """The ref of the write just made in `session`: it took the owner's version."""
        return str(Ref(self.node, self.owner.incarnation, session, self.engine.log.version))

    async def _say_goodbye(self) -> None:
        """The goodbye to every peer, waited for up to PRESENCE_GOODBYE_WAIT_MS;
        a call that failed (a connection reset) is tried once more meanwhile."""
        output = self.engine.goodbye(self._clock())
        frames = {peer: frame for peer, frame in output.frames if peer in self.links}
        self._dispatch((), output.diffs)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.PRESENCE_GOODBYE_WAIT_MS / 1000
        for _ in range(GOODBYE_TRIES):
            waiting = sorted(peer for peer in frames if not self.links[peer].last_frame_sent)
            for peer in waiting:
                self.links[peer].put_last(frames[peer])
            drained = await asyncio.gather(*(self.links[peer].drain(max(0.0, deadline - loop.time()))
                                             for peer in waiting))
            if all(drained):
                continue  # every call ended: a failed one gets its second try
            break         # a call still in flight at the deadline: no time for another
        self.goodbye_delivered = sorted(peer for peer in frames if self.links[peer].last_frame_sent)
        missed = sorted(set(self.links) - set(self.goodbye_delivered))
        if missed:
            log.info("presence goodbye of %s did not reach %s within %d ms: they drop its entries within "
                     "PRESENCE_NODE_DOWN_MS", self.node, ", ".join(missed), limits.PRESENCE_GOODBYE_WAIT_MS)

    def _run(self, change: Callable[[int], Diffs]) -> None:
        self._check_member()
        diffs = change(self._clock())
        self._dispatch((), diffs)

    async def _tick_forever(self) -> None:
        while True:
            try:
                output = self.engine.tick(self._clock())
                self._dispatch(output.frames, output.diffs)
            except Exception:  # noqa: BLE001 - a bug in one tick must not stop presence on this node
                log.exception("presence tick failed")
            await asyncio.sleep(self._tick_ms / 1000)

    def _dispatch(self, frames: Iterable[tuple[str, bytes]], diffs: Diffs) -> None:
        for peer, frame in frames:
            link = self.links.get(peer)
            if link is not None:
                link.put(frame)
        for diff in diffs:
            for watch in self._watches.get(diff.topic, ()):
                watch.offer(diff)

    def _forget(self, watch: PresenceWatch) -> None:
        watches = self._watches.get(watch.topic)
        if watches is not None:
            watches.discard(watch)
            if not watches:
                del self._watches[watch.topic]


def plane_for(config: Any, members: Sequence[Any]) -> PresencePlane:
    """The plane of the node `config` (a NodeConfig) describes, with the
    committed `members`: its peers are the other members, reached on their
    client addresses, and follow the set as it changes (`set_peers`); its
    secret is the gossip key (node_plane.py); its incarnation rises per
    start."""
    return PresencePlane(config.name, peer_addresses(config.name, members), gossip_key(config, members))
