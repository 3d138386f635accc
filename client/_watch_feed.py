"""One user watch as the watch multiplexer (`_watch_mux_core`) sees it: a
`Feed` holds its range, the revisions it has reached, and a bounded buffer
of the responses its user has not read (WATCH_CLIENT_BUFFER_EVENTS_MAX
events, WATCH_CLIENT_BUFFER_BYTES_MAX bytes); `WatchOverflow` is what a
`resync=False` watch raises past it. No I/O.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from tandemkv import errors, limits
from tandemkv.v1 import kv_pb2, watch_pb2

if TYPE_CHECKING:
    from tandemkv.client._watch_mux_core import MuxStream


class WatchOverflow(errors.TandemKVError):
    """A watch's user fell WATCH_CLIENT_BUFFER_EVENTS_MAX events (or
    WATCH_CLIENT_BUFFER_BYTES_MAX bytes) behind and the watch was made with
    `resync=False`: every event before `revision` was delivered, none after.
    Re-read what you need and watch again from a later revision, or watch
    again from `revision` to read the rest from the node's history."""

    status = errors.Status.RESOURCE_EXHAUSTED

    def __init__(self, message: str, revision: int):
        super().__init__(message)
        self.revision = revision


class Feed:
    """One watch: what it asks, where its user is, what waits for its user."""

    def __init__(self, key: bytes, prefix: bool, start_revision: int, prev_kv: bool, resync: bool):
        self.key, self.prefix, self.prev_kv, self.resync = key, prefix, prev_kv, resync
        # First revision not given to the user yet (where a new watch resumes).
        self.next_revision = start_revision
        # First revision not buffered yet (where a re-created watch starts).
        self.buffered_next = start_revision
        self.items: collections.deque[watch_pb2.WatchResponse] = collections.deque()
        self.events_buffered = 0
        self.bytes_buffered = 0
        self.stream: MuxStream | None = None
        self.watch_id = 0
        # Its `created` came on its current stream: the stream's progress covers it.
        self.acknowledged = False
        self.paused = False  # overflowed, waiting for its user to catch up
        self.overflows = 0
        self.reconnects = 0  # created again on a new stream after a failure
        self.error: errors.TandemKVError | None = None  # raised after the buffered items
        self.finished = False  # closed (by its user or the client): nothing more
        self.handle: Any = None  # the driver's wake-up object

    def request(self) -> watch_pb2.WatchRequest:
        return watch_pb2.WatchRequest(
            range=kv_pb2.KeyRange(key=self.key, prefix=self.prefix), start_revision=self.buffered_next,
            prev_kv=self.prev_kv)  # no progress of its own: the stream's covers it

    def start_at(self, revision: int) -> None:
        """Fixes where a watch "from now" begins (before it is added)."""
        self.next_revision = self.buffered_next = revision

    def _fits(self, events: int, size: int) -> bool:
        if not self.items:
            return True  # one response alone always fits, or nothing would move
        return (self.events_buffered + events <= limits.WATCH_CLIENT_BUFFER_EVENTS_MAX
                and self.bytes_buffered + size <= limits.WATCH_CLIENT_BUFFER_BYTES_MAX)

    def _caught_up(self) -> bool:
        return (self.events_buffered <= limits.WATCH_CLIENT_BUFFER_EVENTS_MAX // 2
                and self.bytes_buffered <= limits.WATCH_CLIENT_BUFFER_BYTES_MAX // 2)
