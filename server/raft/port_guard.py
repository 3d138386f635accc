"""Bounds what the Raft port buffers for one frame, before anything in it
is authenticated.

pysyncobj frames every message as a 4-byte length (native signed int) and
the (encrypted) bytes; its connection reads everything the socket holds
into one buffer, and only then looks for a whole frame. A header declaring
2**31 - 1 bytes made a node buffer whatever followed, hundreds of MB, while
its tick thread kept reading instead of running Raft. Here a connection
reads only until its first frame is whole, and a frame declaring more than
the limit (or a negative length) drops the connection before its bytes are
read: no legitimate member sends one (limits.RAFT_FRAME_BYTES_MAX).

This module imports nothing of pysyncobj: the Raft adapter, the one module
that does, hands it the connection class to bound (`bound_frame_reads`).
"""

from __future__ import annotations

import enum
import logging
import struct
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

# pysyncobj's frame header: struct.pack('i', len(data)).
FRAME_HEADER = struct.Struct("i")
# A refused frame is logged at most this often (the rest are counted).
REFUSED_LOG_INTERVAL_S = 10.0

# The pysyncobj internals this replaces or uses (checked by the adapter).
READ_LOOP = "_TcpConnection__tryReadBuffer"
READ_ONE = "_TcpConnection__processRead"
READ_BUFFER = "_TcpConnection__readBuffer"
LAST_READ_TIME = "_TcpConnection__lastReadTime"
SOCKET = "_TcpConnection__socket"


class Frame(enum.Enum):
    INCOMPLETE = "incomplete"  # read on
    COMPLETE = "complete"      # the first frame is whole: parse before reading more
    REFUSED = "refused"        # the first frame declares too much: drop the connection


def first_frame(buffered: bytes, frame_bytes_max: int) -> tuple[Frame, int | None]:
    """What the buffer's first frame is, and its declared length (None
    while the header is incomplete)."""
    if len(buffered) < FRAME_HEADER.size:
        return Frame.INCOMPLETE, None
    (declared,) = FRAME_HEADER.unpack_from(buffered)
    if not 0 <= declared <= frame_bytes_max:
        return Frame.REFUSED, declared
    if len(buffered) - FRAME_HEADER.size >= declared:
        return Frame.COMPLETE, declared
    return Frame.INCOMPLETE, declared


class RefusedFrames:
    """How many frames were refused (any thread may read `count`)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._last_logged = float("-inf")
        self._unlogged = 0

    def note(self, peer: str, declared: int, frame_bytes_max: int) -> None:
        with self._lock:
            self.count += 1
            self._unlogged += 1
            now = time.monotonic()
            if now - self._last_logged < REFUSED_LOG_INTERVAL_S:
                return
            unlogged, self._unlogged, self._last_logged = self._unlogged, 0, now
        log.warning("raft port: dropped the connection from %s: a frame declared %d bytes, over "
                    "RAFT_FRAME_BYTES_MAX (%d); %d frame(s) refused since the last such line",
                    peer, declared, frame_bytes_max, unlogged)


refused_frames = RefusedFrames()


def bound_frame_reads(connection_class: type, frame_bytes_max: int,
                      clock: Callable[[], float]) -> None:
    """Replaces `connection_class`'s read loop by one that stops once the
    first frame is whole and drops a frame declared over `frame_bytes_max`
    before reading its bytes. The poller is level-triggered: what stays in
    the socket is read on the next poll, after the whole frame is parsed.
    A connection so buffers at most one frame plus one receive. `clock`
    is the one the connection times its reads with."""
    read_one = getattr(connection_class, READ_ONE)

    def read_bounded(connection) -> None:
        while True:
            state, declared = first_frame(getattr(connection, READ_BUFFER), frame_bytes_max)
            if state is Frame.REFUSED:
                refused_frames.note(_peer(connection), declared, frame_bytes_max)
                connection.disconnect()
                return
            if state is Frame.COMPLETE or not read_one(connection):
                break
        setattr(connection, LAST_READ_TIME, clock())

    read_bounded.bounds_frames_to = frame_bytes_max
    setattr(connection_class, READ_LOOP, read_bounded)


def _peer(connection) -> str:
    try:
        host, port = getattr(connection, SOCKET).getpeername()[:2]
        return f"{host}:{port}"
    except (OSError, AttributeError, ValueError):
        return "an unknown peer"
