"""The watch hub: each newly applied revision's events are read once and
handed to the watches they match, however many watches a node carries.

Without it every watch read the history itself after every apply, so the
work per write grew with the number of watches. With it:
- one `publish(head, events)` per apply batch (the node's hub thread reads
  the new events from the history once and calls it);
- matching through indexes: exact keys in a dict, prefixes by the lengths
  in use, other ranges in a list;
- each watch holds a bounded buffer (WATCH_BUFFER_EVENTS_MAX events,
  WATCH_BUFFER_BYTES_MAX bytes; all together at most
  WATCH_HUB_BUFFERED_BYTES_MAX). A watch whose reader falls that far
  behind is not allowed to hold up the others or grow without bound: its
  buffer is dropped and the reader gets an explicit `Overflowed(revision)`,
  the first revision it has not been given, from which it can watch again
  (the history still has it, unless compacted). Never a silent gap.
- waking readers costs the hub one call per waiting reader: a thread's
  event, or for asyncio readers one `call_soon_threadsafe` per loop and
  publish (`LoopWaker`), not one per watch.

A watch that starts in the past first reads the history up to the hub's
head at the moment it subscribed (the caller does that, with
`Subscription.caught_up_through`), then takes what the hub buffered for it
since; the two never overlap and leave no gap.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import threading
from typing import Callable, Iterable

from tandemkv import limits
from tandemkv.errors import ResourceExhausted
from tandemkv.server.strong.reads import prefix_end

# An event as the hub sees it: its revision, its key, and its encoded
# watch_pb2.Event (decoded only by readers that need it).
HubEvent = tuple[int, bytes, bytes]


@dataclasses.dataclass(frozen=True)
class Overflowed:
    """The watch fell behind by more than its buffer: nothing at or after
    `revision` was given to it; watch again from `revision`."""

    revision: int


class Subscription:
    """One watch's place in the hub: its key range, its buffer and how to
    wake its reader. Readers call `take()` after a wake-up."""

    def __init__(self, hub: "WatchHub", start: bytes, end: bytes | None, next_revision: int,
                 wake: Callable[[], None]):
        self.start = start
        self.end = end  # None: no end (reads.key_bounds' convention)
        self._hub = hub
        self._wake = wake
        self._buffer: collections.deque[HubEvent] = collections.deque()
        self._buffered_bytes = 0
        self._overflowed_at: int | None = None
        # Events at or below this revision are the reader's to read from the
        # history; the hub buffers only what comes after.
        self.caught_up_through = next_revision - 1

    def matches(self, key: bytes) -> bool:
        return key >= self.start and (self.end is None or key < self.end)

    def take(self, events_max: int | None = None) -> tuple[list[HubEvent] | Overflowed, int]:
        """What is buffered, oldest first: everything, or whole revisions up
        to about `events_max` events; and the revision through which this
        watch has now been given every event (the hub's head when the
        buffer was emptied). Once the buffer overflowed: `Overflowed`, and
        the watch is over."""
        with self._hub.lock:
            if self._overflowed_at is not None:
                return Overflowed(self._overflowed_at), self._hub.head
            if events_max is None or len(self._buffer) <= events_max:
                events = list(self._buffer)
                self._drop_buffer()
                return events, self._hub.head
            events = []
            while self._buffer and (len(events) < events_max or self._buffer[0][0] == events[-1][0]):
                event = self._buffer.popleft()
                self._buffered_bytes -= len(event[2])
                self._hub.buffered_bytes -= len(event[2])
                events.append(event)
            return events, events[-1][0] if not self._buffer else self._buffer[0][0] - 1

    def idle(self) -> bool:
        """Nothing buffered and no overflow: the reader has taken all the hub
        offered it. Reads without the hub's lock (see
        `WatchSession.stream_progress` for why that is enough)."""
        return not self._buffer and self._overflowed_at is None

    def cancel(self) -> None:
        self._hub.unsubscribe(self)

    # -- called by the hub, under its lock --
    def _offer(self, event: HubEvent) -> bool:
        """Buffers `event`; True if the reader should be woken."""
        if self._overflowed_at is not None or event[0] <= self.caught_up_through:
            return False
        size = len(event[2])
        if (len(self._buffer) >= limits.WATCH_BUFFER_EVENTS_MAX
                or self._buffered_bytes + size > limits.WATCH_BUFFER_BYTES_MAX
                or self._hub.buffered_bytes + size > limits.WATCH_HUB_BUFFERED_BYTES_MAX):
            self._overflow(event[0])
            return True
        self._buffer.append(event)
        self._buffered_bytes += size
        self._hub.buffered_bytes += size
        return True

    def _overflow(self, revision: int) -> None:
        self._overflowed_at = self._buffer[0][0] if self._buffer else revision
        self._drop_buffer()

    def _drop_buffer(self) -> None:
        self._buffer.clear()
        self._hub.buffered_bytes -= self._buffered_bytes
        self._buffered_bytes = 0


class WatchHub:
    """Every watch of one node, indexed by what it watches."""

    def __init__(self, head: int = 0):
        self.lock = threading.Lock()
        self.head = head  # the last revision published
        self._by_key: dict[bytes, set[Subscription]] = collections.defaultdict(set)
        self._by_prefix: dict[bytes, set[Subscription]] = collections.defaultdict(set)
        self._prefix_lengths: collections.Counter[int] = collections.Counter()
        self._ranges: set[Subscription] = set()
        self.count = 0
        # Bytes buffered for every watch together (WATCH_HUB_BUFFERED_BYTES_MAX).
        self.buffered_bytes = 0

    def subscribe(self, start: bytes, end: bytes | None, from_revision: int,
                  wake: Callable[[], None]) -> Subscription:
        """Watches the keys in [start, end) (end None: no end; the bounds of
        `reads.key_bounds`); `from_revision` 0 means after the current head.
        The caller reads the history itself for from_revision ..
        caught_up_through."""
        with self.lock:
            if self.count >= limits.WATCHES_OPEN_MAX:
                raise ResourceExhausted(
                    f"this node already serves WATCHES_OPEN_MAX={limits.WATCHES_OPEN_MAX} watches; "
                    "cancel watches you no longer need or watch through another node")
            subscription = Subscription(self, start, end, self.head + 1, wake)
            if from_revision > self.head + 1:  # a revision still to come: skip what precedes it
                subscription.caught_up_through = from_revision - 1
            shape = _shape(start, end)
            if shape is _KEY:
                self._by_key[start].add(subscription)
            elif shape is _PREFIX:
                self._by_prefix[start].add(subscription)
                self._prefix_lengths[len(start)] += 1
            else:
                self._ranges.add(subscription)
            self.count += 1
            return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self.lock:
            subscription._drop_buffer()
            start = subscription.start
            shape = _shape(start, subscription.end)
            if shape is _KEY:
                removed = _discard(self._by_key, start, subscription)
            elif shape is _PREFIX:
                removed = _discard(self._by_prefix, start, subscription)
                if removed:
                    self._prefix_lengths[len(start)] -= 1
                    if not self._prefix_lengths[len(start)]:
                        del self._prefix_lengths[len(start)]
            else:
                removed = subscription in self._ranges
                self._ranges.discard(subscription)
            self.count -= removed

    def publish(self, head: int, events: Iterable[HubEvent]) -> None:
        """Hands `events` (revisions above the last head, in order) to the
        watches they match and wakes their readers; the hub's head becomes
        `head`."""
        woken: set[Subscription] = set()
        with self.lock:
            for event in events:
                for subscription in self._matching(event[1]):
                    if subscription._offer(event):
                        woken.add(subscription)
            self.head = max(self.head, head)
        for subscription in woken:
            subscription._wake()

    def overflow_all(self, revision: int) -> None:
        """Ends every watch with `Overflowed`: events from `revision` on can
        no longer reach them through the hub (the history lost them before
        the hub read them); each reader goes back to the history."""
        with self.lock:
            everyone = [s for group in (*self._by_key.values(), *self._by_prefix.values(), self._ranges)
                        for s in group]
            for subscription in everyone:
                if subscription._overflowed_at is None:
                    subscription._overflow(revision)
        for subscription in everyone:
            subscription._wake()

    def _matching(self, key: bytes) -> Iterable[Subscription]:
        yield from self._by_key.get(key, ())
        for length in self._prefix_lengths:
            if length <= len(key):
                yield from self._by_prefix.get(key[:length], ())
        for subscription in self._ranges:
            if subscription.matches(key):
                yield subscription


class LoopWaker:
    """Wakes asyncio readers of one event loop with at most one
    `call_soon_threadsafe` per burst of wake-ups, whichever thread they
    come from."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: list[asyncio.Event] = []

    def waker_for(self, event: asyncio.Event) -> Callable[[], None]:
        def wake() -> None:
            with self._lock:
                self._pending.append(event)
                first = len(self._pending) == 1
            if first:
                try:
                    self._loop.call_soon_threadsafe(self._set_pending)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    pass
        return wake

    def _set_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for event in pending:
            event.set()


_KEY, _PREFIX, _RANGE = "key", "prefix", "range"


def _shape(start: bytes, end: bytes | None) -> str:
    """Which index a watch of [start, end) lives in."""
    if end == start + b"\x00":
        return _KEY
    if end is not None and end == prefix_end(start):
        return _PREFIX
    return _RANGE


def _discard(index: dict[bytes, set[Subscription]], key: bytes, subscription: Subscription) -> bool:
    subscriptions = index.get(key)
    if not subscriptions or subscription not in subscriptions:
        return False
    subscriptions.discard(subscription)
    if not subscriptions:
        del index[key]
    return True
