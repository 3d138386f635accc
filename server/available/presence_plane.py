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

Nothing here waits on Raft: presence works without a quorum. Every method
runs on the plane's asyncio loop (the gRPC server's); the engine is never
shared with another thread. Time is the wall clock in ms: heartbeats
compare owners' clocks (docs/presence.md, "Liveness by the owner's clock").
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from typing import Any, Callable, Iterable

import grpc
import grpc.aio

from tandemkv import limits
from tandemkv.v1 import presence_pb2, presence_pb2_grpc

from tandemkv.server.available.node_plane import gossip_key
from tandemkv.server.available.presence import Diff, Listing, OwnerId, PresenceEngine, Ref
from tandemkv.server.available.presence.model import ID_LIMIT, check_topic

log = logging.getLogger(__name__)

# One channel per peer, with subchannels of its own, and a short reconnect
# backoff: gRPC's default grows to two minutes, and a peer back from a
# restart would stay unheard (so its entries hidden) for that long.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
                   ("grpc.max_send_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
                   ("grpc.use_local_subchannel_pool", 1),
                   ("grpc.initial_reconnect_backoff_ms", 200),
                   ("grpc.min_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", limits.PRESENCE_HEARTBEAT_MS)]
# Bytes of frames one Exchange call carries at most (well inside a gRPC message).
EXCHANGE_BYTES_MAX = limits.GRPC_MESSAGE_BYTES_MAX // 4

# `list` is a method of PresencePlane, so inside it the builtin's type goes by this name.
Diffs = list[Diff]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_incarnation() -> int:
    """Rises at every start: the wall clock in µs (a restart within the
    same µs, or after the clock stepped back past the last start, would
    reuse or lower it; docs/presence.md says why clocks must agree)."""
    return time.time_ns() // 1_000 % ID_LIMIT


class PeerLink:
    """Frames to one peer: a bounded queue and a task that sends them in
    batches, one Exchange call at a time."""

    def __init__(self, target: str, address: str, queue_frames_max: int = limits.PRESENCE_PEER_QUEUE_FRAMES_MAX):
        self.target, self.address = target, address
        self._queue: collections.deque[bytes] = collections.deque()
        self._queue_frames_max = queue_frames_max
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._channel: grpc.aio.Channel | None = None
        self.counters: collections.Counter[str] = collections.Counter()
        self.last_error = ""

    def put(self, frame: bytes) -> None:
        if len(self._queue) >= self._queue_frames_max:
            self._queue.popleft()
            self.counters["frames_dropped_queue_full"] += 1
        self._queue.append(frame)
        self._wake.set()

    def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"presence to {self.target}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()

    async def _run(self) -> None:
        assert self._channel is not None
        stub = presence_pb2_grpc.PresenceStub(self._channel)
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            batch: list[bytes] = []
            size = 0
            while self._queue and (not batch or size + len(self._queue[0]) <= EXCHANGE_BYTES_MAX):
                frame = self._queue.popleft()
                batch.append(frame)
                size += len(frame)
            try:
                await stub.Exchange(presence_pb2.PresenceExchangeRequest(frames=batch),
                                    timeout=limits.PRESENCE_EXCHANGE_TIMEOUT_MS / 1000)
                self.counters["frames_sent"] += len(batch)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a lost batch is a lost datagram: counted, repaired
                self.counters["frames_failed"] += len(batch)
                details = error.details() if isinstance(error, grpc.aio.AioRpcError) else str(error)
                self.last_error = f"{type(error).__name__}: {details}"

    def status(self) -> dict[str, object]:
        return {"address": self.address, "queued": len(self._queue), **self.counters,
                "last_error": self.last_error}


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

    def start(self) -> None:
        """Starts ticking and the peer links; call on the loop the plane runs on."""
        assert not self.started
        self.started = True
        for link in self.links.values():
            link.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever(), name="presence ticks")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        for link in self.links.values():
            await link.stop()
        for watches in list(self._watches.values()):
            for watch in list(watches):
                watch.close()

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
        return self.engine.list(check_topic(topic))

    def watch(self, topic: bytes, diffs_max: int = limits.PRESENCE_WATCH_DIFFS_MAX) -> PresenceWatch:
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

    def _run(self, change: Callable[[int], Diffs]) -> None:
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


def plane_for(config: Any) -> PresencePlane:
    """The plane of the node `config` (a NodeConfig) describes: its peers
    are the other members, reached on their client addresses; its secret
    is the gossip key (node_plane.py); its incarnation rises per start."""
    peers = {member.name: member.client_address for member in config.members if member.name != config.name}
    return PresencePlane(config.name, peers, gossip_key(config))
