"""Watches of one node, served from its watch hub (watch_hub.py).

A hub thread reads each newly applied revision's events from the history
once and publishes them; every watch takes what matched it from its own
buffer. A watch that starts in the past reads the history itself up to the
revision the hub had reached when it subscribed, then continues from its
buffer. A watch whose buffer overflowed (its reader fell too far behind)
goes back to the history from the first revision it missed and subscribes
again; if the history no longer holds that revision the reader gets the
`compacted` response, as any watch from a compacted revision does. So a
watch never skips an event silently, and the cost of a write no longer
grows with the number of watches.

A `WatchSession` holds many watches of one reader (one gRPC stream) behind
one wake-up callback, and never blocks: the reader polls it when woken or
when a progress response falls due. `Node.watch` is a session of one watch
with a thread waiting on it.

Progress comes per watch (a watch's `progress_interval_ms`: one response
per idle watch per interval, as Watch.Watch always had) or per session
(`request_progress`: one `StreamProgress` per interval for all of them, so
10,000 idle watches on a stream cost one response, not 10,000). A stream
progress covers every watch that has been given everything through the
hub's head; the others (reading the history, or with events still
buffered, or overflowed) are named as excluded.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import threading
import time
from typing import Callable, Iterator

from tandemkv import limits
from tandemkv.errors import InvalidArgument, ResourceExhausted
from tandemkv.server.node.watch_hub import HubEvent, Overflowed, Subscription, WatchHub
from tandemkv.server.strong import coordination, reads, validation
from tandemkv.v1 import watch_pb2

# Longest one wait of a watch reader or of the hub thread before it checks
# the stop flags again.
WATCH_WAIT_SLICE_S = 0.5
# The watch id of a session's own responses (its stream progress), as
# etcd's -1; no watch may take it.
STREAM_PROGRESS_WATCH_ID = -1


@dataclasses.dataclass(frozen=True)
class StreamProgress:
    """Every watch of the session, except `excluded`, has been given every
    event through `response.header.revision`."""

    response: watch_pb2.WatchResponse
    excluded: list[int]


@dataclasses.dataclass
class _Watch:
    request: watch_pb2.WatchRequest
    start: bytes
    end: bytes | None
    subscription: Subscription
    next_revision: int
    progress_s: float | None
    # Progress is due `progress_s` after the last response, whatever is
    # applied meanwhile: an apply wakes the reader but does not push the
    # due time back.
    progress_due: float | None
    # Wakes the session's reader with this watch marked ready.
    wake: Callable[[], None]

    def answered(self, now: float) -> None:
        if self.progress_s is not None:
            self.progress_due = now + self.progress_s


class WatchSession:
    """The watches of one reader, woken together by `wake`."""

    def __init__(self, node: "NodeWatches", wake: Callable[[], None]):
        self._node = node
        self._hub = node._watch_hub()
        self._wake = wake
        self._lock = threading.Lock()
        self._watches: dict[int, _Watch] = {}
        # The watches a poll looks at: those woken since the last poll (an
        # event, a new watch, a response that may have more behind it), and
        # those whose progress falls due (a heap of (due, watch id); an entry
        # whose due time has since moved is skipped). So a poll costs what is
        # ready, not the number of watches.
        self._ready: set[int] = set()
        self._dues: list[tuple[float, int]] = []
        # The session's own progress: asked for once (`_progress_asked`)
        # and/or every `_progress_s`, next at `_progress_due`.
        self._progress_asked = False
        self._progress_s: float | None = None
        self._progress_due: float | None = None

    def create(self, watch_id: int, request: watch_pb2.WatchRequest) -> None:
        """Starts watch `watch_id` (unique among this session's open
        watches); raises InvalidArgument or ResourceExhausted."""
        validation.check_request(request)
        if watch_id == STREAM_PROGRESS_WATCH_ID:
            raise InvalidArgument(f"watch id {watch_id} is the stream's own (its progress); pick another")
        with self._lock:
            if watch_id in self._watches:
                raise InvalidArgument(f"watch id {watch_id} is already open on this stream; pick another")
            if len(self._watches) >= limits.WATCHES_PER_STREAM_MAX:
                raise ResourceExhausted(
                    f"this stream already holds WATCHES_PER_STREAM_MAX={limits.WATCHES_PER_STREAM_MAX} "
                    "watches; cancel some or open another stream")
            start, end = reads.key_bounds(request.range)
            wake = functools.partial(self._mark_ready, watch_id)
            subscription = self._hub.subscribe(start, end, request.start_revision, wake)
            progress_s = request.progress_interval_ms / 1000 if request.progress_interval_ms else None
            watch = self._watches[watch_id] = _Watch(
                request, start, end, subscription,
                next_revision=request.start_revision or subscription.caught_up_through + 1,
                progress_s=progress_s,
                progress_due=time.monotonic() + progress_s if progress_s else None, wake=wake)
            if watch.progress_due is not None:
                heapq.heappush(self._dues, (watch.progress_due, watch_id))
        wake()  # a watch from the past has history to read at once

    def request_progress(self, interval_ms: int = 0) -> None:
        """Asks for one `stream_progress` now and, if `interval_ms` > 0, one
        every `interval_ms` after it (0 stops them); raises InvalidArgument
        for an interval below WATCH_STREAM_PROGRESS_INTERVAL_MS_MIN."""
        if interval_ms < 0 or 0 < interval_ms < limits.WATCH_STREAM_PROGRESS_INTERVAL_MS_MIN:
            raise InvalidArgument(
                f"a progress interval_ms of {interval_ms} is out of range; use 0 (once) or at least "
                f"WATCH_STREAM_PROGRESS_INTERVAL_MS_MIN={limits.WATCH_STREAM_PROGRESS_INTERVAL_MS_MIN}")
        with self._lock:
            self._progress_asked = True
            self._progress_s = interval_ms / 1000 if interval_ms else None
            self._progress_due = None
        self._wake()

    def stream_progress(self) -> StreamProgress | None:
        """The session's progress if it was asked for or falls due (None
        otherwise). Call it right after `poll`, and send it after that
        poll's responses: a watch is covered only if the hub gave it every
        event through the head and nothing of it is left buffered, so all
        it was given is in those responses or earlier ones."""
        now = time.monotonic()
        with self._lock:
            due = self._progress_due is not None and now >= self._progress_due
            if not (self._progress_asked or due):
                return None
            self._progress_asked = False
            self._progress_due = now + self._progress_s if self._progress_s else None
            watches = list(self._watches.items())
        # The head first, then each buffer: what the hub published through
        # the head was offered before the head was set, so an empty buffer
        # seen after it means all of that was taken. Read without the hub's
        # lock so a stream of 10,000 watches never holds up its publishing.
        head = self._hub.head
        excluded = [watch_id for watch_id, watch in watches
                    if watch.next_revision <= watch.subscription.caught_up_through
                    or not watch.subscription.idle()]
        response = watch_pb2.WatchResponse(header=self._node._header(head), progress=True)
        return StreamProgress(response, excluded)

    def _mark_ready(self, watch_id: int) -> None:
        with self._lock:
            self._ready.add(watch_id)
        self._wake()

    def cancel(self, watch_id: int) -> bool:
        with self._lock:
            watch = self._watches.pop(watch_id, None)
        if watch is not None:
            watch.subscription.cancel()
        return watch is not None

    def close(self) -> None:
        with self._lock:
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.subscription.cancel()

    @property
    def open_count(self) -> int:
        return len(self._watches)

    def poll(self) -> tuple[list[tuple[int, watch_pb2.WatchResponse]], float | None]:
        """What is ready now: at most one response per watch (so a busy
        watch cannot starve the others; poll again while it returns
        something), and the monotonic time the next progress response falls
        due (None: none). A `compacted` response ends its watch."""
        ready: list[tuple[int, watch_pb2.WatchResponse]] = []
        now = time.monotonic()
        with self._lock:
            candidates, self._ready = self._ready, set()
            while self._dues and self._dues[0][0] <= now:
                _, watch_id = heapq.heappop(self._dues)
                candidates.add(watch_id)
            watches = [(i, self._watches[i]) for i in sorted(candidates) if i in self._watches]
        for watch_id, watch in watches:
            due_before = watch.progress_due
            response = self._next_response(watch, now)
            if response is None:
                continue
            ready.append((watch_id, response))
            if response.compacted:
                self.cancel(watch_id)
                continue
            with self._lock:
                self._ready.add(watch_id)  # more may be buffered behind this response
                if watch.progress_due is not None and watch.progress_due != due_before:
                    heapq.heappush(self._dues, (watch.progress_due, watch_id))
        with self._lock:
            dues = [due for due in (self._dues[0][0] if self._dues else None, self._progress_due)
                    if due is not None]
        return ready, min(dues, default=None)

    def _next_response(self, watch: _Watch, now: float) -> watch_pb2.WatchResponse | None:
        node = self._node
        for _ in range(2):  # an overflow re-subscribes, then reads the history once
            if watch.next_revision <= watch.subscription.caught_up_through:
                response = node._history_events(watch, watch.subscription.caught_up_through)
                if not response.compacted:
                    watch.next_revision = response.header.revision + 1
                    if not response.events:
                        continue
                watch.answered(now)
                return response
            taken, head = watch.subscription.take(limits.WATCH_RESPONSE_EVENTS_MAX)
            if isinstance(taken, Overflowed):
                watch.subscription.cancel()
                watch.subscription = self._hub.subscribe(watch.start, watch.end, taken.revision, watch.wake)
                watch.next_revision = taken.revision
                continue
            if taken:
                watch.next_revision = taken[-1][0] + 1
                watch.answered(now)
                return _response(taken, watch.request.prev_kv, head, node.config.name)
            if watch.progress_due is not None and now >= watch.progress_due:
                watch.answered(now)
                return watch_pb2.WatchResponse(header=node._header(head), progress=True)
            return None
        return None


class NodeWatches:
    """Mixin of `Node`: `watch`, `watch_session`, and the hub behind them
    (started with the first watch, stopped with the node)."""

    _watch_hub_lock = threading.Lock()

    def watch_session(self, wake: Callable[[], None]) -> WatchSession:
        return WatchSession(self, wake)

    def watch(self, request: watch_pb2.WatchRequest,
              stop: threading.Event | None = None) -> Iterator[watch_pb2.WatchResponse]:
        """Events for the request's keys from its start revision on, in
        revision order, without gaps or duplicates, until `stop` is set or
        the node stops. A start revision older than the retained history
        yields one `compacted` response and ends."""
        woken = threading.Event()
        session = self.watch_session(woken.set)
        session.create(0, request)
        try:
            while not self._stopped(stop) and session.open_count:
                woken.clear()
                ready, due = session.poll()
                for _, response in ready:
                    yield response
                if not ready:
                    wait_s = WATCH_WAIT_SLICE_S if due is None else due - time.monotonic()
                    woken.wait(max(0.0, min(wait_s, WATCH_WAIT_SLICE_S)))
        finally:
            session.close()

    def _history_events(self, watch: _Watch, through: int) -> watch_pb2.WatchResponse:
        """The watch's events from its next revision to `through`, from the
        history: whole revisions, about WATCH_RESPONSE_EVENTS_MAX at most;
        the header's revision is how far this read got."""
        response = watch_pb2.WatchResponse()
        reached, last_added = through, 0
        with self._state.read_view() as view:
            raw = view.meta_get(coordination.COMPACTED_THROUGH_KEY)
            compacted_through = 0 if raw is None else int.from_bytes(raw, "big")
            if watch.next_revision <= compacted_through:
                response.compacted = True
                response.compact_revision = compacted_through
                response.header.CopyFrom(self._header(view.last_applied()))
                return response
            for revision, event_bytes in view.events_scan(watch.next_revision):
                if revision > through:
                    break
                if len(response.events) >= limits.WATCH_RESPONSE_EVENTS_MAX and revision != last_added:
                    reached = revision - 1
                    break
                event = watch_pb2.Event.FromString(event_bytes)
                if event.kv.key < watch.start or (watch.end is not None and event.kv.key >= watch.end):
                    continue
                _add_event(response, event, revision, watch.request.prev_kv)
                last_added = revision
        response.header.CopyFrom(self._header(reached))
        return response

    def _watch_hub(self) -> WatchHub:
        with self._watch_hub_lock:
            hub = getattr(self, "_hub", None)
            if hub is None:
                hub = self._hub = WatchHub(head=self._applied_index())
                threading.Thread(target=self._run_watch_hub, args=(hub,), name="watch-hub",
                                 daemon=True).start()
            return hub

    def _run_watch_hub(self, hub: WatchHub) -> None:
        """Publishes every applied revision's events to the hub, once."""
        while not self._stopping.is_set():
            self._wait_applied_after(hub.head, WATCH_WAIT_SLICE_S)
            events: list[HubEvent] = []
            with self._state.read_view() as view:
                head = view.last_applied()
                if head <= hub.head:
                    continue
                if hub.count:
                    raw = view.meta_get(coordination.COMPACTED_THROUGH_KEY)
                    if raw is not None and int.from_bytes(raw, "big") > hub.head:
                        # Trimmed before the hub read it: the watches must
                        # look at the history themselves.
                        hub.overflow_all(hub.head + 1)
                    for revision, event_bytes in view.events_scan(hub.head + 1):
                        if revision > head:
                            break
                        events.append((revision, watch_pb2.Event.FromString(event_bytes).kv.key, event_bytes))
            hub.publish(head, events)


def _add_event(response: watch_pb2.WatchResponse, event: watch_pb2.Event, revision: int,
               prev_kv: bool) -> None:
    event.kv.mod_revision = revision
    if not prev_kv:
        event.ClearField("prev_kv")
    response.events.append(event)


def _response(taken: list[HubEvent], prev_kv: bool, head: int, node: str) -> watch_pb2.WatchResponse:
    """The hub's events as one response; its header's revision is how far
    the watch has been given everything."""
    response = watch_pb2.WatchResponse()
    for revision, _, event_bytes in taken:
        _add_event(response, watch_pb2.Event.FromString(event_bytes), revision, prev_kv)
    response.header.revision, response.header.node = head, node
    return response
