"""The watch multiplexer's core: every watch of one client on a few
Watch.Watches streams (one per node while it holds fewer than
WATCHES_PER_STREAM_MAX), and no I/O.

A `Feed` (`_watch_feed.py`) is one user watch as the multiplexer sees it:
its range, the revision it resumes from, and a bounded buffer of the
responses its user has not read. A `MuxStream` is one Watches stream:
its endpoint and the feeds open on it by watch id. `WatchMux` decides
everything: which stream a new watch joins, the ids, where each response
goes, what an overflow does, when a broken stream is opened again and
where, and which watches it re-creates there (each from the first revision
it has not buffered, so no event is lost or repeated).

Progress is per stream: each call opens with a progress request (one
stream progress every WATCH_PROGRESS_INTERVAL_MS, as etcd's
WatchProgressRequest), so idle watches cost one response per stream per
interval, not one each. A stream progress moves every watch it covers
(created on the stream before it, and not named excluded) to the revision
it carries: where the watch resumes after a failure or an overflow.

The reader of a stream never waits for a watch's user: a response that
does not fit its watch's buffer is an overflow. The watch is cancelled on
the stream, and then either (`resync=True`, the default) created again
from the first revision it did not buffer once its user has read half of
the buffer (the node reads the missed revisions from its history), or
(`resync=False`) its user gets `WatchOverflow(revision)` after the
buffered events. Either way no event is skipped silently.

Every method returns the actions its driver must do, in order (as
etcd-io/raft's `Ready`): `Open(stream)` starts the stream's reader on
`stream.endpoint`; `Send(stream, request)` queues a create or a cancel on
its current call; `Close(stream)` ends its call; `Wake(feed)` tells the
feed's reader there is something to take. Drivers: `_watch_mux.py` (a
reader thread per stream, one lock around the core) and
`_watch_mux_async.py` (a reader task per stream).

Rules of this module: no thread, asyncio, channel or socket
(`grpc.RpcError` is only read); every buffer has a named limit.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Union

import grpc

from tandemkv import errors, limits
from tandemkv.client._core import Reconnects
from tandemkv.client._retry import ERROR_BY_STATUS_CODE, Retry
from tandemkv.client._routing import Router
from tandemkv.client._watch_feed import Feed, WatchOverflow  # noqa: F401 (re-exported)
from tandemkv.v1 import watch_pb2

# Each stream asks the node for its progress this often, so a resumed watch
# need not re-scan what it has already seen.
WATCH_PROGRESS_INTERVAL_MS = 5_000
# The watch id of a stream's own progress responses.
STREAM_PROGRESS_WATCH_ID = -1


@dataclasses.dataclass(eq=False)
class MuxStream:
    """One Watch.Watches stream and the feeds open on it by watch id."""

    reconnects: Reconnects
    endpoint: str
    feeds: dict[int, Feed] = dataclasses.field(default_factory=dict)
    next_watch_id: int = 1
    up: bool = True  # False between a failure and its reopening
    closed: bool = False
    handle: Any = None  # the driver's call, request queue and reader


@dataclasses.dataclass(frozen=True)
class Open:
    stream: MuxStream


@dataclasses.dataclass(frozen=True)
class Send:
    stream: MuxStream
    request: watch_pb2.WatchStreamRequest


@dataclasses.dataclass(frozen=True)
class Close:
    stream: MuxStream


@dataclasses.dataclass(frozen=True)
class Wake:
    feed: Feed


Action = Union[Open, Send, Close, Wake]


def _progress_request() -> watch_pb2.WatchStreamRequest:
    """One stream progress now, then one every WATCH_PROGRESS_INTERVAL_MS."""
    progress = watch_pb2.WatchProgressRequest(interval_ms=WATCH_PROGRESS_INTERVAL_MS)
    return watch_pb2.WatchStreamRequest(progress=progress)


class WatchMux:
    """The decisions of one client's watch streams; see the module docstring."""

    def __init__(self, router: Router, retry: Retry,
                 watches_per_stream_max: int = limits.WATCHES_PER_STREAM_MAX):
        self.router = router
        self.retry = retry
        self.watches_per_stream_max = watches_per_stream_max
        self.streams: list[MuxStream] = []
        self.closed = False

    # -- the user's side --
    def add(self, feed: Feed) -> list[Action]:
        """Creates `feed`'s watch on a stream with room (the one to the
        node the router picks first), opening a stream if none has room."""
        if self.closed:
            feed.finished = True
            return [Wake(feed)]
        actions: list[Action] = []
        endpoint = self.router.pick()
        roomy = [s for s in self.streams if len(s.feeds) < self.watches_per_stream_max]
        stream = next((s for s in roomy if s.endpoint == endpoint), roomy[0] if roomy else None)
        if stream is None:
            stream = MuxStream(Reconnects(self.router, self.retry), endpoint)
            self.streams.append(stream)
            actions.extend([Open(stream), Send(stream, _progress_request())])
        actions.extend(self._attach(stream, feed))
        return actions

    def remove(self, feed: Feed) -> list[Action]:
        """The user closed `feed`: its watch is cancelled, its buffer dropped."""
        feed.finished = True
        feed.items.clear()
        feed.events_buffered = feed.bytes_buffered = 0
        return [*self._detach(feed, cancel=True), Wake(feed)]

    def request_progress(self, feed: Feed) -> list[Action]:
        """Asks `feed`'s stream for its progress now (etcd's
        RequestProgress): it moves `feed` and every caught-up watch on that
        stream. Nothing to do for a feed that is not on an open stream."""
        stream = feed.stream
        if stream is None or not stream.up or stream.closed:
            return []
        return [Send(stream, _progress_request())]

    def take(self, feed: Feed) -> tuple[watch_pb2.WatchResponse | None, list[Action]]:
        """The oldest buffered response of `feed` (None: nothing now), and
        the actions it calls for (a paused watch that caught up is created
        again). Raises the feed's error once its buffer is read."""
        if not feed.items:
            if feed.error is not None and not feed.finished:
                feed.finished = True
                raise feed.error
            return None, []
        response = feed.items.popleft()
        feed.events_buffered -= len(response.events)
        feed.bytes_buffered -= response.ByteSize()
        if response.events:
            feed.next_revision = response.events[-1].kv.mod_revision + 1
        else:
            feed.next_revision = max(feed.next_revision, response.header.revision + 1)
        actions: list[Action] = []
        if feed.paused and feed._caught_up() and not feed.finished:
            feed.paused = False
            actions = self.add(feed)
        return response, actions

    def close(self) -> list[Action]:
        """The client closes: every stream ends, every watch finishes."""
        self.closed = True
        actions: list[Action] = []
        for stream in self.streams:
            stream.closed = True
            actions.append(Close(stream))
            for feed in stream.feeds.values():
                feed.finished, feed.stream = True, None
                actions.append(Wake(feed))
        self.streams = []
        return actions

    # -- the stream's side --
    def received(self, stream: MuxStream, response: watch_pb2.WatchStreamResponse) -> list[Action]:
        """Routes one response of `stream` to its watch; never waits."""
        stream.reconnects.received()
        if response.watch_id == STREAM_PROGRESS_WATCH_ID:
            self._stream_progress(stream, response)
            return []
        feed = stream.feeds.get(response.watch_id)
        if feed is None:
            return []  # a watch already cancelled here
        if response.created:
            feed.acknowledged = True
            return []
        if response.canceled:  # a create the node refused (our cancels are forgotten at once)
            code = _status_code(response.cancel_code)
            feed.error = ERROR_BY_STATUS_CODE.get(code, errors.TandemKVError)(
                f"the node refused the watch of {feed.key!r}: {response.cancel_reason}")
            return [*self._detach(feed, cancel=False), Wake(feed)]
        answer = response.response
        if answer.compacted:  # the node ended this watch
            feed.error = errors.Compacted(
                f"revision {feed.buffered_next} is no longer in the history (compacted through "
                f"{answer.compact_revision}); re-read and watch from {answer.compact_revision + 1}",
                compact_revision=answer.compact_revision)
            return [*self._detach(feed, cancel=False), Wake(feed)]
        if not answer.events:
            self._progress(feed, answer)
            return []
        size = answer.ByteSize()
        if not feed._fits(len(answer.events), size):
            return self._overflow(feed)
        feed.items.append(answer)
        feed.events_buffered += len(answer.events)
        feed.bytes_buffered += size
        feed.buffered_next = answer.events[-1].kv.mod_revision + 1
        return [Wake(feed)]

    def broke(self, stream: MuxStream, rpc_error: grpc.RpcError | None) -> tuple[float | None, list[Action]]:
        """`stream` failed (`rpc_error`) or the node ended it (None). Returns
        the wait before it is opened again (None: it is over, and so are its
        watches if it failed for good)."""
        if stream.closed:
            return None, []
        stream.up = False
        endpoint = stream.endpoint
        error = Reconnects.ended(endpoint) if rpc_error is None else Reconnects.broke(endpoint, rpc_error)
        try:
            return stream.reconnects.failed(endpoint, error), []
        except errors.TandemKVError as final:
            stream.closed = True
            self.streams.remove(stream)
            actions: list[Action] = []
            for feed in stream.feeds.values():
                feed.error, feed.stream = final, None
                actions.append(Wake(feed))
            stream.feeds = {}
            return None, actions

    def reopen(self, stream: MuxStream) -> list[Action]:
        """After the wait: `stream` goes to the endpoint now picked, and
        each of its watches is created there from its first unbuffered
        revision. Returns [] if the stream was closed meanwhile."""
        if stream.closed:
            return []
        stream.endpoint, stream.up = stream.reconnects.endpoint(), True
        feeds, stream.feeds = list(stream.feeds.values()), {}
        actions: list[Action] = [Send(stream, _progress_request())]
        for feed in feeds:
            feed.reconnects += 1
            actions.extend(self._attach(stream, feed))
        return actions

    # -- bookkeeping --
    def _attach(self, stream: MuxStream, feed: Feed) -> list[Action]:
        watch_id, stream.next_watch_id = stream.next_watch_id, stream.next_watch_id + 1
        stream.feeds[watch_id] = feed
        feed.stream, feed.watch_id, feed.acknowledged = stream, watch_id, False
        if not stream.up:
            return []  # created when the stream is opened again
        create = watch_pb2.WatchCreate(watch_id=watch_id, request=feed.request())
        return [Send(stream, watch_pb2.WatchStreamRequest(create=create))]

    def _detach(self, feed: Feed, cancel: bool) -> list[Action]:
        stream, feed.stream = feed.stream, None
        if stream is None or stream.feeds.get(feed.watch_id) is not feed:
            return []
        del stream.feeds[feed.watch_id]
        actions: list[Action] = []
        if stream.feeds:
            if cancel and stream.up:
                cancel_request = watch_pb2.WatchCancel(watch_id=feed.watch_id)
                actions.append(Send(stream, watch_pb2.WatchStreamRequest(cancel=cancel_request)))
        else:  # its last watch: the stream goes
            stream.closed = True
            self.streams.remove(stream)
            actions.append(Close(stream))
        return actions

    def _stream_progress(self, stream: MuxStream, response: watch_pb2.WatchStreamResponse) -> None:
        """Applies a stream progress to every watch it covers: those whose
        `created` came before it, except the ones the node named excluded."""
        excluded = set(response.progress_excluded)
        for watch_id, feed in stream.feeds.items():
            if feed.acknowledged and watch_id not in excluded:
                self._progress(feed, response.response)

    @staticmethod
    def _progress(feed: Feed, answer: watch_pb2.WatchResponse) -> None:
        """`feed` has been given everything through the answer's revision.
        Its user need not be woken: a progress has nothing to read."""
        feed.buffered_next = max(feed.buffered_next, answer.header.revision + 1)
        if not feed.items:  # nothing unread before it: the user is there already
            feed.next_revision = max(feed.next_revision, answer.header.revision + 1)
        elif not feed.items[-1].events:
            feed.items[-1] = answer  # progress after progress: the later one says it all
        else:
            feed.items.append(answer)

    def _overflow(self, feed: Feed) -> list[Action]:
        feed.overflows += 1
        actions = self._detach(feed, cancel=True)
        if feed.resync:
            feed.paused = True
            return actions
        feed.error = WatchOverflow(
            f"the watch of {feed.key!r} fell WATCH_CLIENT_BUFFER_EVENTS_MAX="
            f"{limits.WATCH_CLIENT_BUFFER_EVENTS_MAX} events (or WATCH_CLIENT_BUFFER_BYTES_MAX="
            f"{limits.WATCH_CLIENT_BUFFER_BYTES_MAX} bytes) behind; every event before revision "
            f"{feed.buffered_next} was delivered: re-read, or watch again from {feed.buffered_next}",
            revision=feed.buffered_next)
        return [*actions, Wake(feed)]


def _status_code(number: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN
