"""Moves gossip frames between nodes as UDP datagrams, on the host and port
of each node's client address (UDP ports are a namespace of their own, so
the gRPC server and gossip share the number, and no setting is added).

Why datagrams: gossip needs no connection. Every frame is authenticated
(HMAC) and bounded (the core splits payloads into frames of at most
UDP_FRAME_BYTES_MAX), a lost frame is repaired by the next round, and a
healed partition is crossed by the very next datagram, with no connection
to re-establish. It also keeps a gRPC client out of the node process.
This is the only way nodes gossip; the `Gossip.Deliver` RPC
(api/crdt_servicers.py) is a hook for tests and operators to inject frames
and see the verdict, never called by a node.

Sending never blocks: a frame the kernel will not take now is dropped and
counted. A receiver thread hands each datagram to `on_frames`.

This module knows sockets and addresses; never what a frame means.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
from typing import Callable, Iterable

from tandemkv.limits import GOSSIP_SOCKET_BUFFER_BYTES, UDP_FRAME_BYTES_MAX
from tandemkv.server.available.gossip.protocol import Outgoing

log = logging.getLogger(__name__)

# How long close() waits for the receiver thread.
RECEIVER_JOIN_S = 5.0
# The receiver's longest wait in one recvfrom: closing a socket does not wake
# a thread blocked on it, so the receiver looks at the closed flag this often.
RECEIVE_POLL_S = 0.2


def _resolve(address: str) -> tuple[int, tuple]:
    """(family, sockaddr) of a 'host:port' for UDP."""
    host, _, port = address.rpartition(":")
    info = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_DGRAM)[0]
    return info[0], info[4]


class GossipTransport:
    """Sends frames to peers by name, receives frames on `bind_address`.
    `send` is thread-safe."""

    def __init__(self, addresses: dict[str, str], bind_address: str,
                 on_frames: Callable[[list[bytes]], None]) -> None:
        self._peers = {peer: _resolve(address)[1] for peer, address in addresses.items()}
        family, sockaddr = _resolve(bind_address)
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            self._socket.setsockopt(socket.SOL_SOCKET, option, GOSSIP_SOCKET_BUFFER_BYTES)
        self._socket.bind(sockaddr)
        self._socket.settimeout(RECEIVE_POLL_S)
        self._on_frames = on_frames
        self.counters: collections.Counter[str] = collections.Counter()
        self._closed = threading.Event()
        self._receiver = threading.Thread(target=self._receive, name="tandemkv-gossip-udp",
                                          daemon=True)
        self._receiver.start()

    def set_addresses(self, addresses: dict[str, str]) -> None:
        """Replaces the peers frames go to (the committed members but this
        node): a peer left out is sent nothing more. An address that does
        not resolve keeps the peer's last one, if it had one, and is
        counted (`addresses_unresolved`)."""
        resolved = {}
        for peer, address in addresses.items():
            try:
                resolved[peer] = _resolve(address)[1]
            except (OSError, ValueError):
                self.counters["addresses_unresolved"] += 1
                log.warning("gossip peer %s at %r does not resolve; keeping its last address", peer, address)
                if peer in self._peers:
                    resolved[peer] = self._peers[peer]
        self._peers = resolved

    def peers(self) -> list[str]:
        """The peers frames go to."""
        return sorted(self._peers)

    def send(self, outgoing: Iterable[Outgoing]) -> None:
        for peer, frame in outgoing:
            address = self._peers.get(peer)
            if address is None:
                self.counters["frames_dropped_no_address"] += 1
                continue
            if len(frame) > UDP_FRAME_BYTES_MAX:
                self.counters["frames_dropped_too_large"] += 1
                continue
            try:
                self._socket.sendto(frame, socket.MSG_DONTWAIT, address)
            except OSError:  # buffer full, peer unreachable: the next round repairs it
                self.counters["frames_failed"] += 1
                continue
            self.counters["frames_sent"] += 1

    def close(self) -> None:
        self._closed.set()
        self._receiver.join(RECEIVER_JOIN_S)
        self._socket.close()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                frame, _ = self._socket.recvfrom(UDP_FRAME_BYTES_MAX + 1)
            except socket.timeout:
                continue
            except OSError:
                if self._closed.is_set():
                    return
                continue  # e.g. ICMP port unreachable reported on this socket
            self.counters["frames_received"] += 1
            try:
                self._on_frames([frame])
            except Exception:  # noqa: BLE001 - a refused delivery must not end the receiver
                self.counters["frames_refused"] += 1
