"""Keeps the standard health service telling the truth: the node's
statuses follow its readiness instead of being set once at start.

Every HEALTH_POLL_INTERVAL_S a small thread reads `node.status()`
(cheap: a few fields of the replica) and sets:
- "" and the strong-plane services (KV, Counter, Cluster, Lease, Registry,
  Lock, Election, Watch): SERVING only while the node knows a leader, has a
  quorum and has caught up with the log (`ready`); NOT_SERVING without a
  leader or quorum, while catching up, and once the node is stopping;
- the available plane's services (Crdt, Gossip): SERVING while the plane
  runs, since CRDT tables stay writable without a quorum by design.
A status is set only when it changes, so health watchers hear of changes
only. Stopping the server stops the thread before the health service
enters its graceful shutdown (everything NOT_SERVING for good).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable

from grpc_health.v1 import health_pb2

# How often the follower reads the node's readiness; a node that loses its
# quorum is reported NOT_SERVING within this (plus the Raft timeouts that
# make it notice).
HEALTH_POLL_INTERVAL_S = 0.25
# Longest stop() waits for the thread.
HEALTH_STOP_WAIT_S = 5.0

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

log = logging.getLogger(__name__)


class HealthFollower:
    def __init__(self, node: Any, set_status: Callable[[str, int], None], strong_services: Iterable[str],
                 available_services: Iterable[str],
                 interval_s: float = HEALTH_POLL_INTERVAL_S) -> None:
        self._node = node
        # Sets one service's status on the health servicer (on its event loop).
        self._set_status = set_status
        self._strong = ("", *strong_services)
        self._available = tuple(available_services)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: dict[str, int] = {}

    def start(self) -> None:
        """Sets every status once now, then keeps them following."""
        self.follow_once()
        self._thread = threading.Thread(target=self._run, name="tandemkv-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(HEALTH_STOP_WAIT_S)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.follow_once()
            except Exception:  # noqa: BLE001 - the follower must outlive one bad read
                log.exception("health: reading the node's readiness failed")
                self._set_all(NOT_SERVING)

    def follow_once(self) -> None:
        strong = SERVING if self._strong_ready() else NOT_SERVING
        available = SERVING if getattr(self._node, "available", None) is not None else NOT_SERVING
        for service in self._strong:
            self._set(service, strong)
        for service in self._available:
            self._set(service, available)

    def _strong_ready(self) -> bool:
        try:
            status = self._node.status()
        except Exception:  # noqa: BLE001 - a node that cannot say is not serving
            return False
        return bool(status.ready and status.leader and status.has_quorum)

    def _set_all(self, value: int) -> None:
        for service in (*self._strong, *self._available):
            self._set(service, value)

    def _set(self, service: str, value: int) -> None:
        if self._stop.is_set() or self._current.get(service) == value:
            return
        self._current[service] = value
        self._set_status(service, value)
