"""The half of `Node` that runs on its event loop: the loop itself
(event_loop.py) and the planes on it, best-effort pub/sub
(available/pubsub_plane.py) and presence (available/presence_plane.py).
The loop and the planes are made together on first use of
`event_loop()` (the gRPC server that serves the node may be built before
`start()`), started by `start()` and stopped first thing in `stop()`:
a presence plane that stops says goodbye to its peers, and the relays
end their streams, while the rest of the node still runs.
"""

from __future__ import annotations

import logging

from tandemkv.server.available.presence_plane import PresencePlane, plane_for as presence_plane_for
from tandemkv.server.available.pubsub_plane import PubSubPlane, plane_for as pubsub_plane_for
from tandemkv.server.node.config import NodeConfig
from tandemkv.server.node.event_loop import NodeLoop

log = logging.getLogger(__name__)

# Longest a stopping node waits for each loop plane (pub/sub, presence) to stop.
PLANE_STOP_WAIT_S = 5.0


class NodeLoopPlanes:
    """Mixed into `Node`, which sets `loop`, `pubsub_plane` and
    `presence_plane` to None and has `config`."""

    config: NodeConfig
    loop: NodeLoop | None
    pubsub_plane: PubSubPlane | None
    presence_plane: PresencePlane | None

    def event_loop(self) -> NodeLoop:
        """The node's event loop, made with its pub/sub and presence planes
        (built, not started: `start()` starts them) on first use. The gRPC
        server that serves the node runs on it, and may be built before
        `start()` (serve.py binds the port first)."""
        if self.loop is None:
            self.loop = NodeLoop()
            self.pubsub_plane, self.presence_plane = self.loop.run(_built_planes(self.config))
        return self.loop

    def _start_loop_planes(self) -> None:
        # Started on the loop they run on: their relay streams and ticks
        # are tasks of that loop.
        self.event_loop().run(_started(self.pubsub_plane, self.presence_plane))

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
        self.pubsub_plane = self.presence_plane = None


async def _built_planes(config: NodeConfig) -> tuple[PubSubPlane, PresencePlane]:
    return pubsub_plane_for(config), presence_plane_for(config)


async def _started(*planes) -> None:
    for plane in planes:
        plane.start()
