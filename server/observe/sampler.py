"""A task on the node's event loop that looks at the node every
OBSERVE_SAMPLE_INTERVAL_MS: counts leader changes, keeps the log tags'
term current, and keeps the last samples (operations per second, mean
latency) the dashboard draws. Holds no thread."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from typing import Any

from tandemkv import limits
from tandemkv.server.observe.context import TAGS
from tandemkv.server.observe.metrics import NodeMetrics

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Sample:
    at_s: float            # wall clock, seconds since the epoch
    operations_per_s: float
    latency_ms_mean: float
    leader: str
    term: int


class Sampler:
    def __init__(self, node: Any, metrics: NodeMetrics,
                 interval_s: float = limits.OBSERVE_SAMPLE_INTERVAL_MS / 1000) -> None:
        self._node = node
        self._metrics = metrics
        self._interval_s = interval_s
        self.samples: collections.deque[Sample] = collections.deque(maxlen=limits.OBSERVE_SAMPLES_MAX)
        self._leader: str | None = None
        self._calls = (0, 0.0, time.monotonic())
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """On the event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                self.sample_once()
            except Exception:  # noqa: BLE001 - a bad look must not end the sampling
                log.warning("observe: sampling the node failed", exc_info=True)
            await asyncio.sleep(self._interval_s)

    def sample_once(self) -> None:
        try:
            status = self._node.status()
        except Exception:  # noqa: BLE001 - a stopping node: nothing to sample
            return
        leader = status.leader or ""
        if self._leader is not None and leader != self._leader:
            self._metrics.raft.leader_changes.inc()
            log.info("leader changed from %s to %s (term %d)", self._leader or "none", leader or "none",
                     status.term)
        self._leader = leader
        TAGS.node, TAGS.term = status.name, status.term
        rpcs = self._metrics.rpcs
        count, seconds, now = rpcs.unary_total, rpcs.unary_seconds_total, time.monotonic()
        last_count, last_seconds, last_at = self._calls
        self._calls = (count, seconds, now)
        calls = count - last_count
        elapsed_s = max(now - last_at, 1e-6)
        self.samples.append(Sample(at_s=time.time(), operations_per_s=calls / elapsed_s,
                                   latency_ms_mean=1000 * (seconds - last_seconds) / calls if calls else 0.0,
                                   leader=leader, term=status.term))
