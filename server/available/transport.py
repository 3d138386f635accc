"""Moves gossip frames between nodes: `Gossip.Deliver` calls on each peer's
client gRPC server.

Sending never blocks the caller: frames for one peer go out as one
`Deliver` future with a short deadline (`GOSSIP_SEND_DEADLINE_S`), and at
most `GOSSIP_IN_FLIGHT_PER_PEER_MAX` calls per peer are in flight; frames
beyond that are dropped and counted (gossip is repaired by the next round,
so a drop costs latency, never safety). Delivery is one way: a peer's
answers come back as `Deliver` calls of its own.

One channel per peer lives as long as the transport: channels are never
replaced or closed while calls may be in flight (closing a channel with
calls in flight can crash grpc's native layer). A connection stalled by a
partition is noticed by HTTP/2 keepalive pings within
GOSSIP_KEEPALIVE_MS + GOSSIP_KEEPALIVE_TIMEOUT_MS, and gRPC reconnects by
itself, backing off at most GOSSIP_RECONNECT_BACKOFF_MS_MAX.

This module knows gRPC and addresses; never what a frame means.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Iterable

import grpc

from tandemkv import limits
from tandemkv.v1 import crdt_pb2, crdt_pb2_grpc

from .gossip import Outgoing

log = logging.getLogger(__name__)

# Deadline of one Deliver call; a peer slower than this is treated as lost.
GOSSIP_SEND_DEADLINE_S = 1.0
# Deliver calls in flight to one peer; more frames are dropped (counted).
GOSSIP_IN_FLIGHT_PER_PEER_MAX = 4
# Bytes of frames in one Deliver call (frames are at most 256 KiB each);
# a call also holds at most limits.GOSSIP_DELIVER_FRAMES_MAX frames.
GOSSIP_CALL_BYTES_MAX = limits.GRPC_MESSAGE_BYTES_MAX // 2
# How often close() looks whether the last calls finished.
CLOSE_POLL_S = 0.02
# Keepalive pings on an idle or stalled connection, and how long an
# unanswered ping takes to declare it dead.
GOSSIP_KEEPALIVE_MS = 1_000
GOSSIP_KEEPALIVE_TIMEOUT_MS = 1_000
# Longest pause between two reconnect attempts to a peer.
GOSSIP_RECONNECT_BACKOFF_MS_MAX = 1_000
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", GOSSIP_KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", GOSSIP_KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", GOSSIP_RECONNECT_BACKOFF_MS_MAX),
)


class GossipTransport:
    """Sends frames to peers by name. Thread-safe."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self._addresses = dict(addresses)
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._in_flight: collections.Counter[str] = collections.Counter()
        self.counters: collections.Counter[str] = collections.Counter()
        self._closed = False
        # Calls in flight per channel: close() closes a channel only once idle.
        self._calls: collections.Counter[int] = collections.Counter()
        self._retired: list[grpc.Channel] = []

    def send(self, outgoing: Iterable[Outgoing]) -> None:
        by_peer: dict[str, list[bytes]] = collections.defaultdict(list)
        for peer, frame in outgoing:
            by_peer[peer].append(frame)
        for peer, frames in by_peer.items():
            for batch in _batches(frames):
                self._send_batch(peer, batch)

    def close(self) -> None:
        """Stops sending; closes every channel whose calls have finished
        (each call ends by its deadline; the rest go with the process)."""
        with self._lock:
            self._closed = True
            self._retired += list(self._channels.values())
            self._channels = {}
        deadline = time.monotonic() + GOSSIP_SEND_DEADLINE_S
        while self._close_idle_retired() and time.monotonic() < deadline:
            time.sleep(CLOSE_POLL_S)

    def _close_idle_retired(self) -> int:
        """Closes retired channels with no call in flight; returns how many
        retired channels are still busy."""
        with self._lock:
            idle = [c for c in self._retired if not self._calls[id(c)]]
            self._retired = [c for c in self._retired if self._calls[id(c)]]
            busy = len(self._retired)
        for channel in idle:
            channel.close()
        return busy

    def in_flight(self) -> dict[str, int]:
        with self._lock:
            return {peer: count for peer, count in self._in_flight.items() if count}

    def _send_batch(self, peer: str, frames: list[bytes]) -> None:
        with self._lock:
            if self._closed:
                return
            address = self._addresses.get(peer)
            if not address:
                self.counters["frames_dropped_no_address"] += len(frames)
                return
            if self._in_flight[peer] >= GOSSIP_IN_FLIGHT_PER_PEER_MAX:
                self.counters["frames_dropped_in_flight"] += len(frames)
                return
            self._in_flight[peer] += 1
            channel = self._channel(peer, address)
            self._calls[id(channel)] += 1
        stub = crdt_pb2_grpc.GossipStub(channel)
        try:
            future = stub.Deliver.future(crdt_pb2.GossipFrames(frames=frames),
                                         timeout=GOSSIP_SEND_DEADLINE_S)
        except Exception:  # noqa: BLE001 - a closed channel; the round repairs it
            self._done(peer, channel, False, len(frames))
            return
        future.add_done_callback(lambda done: self._done(peer, channel, _ok(done), len(frames)))

    def _channel(self, peer: str, address: str) -> grpc.Channel:
        """The peer's one channel (under _lock), made on first use."""
        channel = self._channels.get(peer)
        if channel is None:
            channel = self._channels[peer] = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
            self.counters["channels_opened"] += 1
        return channel

    def _done(self, peer: str, channel: grpc.Channel, ok: bool, frame_count: int) -> None:
        with self._lock:
            self._in_flight[peer] -= 1
            self._calls[id(channel)] -= 1
            if not self._calls[id(channel)]:
                del self._calls[id(channel)]
            self.counters["frames_delivered" if ok else "frames_failed"] += frame_count


def _ok(future: grpc.Future) -> bool:
    try:
        return future.exception() is None
    except grpc.FutureCancelledError:
        return False


def _batches(frames: list[bytes]) -> list[list[bytes]]:
    batches: list[list[bytes]] = [[]]
    size = 0
    for frame in frames:
        full = len(batches[-1]) >= limits.GOSSIP_DELIVER_FRAMES_MAX
        if batches[-1] and (full or size + len(frame) > GOSSIP_CALL_BYTES_MAX):
            batches.append([])
            size = 0
        batches[-1].append(frame)
        size += len(frame)
    return [batch for batch in batches if batch]
