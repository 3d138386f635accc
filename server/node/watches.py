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
"""

from __future__ import annotations

import threading
import time
from typing import Iterator

from tandemkv import limits
from tandemkv.server.node.watch_hub import HubEvent, Overflowed, WatchHub
from tandemkv.server.strong import coordination, reads, validation
from tandemkv.v1 import watch_pb2

# Longest one wait of a watch or of the hub thread before it checks the
# stop flags again.
WATCH_WAIT_SLICE_S = 0.5


class NodeWatches:
    """Mixin of `Node`: `watch`, and the hub behind it (started with the
    first watch, stopped with the node)."""

    _watch_hub_lock = threading.Lock()

    def watch(self, request: watch_pb2.WatchRequest,
              stop: threading.Event | None = None) -> Iterator[watch_pb2.WatchResponse]:
        """Events for the request's keys from its start revision on, in
        revision order, without gaps or duplicates, until `stop` is set or
        the node stops. A start revision older than the retained history
        yields one `compacted` response and ends."""
        validation.check_request(request)
        start, end = reads.key_bounds(request.range)
        hub = self._watch_hub()
        woken = threading.Event()
        subscription = hub.subscribe(start, end, request.start_revision, woken.set)
        next_revision = request.start_revision or subscription.caught_up_through + 1
        progress_s = request.progress_interval_ms / 1000 if request.progress_interval_ms else None
        # Progress is due `progress_s` after the last response, whatever is
        # applied meanwhile: an apply wakes the wait but does not push the
        # due time back.
        progress_due = time.monotonic() + progress_s if progress_s else None
        try:
            while not self._stopped(stop):
                if next_revision <= subscription.caught_up_through:
                    response = self._history_events(request, start, end, next_revision,
                                                    subscription.caught_up_through)
                    if response.compacted:
                        yield response
                        return
                    next_revision = response.header.revision + 1
                    if response.events:
                        yield response
                        progress_due = time.monotonic() + progress_s if progress_s else None
                    continue
                taken, head = subscription.take()
                if isinstance(taken, Overflowed):
                    subscription.cancel()
                    subscription = hub.subscribe(start, end, taken.revision, woken.set)
                    next_revision = taken.revision
                    continue
                if taken:
                    for response in _responses(taken, request.prev_kv, head, self.config.name):
                        yield response
                    next_revision = head + 1
                    progress_due = time.monotonic() + progress_s if progress_s else None
                    continue
                if progress_due is not None and time.monotonic() >= progress_due:
                    yield watch_pb2.WatchResponse(header=self._header(head), progress=True)
                    progress_due = time.monotonic() + progress_s
                    continue
                wait_s = WATCH_WAIT_SLICE_S if progress_due is None else progress_due - time.monotonic()
                woken.wait(max(0.0, min(wait_s, WATCH_WAIT_SLICE_S)))
                woken.clear()
        finally:
            subscription.cancel()

    def _history_events(self, request, start: bytes, end: bytes | None, next_revision: int,
                        through: int) -> watch_pb2.WatchResponse:
        """The watch's events in next_revision..through from the history,
        whole revisions, about WATCH_RESPONSE_EVENTS_MAX at most; the
        header's revision is how far this read got."""
        response = watch_pb2.WatchResponse()
        reached, last_added = through, 0
        with self._state.read_view() as view:
            raw = view.meta_get(coordination.COMPACTED_THROUGH_KEY)
            compacted_through = 0 if raw is None else int.from_bytes(raw, "big")
            if next_revision <= compacted_through:
                response.compacted = True
                response.compact_revision = compacted_through
                response.header.CopyFrom(self._header(view.last_applied()))
                return response
            for revision, event_bytes in view.events_scan(next_revision):
                if revision > through:
                    break
                if len(response.events) >= limits.WATCH_RESPONSE_EVENTS_MAX and revision != last_added:
                    reached = revision - 1
                    break
                event = watch_pb2.Event.FromString(event_bytes)
                if event.kv.key < start or (end is not None and event.kv.key >= end):
                    continue
                _add_event(response, event, revision, request.prev_kv)
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


def _responses(taken: list[HubEvent], prev_kv: bool, head: int, node: str) -> Iterator[watch_pb2.WatchResponse]:
    """The hub's events as responses of about WATCH_RESPONSE_EVENTS_MAX
    events, whole revisions each; the last one's header is `head`."""
    response = watch_pb2.WatchResponse()
    last_revision = 0
    for revision, _, event_bytes in taken:
        if len(response.events) >= limits.WATCH_RESPONSE_EVENTS_MAX and revision != last_revision:
            response.header.revision, response.header.node = last_revision, node
            yield response
            response = watch_pb2.WatchResponse()
        _add_event(response, watch_pb2.Event.FromString(event_bytes), revision, prev_kv)
        last_revision = revision
    response.header.revision, response.header.node = head, node
    yield response
