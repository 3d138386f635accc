"""`PeerLink`: a presence plane's frames to one peer (presence_plane.py), as
unary `Presence.Exchange` calls on the peer's client port: a bounded queue
(PRESENCE_PEER_QUEUE_FRAMES_MAX, the oldest dropped and counted) and a task
that sends what is queued in batches, one call in flight at a time. A
failed call's frames are dropped and counted, as a lost datagram would be:
the engine repairs what is lost. `put_last` queues a goodbye in place of
everything still waiting, and `drain` waits, under a bound, until it went.

Runs on the plane's event loop; knows frames only as bytes.
"""

from __future__ import annotations

import asyncio
import collections

import grpc
import grpc.aio

from tandemkv import limits
from tandemkv.server.security.member_channels import open_member_channel
from tandemkv.v1 import presence_pb2, presence_pb2_grpc

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
        # Set while no frame waits and no call is in flight (what `drain` waits for).
        self._idle = asyncio.Event()
        self._idle.set()
        # The frame `put_last` queued, and whether a call that carried it succeeded.
        self._last_frame: bytes | None = None
        self.last_frame_sent = False

    def put(self, frame: bytes) -> None:
        if len(self._queue) >= self._queue_frames_max:
            self._queue.popleft()
            self.counters["frames_dropped_queue_full"] += 1
        self._queue.append(frame)
        self._idle.clear()
        self._wake.set()

    def put_last(self, frame: bytes) -> None:
        """Queues `frame` in place of every frame still waiting (a goodbye:
        what was queued before it would be refused after it)."""
        self.counters["frames_dropped_goodbye"] += len(self._queue)
        self._queue.clear()
        self._last_frame = frame
        self.put(frame)

    async def drain(self, timeout_s: float) -> bool:
        """Waits until every queued frame was sent or its call failed;
        False if that took longer than `timeout_s` or the link never started."""
        if self._task is None or self._task.done():
            return not self._queue
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    def start(self) -> None:
        # Plaintext or TLS, as the cluster's client ports speak (server/security/member_channels.py).
        self._channel = open_member_channel(self.address, CHANNEL_OPTIONS)
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
                self._idle.set()
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
                self.last_frame_sent |= any(frame is self._last_frame for frame in batch)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a lost batch is a lost datagram: counted, repaired
                self.counters["frames_failed"] += len(batch)
                details = error.details() if isinstance(error, grpc.aio.AioRpcError) else str(error)
                self.last_error = f"{type(error).__name__}: {details}"

    def status(self) -> dict[str, object]:
        return {"address": self.address, "queued": len(self._queue), **self.counters,
                "last_error": self.last_error}
