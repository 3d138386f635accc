"""The presence half of the `Node` API, `node.presence`: who is online in a
topic, Phoenix.Presence's shape, on this node's `PresencePlane`
(server/available/presence_plane.py). Nothing here waits on Raft: it works
without a quorum.

    with node.presence.session() as session:        # renewed until closed
        session.track(b"room:1", b"ann", b'{"status": "online"}')
        node.presence.list(b"room:1")               # {b"ann": [Meta(ref, meta)]}
        with node.presence.watch(b"room:1") as watch:
            watch.state                             # the listing when it opened
            for item in watch: ...                  # Diff(joins, leaves), or a Listing (resync)

A session's entries leave every node when it is closed, when it is not
renewed within its TTL (the node renews it every third of the TTL while
it is open, from the node's event loop: a session dies with its node's
process) or, if this node dies, within PRESENCE_NODE_DOWN_MS of its last
heartbeat on the others.

The plane runs on the node's event loop (`node.loop`) and is not
thread-safe, so every call here runs there, as node.pubsub's do
(pubsub.py): from another thread a call waits for the loop's answer, from
asyncio code on another loop the `*_async` forms hold no thread.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING, AsyncIterator, Iterator

from tandemkv import limits
from tandemkv.errors import TandemKVError, Unavailable
from tandemkv.server.available.presence import Diff, Listing, Meta
from tandemkv.server.available.presence_plane import PresencePlane, PresenceWatch
from tandemkv.server.node.event_loop import NodeLoop

if TYPE_CHECKING:
    from tandemkv.server.node.node import Node

log = logging.getLogger(__name__)

# Longest one wait of a thread reading a watch before it looks at whether
# the watch was closed.
WATCH_WAIT_SLICE_S = 0.5
# A session is renewed this many times per TTL, so one late renewal does
# not end it.
RENEWALS_PER_TTL = 3

__all__ = ["Diff", "Listing", "Meta", "NodePresence", "NodePresenceWatch", "PresenceSession"]


class PresenceSession:
    """A tracking session: the entries it tracks live while it does."""

    def __init__(self, loop: NodeLoop, plane: PresencePlane, session: int, ttl_ms: int):
        self._loop = loop
        self._plane = plane
        self.id = session
        self.ttl_ms = ttl_ms
        self.closed = False
        self._renewer: asyncio.Task | None = None

    def track(self, topic: bytes, key: bytes, meta: bytes = b"") -> str:
        """Tracks `key` in `topic` with `meta`; returns the entry's ref.
        `FailedPrecondition` if this session already tracks the key there
        (use `update`); `InvalidArgument` past PRESENCE_TOPIC_BYTES_MAX,
        PRESENCE_KEY_BYTES_MAX or PRESENCE_META_BYTES_MAX."""
        return self._loop.call(self._plane.track, self.id, topic, key, meta)

    async def track_async(self, topic: bytes, key: bytes, meta: bytes = b"") -> str:
        return await self._loop.call_async(self._plane.track, self.id, topic, key, meta)

    def update(self, topic: bytes, key: bytes, meta: bytes) -> str:
        """Replaces the meta of a key this session tracks (watchers see a
        leave and a join); returns the new ref."""
        return self._loop.call(self._plane.update, self.id, topic, key, meta)

    async def update_async(self, topic: bytes, key: bytes, meta: bytes) -> str:
        return await self._loop.call_async(self._plane.update, self.id, topic, key, meta)

    def untrack(self, topic: bytes, key: bytes) -> None:
        self._loop.call(self._plane.untrack, self.id, topic, key)

    async def untrack_async(self, topic: bytes, key: bytes) -> None:
        await self._loop.call_async(self._plane.untrack, self.id, topic, key)

    def close(self) -> None:
        """Ends the session: its entries leave every node."""
        if not self.closed and not self._loop.closed:
            self._loop.call(self._close_on_loop)

    async def close_async(self) -> None:
        if not self.closed and not self._loop.closed:
            await self._loop.call_async(self._close_on_loop)

    def __enter__(self) -> PresenceSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> PresenceSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close_async()

    # -- on the loop --

    def _start_renewing(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(self._renew_forever(),
                                                               name=f"presence session {self.id}")

    async def _renew_forever(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.ttl_ms / 1000 / RENEWALS_PER_TTL)
            if self.closed:
                return
            try:
                self._plane.keepalive(self.id)
            except TandemKVError as error:  # it expired (the loop stalled past its TTL): say so once
                log.warning("presence session %d ended: %s", self.id, error)
                self.closed = True
                return

    def _close_on_loop(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._renewer is not None:
            self._renewer.cancel()
        self._plane.close_session(self.id)


class NodePresenceWatch:
    """A watcher of one topic: `state`, then diffs (or a fresh Listing where
    its buffer of PRESENCE_WATCH_DIFFS_MAX overflowed: never a silent gap)."""

    def __init__(self, loop: NodeLoop, watch: PresenceWatch):
        self._loop = loop
        self._watch = watch
        self.topic = watch.topic
        self.state: Listing = watch.state
        self._pending: collections.deque[Diff | Listing] = collections.deque()

    def poll(self, timeout_s: float | None = None) -> list[Diff | Listing]:
        """The items waiting now, after waiting up to `timeout_s` for one
        (None: until there is one or it closes); [] if none came."""
        if self._pending:
            items = list(self._pending)
            self._pending.clear()
            return items
        if self._watch.closed or self._loop.closed:
            return []
        return self._loop.run(self._watch.next_items(timeout_s=timeout_s))

    def __iter__(self) -> Iterator[Diff | Listing]:
        return self

    def __next__(self) -> Diff | Listing:
        while not self._pending:
            if self._watch.closed or self._loop.closed:
                raise StopIteration
            self._pending.extend(self._loop.run(self._watch.next_items(timeout_s=WATCH_WAIT_SLICE_S)))
        return self._pending.popleft()

    def __aiter__(self) -> AsyncIterator[Diff | Listing]:
        return self

    async def __anext__(self) -> Diff | Listing:
        while not self._pending:
            if self._watch.closed or self._loop.closed:
                raise StopAsyncIteration
            self._pending.extend(await self._loop.run_async(self._watch.next_items()))
        return self._pending.popleft()

    def close(self) -> None:
        if not self._loop.closed:
            self._loop.call(self._watch.close)

    def __enter__(self) -> NodePresenceWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class NodePresence:
    def __init__(self, node: Node):
        self._node = node

    def session(self, ttl_ms: int = limits.PRESENCE_SESSION_TTL_MS) -> PresenceSession:
        """Opens a tracking session that this node renews until it is
        closed. `InvalidArgument` for a TTL outside
        PRESENCE_SESSION_TTL_MS_MIN..PRESENCE_SESSION_TTL_MS_MAX;
        `ResourceExhausted` past PRESENCE_SESSIONS_PER_NODE_MAX."""
        loop, plane = self._parts()
        return loop.call(_open_session, loop, plane, ttl_ms)

    async def session_async(self, ttl_ms: int = limits.PRESENCE_SESSION_TTL_MS) -> PresenceSession:
        loop, plane = self._parts()
        return await loop.call_async(_open_session, loop, plane, ttl_ms)

    def list(self, topic: bytes) -> Listing:
        """Who is in `topic` as this node sees it: key -> one Meta per
        tracking session, every node's entries included."""
        loop, plane = self._parts()
        return loop.call(plane.list, topic)

    async def list_async(self, topic: bytes) -> Listing:
        loop, plane = self._parts()
        return await loop.call_async(plane.list, topic)

    def watch(self, topic: bytes) -> NodePresenceWatch:
        loop, plane = self._parts()
        return NodePresenceWatch(loop, loop.call(plane.watch, topic))

    async def watch_async(self, topic: bytes) -> NodePresenceWatch:
        loop, plane = self._parts()
        return NodePresenceWatch(loop, await loop.call_async(plane.watch, topic))

    def status(self) -> dict[str, object]:
        loop, plane = self._parts()
        return loop.call(plane.status)

    def _parts(self) -> tuple[NodeLoop, PresencePlane]:
        loop, plane = self._node.loop, self._node.presence_plane
        if loop is None or plane is None or loop.closed:
            raise Unavailable(f"node {self._node.config.name} is not running: presence starts with node.start()")
        return loop, plane


def _open_session(loop: NodeLoop, plane: PresencePlane, ttl_ms: int) -> PresenceSession:
    session = PresenceSession(loop, plane, plane.open_session(ttl_ms), ttl_ms)
    session._start_renewing()
    return session
