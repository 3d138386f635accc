"""`GossipInbox`: gossip frames waiting for the plane's gossip thread.

Two ways in: the UDP receiver queues each datagram without waiting
(`put_nowait`), and the `Gossip.Deliver` injection hook queues a call's
frames and waits for the verdict on them (`put_and_wait`). Both share one
bound, GOSSIP_INBOX_DELIVERIES_MAX; past it a datagram is dropped and a
call refused, both counted. The gossip thread takes everything queued
(`take`) and settles each delivery with its verdict once it has judged
the frames.

This module knows threads and futures; never what a frame means.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
from typing import NamedTuple

from tandemkv.errors import ResourceExhausted
from tandemkv.limits import GOSSIP_INBOX_DELIVERIES_MAX

# How long a Gossip.Deliver call waits to learn whether its frames were accepted.
DELIVER_VERDICT_WAIT_S = 0.5


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What became of one delivery: frames rejected by reason (this call),
    and every rejection this node has counted so far."""

    rejected: dict[str, int]
    rejected_total: dict[str, int]


class Delivery(NamedTuple):
    frames: list[bytes]
    verdict: concurrent.futures.Future


class GossipInbox:
    """Thread-safe; `on_put` is called (outside the lock) after each put,
    to wake the gossip thread."""

    def __init__(self, node_name: str, on_put) -> None:
        self._node_name = node_name
        self._on_put = on_put
        self._lock = threading.Lock()
        self._queued: collections.deque[Delivery] = collections.deque()
        self._counters: collections.Counter[str] = collections.Counter()

    def put_nowait(self, frames: list[bytes]) -> None:
        """Queues frames without waiting for the verdict (the datagram
        receiver); a full inbox drops them (counted)."""
        with self._lock:
            if len(self._queued) >= GOSSIP_INBOX_DELIVERIES_MAX:
                self._counters["deliveries_refused"] += 1
                return
            self._queued.append(Delivery(list(frames), concurrent.futures.Future()))
        self._on_put()

    def put_and_wait(self, frames: list[bytes]) -> Verdict | None:
        """Queues frames and returns the verdict on them, or None if the
        thread did not get to them within DELIVER_VERDICT_WAIT_S."""
        delivery = Delivery(list(frames), concurrent.futures.Future())
        with self._lock:
            if len(self._queued) >= GOSSIP_INBOX_DELIVERIES_MAX:
                self._counters["deliveries_refused"] += 1
                raise ResourceExhausted(
                    f"node {self._node_name}: {GOSSIP_INBOX_DELIVERIES_MAX} gossip deliveries "
                    "queued (GOSSIP_INBOX_DELIVERIES_MAX); the next round repairs this")
            self._queued.append(delivery)
        self._on_put()
        try:
            return delivery.verdict.result(timeout=DELIVER_VERDICT_WAIT_S)
        except concurrent.futures.TimeoutError:
            return None

    def take(self) -> list[Delivery]:
        """Everything queued, oldest first; the caller settles each one's
        `verdict`."""
        with self._lock:
            taken = list(self._queued)
            self._queued.clear()
        return taken

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters, queued=len(self._queued))
