"""The half of `Node` that runs on its event loop: the loop itself
(event_loop.py) and the planes on it, best-effort pub/sub
(available/pubsub_plane.py) and presence (available/presence_plane.py).
The loop and the planes are made together on first use of
`event_loop()` (the gRPC server that serves the node may be built before
`start()`), started by `start()` and stopped first thing in `stop()`:
a presence plane that stops says goodbye to its peers, and the relays
end their streams, while the rest of the node still runs.

All three available planes (these two and the CRDT plane,
`node.available`) follow the committed member set: `start()` gives them
the set the node applied (not the config file's list), and every set the
node applies after (`on_members_changed`) is handed on, so a member added
at runtime is gossiped, relayed and heard from, and a member removed is
dropped (links closed, its entries and cursors forgotten) everywhere at
once, with no timer. A node that is no longer a member has no peers: its
planes dial nobody (it refuses client calls besides: membership.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Sequence

from tandemkv.errors import Unavailable
from tandemkv.server.available.node_plane import gossip_key, peer_addresses
from tandemkv.server.available.runtime import AvailablePlane
from tandemkv.server.available.presence_plane import PresencePlane, plane_for as presence_plane_for
from tandemkv.server.available.pubsub_plane import PubSubPlane, plane_for as pubsub_plane_for
from tandemkv.server.node.config import NodeConfig
from tandemkv.server.node.event_loop import NodeLoop

log = logging.getLogger(__name__)

# Longest a stopping node waits for each loop plane (pub/sub, presence) to stop.
PLANE_STOP_WAIT_S = 5.0


class NodeLoopPlanes:
    """Mixed into `Node`, which sets `loop`, `pubsub_plane`,
    `presence_plane` and `available` to None and has `config`; the member
    set comes from NodeMembership (`member_set`, `on_members_changed`)."""

    config: NodeConfig
    loop: NodeLoop | None
    pubsub_plane: PubSubPlane | None
    presence_plane: PresencePlane | None
    available: AvailablePlane | None
    # Set once `start()` subscribed the planes to the member set (membership.py's hook).
    _planes_follow_members = False
    # Set once a member set without this node retired its planes.
    _planes_retired = False
    # Orders the loop planes' member changes (made on first use, on the loop).
    _loop_members_lock: asyncio.Lock | None = None

    def event_loop(self) -> NodeLoop:
        """The node's event loop, made with its pub/sub and presence planes
        (built, not started: `start()` starts them) on first use. The gRPC
        server that serves the node runs on it, and may be built before
        `start()` (serve.py binds the port first)."""
        if self.loop is None:
            self.loop = NodeLoop()
            self.pubsub_plane, self.presence_plane = self.loop.run(
                _built_planes(self.config, self.member_set().members))
        return self.loop

    def _start_loop_planes(self) -> None:
        # The planes may have been built before start() loaded the stored
        # member set: they take it up before they start, on the loop they
        # run on (their relay streams and ticks are tasks of that loop).
        loop = self.event_loop()
        loop.run(self._loop_planes_follow())
        loop.run(_started(self.pubsub_plane, self.presence_plane))
        if not self._planes_follow_members:
            self._planes_follow_members = True
            self.on_members_changed(self._planes_follow)
        # Once more, now that the hook is in place: a set applied since the
        # planes were built is not missed.
        self._planes_follow(self.member_set())

    def _planes_follow(self, member_set: Any) -> None:
        """Hands a newly applied member set to every available plane; on the
        Raft tick thread, so it only hands over and returns. A node the set
        removed retires its planes, in a thread of its own."""
        members = tuple(member_set.members)
        removed = self.removed_reason()
        if removed is not None and not self._planes_retired:
            self._planes_retired = True
            threading.Thread(target=self._retire_planes, args=(removed,), name="tandemkv-retire-planes",
                             daemon=True).start()
        available = self.available
        if available is not None:
            peers = {**peer_addresses(self.config.name, members), self.config.name: self.config.client_address}
            available.set_members(peers, gossip_key(self.config, members))
        node_loop = self.loop
        if node_loop is not None and not node_loop.closed:
            try:
                asyncio.run_coroutine_threadsafe(self._loop_planes_follow(), node_loop.loop)
            except RuntimeError:  # the loop closed meanwhile: the node is stopping
                pass

    def _retire_planes(self, reason: str) -> None:
        """This node was removed: its planes stop, and refuse calls saying why.
        The others dropped it already; its CRDT replica is no replica any
        more (node.crdt refuses its calls), its relay and presence links
        close."""
        log.warning("node %s: stopping its available planes: %s", self.config.name, reason)
        available, node_loop = self.available, self.loop
        if available is not None:
            available.stop()
        if node_loop is None or node_loop.closed:
            return
        for plane in (self.pubsub_plane, self.presence_plane):
            if plane is not None and plane.started:
                try:
                    node_loop.run(plane.retire(reason), PLANE_STOP_WAIT_S)
                except Unavailable:
                    return  # the node stopped meanwhile, and its planes with it
                except Exception:  # noqa: BLE001 - the node keeps refusing calls whatever this does
                    log.exception("retiring a plane of node %s failed", self.config.name)

    async def _loop_planes_follow(self) -> None:
        """The pub/sub and presence planes take up the member set the node
        applied last (in order: one change at a time, the latest wins)."""
        if self._loop_members_lock is None:
            self._loop_members_lock = asyncio.Lock()
        async with self._loop_members_lock:
            members = tuple(self.member_set().members)
            peers, key = peer_addresses(self.config.name, members), gossip_key(self.config, members)
            for plane in (self.pubsub_plane, self.presence_plane):
                if plane is not None:
                    await plane.set_peers(peers, key)

    def _stop_loop_planes(self) -> None:
        # Before the rest of the node: a presence plane that stops says
        # goodbye to its peers, and the relays end their streams.
        if self.loop is None:
            return
        for plane in (self.pubsub_plane, self.presence_plane):
            if plane is not None and plane.started:
                try:
                    self.loop.run(plane.stop(), PLANE_STOP_WAIT_S)
                except Exception:  # noqa: BLE001 - a plane that fails to stop must not keep the node up
                    log.exception("stopping a plane of node %s failed", self.config.name)
        self.loop.close()
        self.loop = None
        self._loop_members_lock = None
        self.pubsub_plane = self.presence_plane = None


async def _built_planes(config: NodeConfig, members: Sequence[Any]) -> tuple[PubSubPlane, PresencePlane]:
    return pubsub_plane_for(config, members), presence_plane_for(config, members)


async def _started(*planes) -> None:
    for plane in planes:
        plane.start()
