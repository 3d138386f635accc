"""A feed: one reader's view of a value that changes (an election's
leader, a CRDT table's value), filled by the node's threads and read by
whoever waits on it, a thread or an asyncio task, with no thread of its
own.

The source `offer`s each new value with a version (an applied revision, a
table's change count) and the feed keeps only the latest one: a reader that
falls behind skips values, is given the latest, and never a stale one after
the last change; nothing queues up behind a slow reader. An offer the
reader has not been given yet wakes it through `wake`, a callable the
reader supplies (a threading.Event's `set`, or a `LoopWaker` waker of an
asyncio.Event), so a feed waiting for news costs memory, not a thread.

A source that goes away ends its feeds (`end`: the node stops) or fails
them (`fail`: the table was dropped); the reader's next `take` raises the
failure. The reader `close`s its feed when done.

`follow` is the blocking shell (the embedded `Node`'s generators); the
gRPC server's asyncio shell is `StreamStops.serve_feed` (api/streams.py).
Both only wait and take: what a value is, and when it changed, is the
source's business.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Iterator, TypeVar, cast

T = TypeVar("T")

_NOTHING: object = object()

# Longest one wait of `follow` before it looks at its stop flag again.
FOLLOW_WAIT_SLICE_S = 0.5


class FeedEnds:
    """How every feed ends, whatever it holds: the source `end`s it or
    `fail`s it, the reader `close`s it (`on_close` runs once), and `over`
    says nothing more will come. A subclass keeps its values under
    `_lock`, wakes its reader through `_wake`, and starts `take` with
    `_raise_failure()`."""

    def __init__(self, wake: Callable[[], None], on_close: Callable[[], None] | None) -> None:
        self._wake = wake
        self._on_close = on_close
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self._ended = False
        self._closed = False

    def fail(self, failure: BaseException) -> None:
        """Ends the feed: the reader's next `take` raises `failure`."""
        with self._lock:
            if self._ended:
                return
            self._failure, self._ended = failure, True
        self._wake()

    def end(self) -> None:
        """Ends the feed: the source is gone (the node stops)."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self._wake()

    def _raise_failure(self) -> None:
        """Raises the failure the feed ended with, once (under `_lock`)."""
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    @property
    def over(self) -> bool:
        """Whether nothing more will come (ended, and any failure raised)."""
        with self._lock:
            return self._ended and self._failure is None

    def close(self) -> None:
        """The reader is done: the source forgets the feed."""
        with self._lock:
            if self._closed:
                return
            self._closed = self._ended = True
        if self._on_close is not None:
            self._on_close()


class Feed(FeedEnds, Generic[T]):
    """The latest value of one source for one reader (see the module
    docs). `same(a, b)`: whether two values are the same news (a newer
    version of the same value is then no news); None: every newer version
    is news. `on_close` runs once, when the reader closes the feed."""

    def __init__(self, wake: Callable[[], None], *, same: Callable[[T, T], bool] | None = None,
                 on_close: Callable[[], None] | None = None) -> None:
        super().__init__(wake, on_close)
        self._same = same
        self._version: int | None = None  # of the latest value offered
        self._latest: T | None = None
        self._given: object = _NOTHING  # the value last taken
        self._news = False

    def offer(self, version: int, value: T) -> None:
        """Keeps `value` if its version is newer than the latest's, and wakes
        the reader if it is news to them; an older version is dropped."""
        with self._lock:
            if self._ended or (self._version is not None and version <= self._version):
                return
            self._version, self._latest = version, value
            was_news = self._news
            self._news = (self._given is _NOTHING or self._same is None
                          or not self._same(cast(T, self._given), value))
            wake = self._news and not was_news
        if wake:
            self._wake()

    def take(self) -> T | None:
        """The latest value if the reader has not been given it yet, else
        None; raises the failure the feed ended with (once)."""
        with self._lock:
            self._raise_failure()
            if self._ended or not self._news:
                return None
            self._news = False
            self._given = self._latest
            return self._latest


def follow(open_feed: Callable[[Callable[[], None]], Feed[T]],
           stopped: Callable[[], bool]) -> Iterator[T]:
    """What the feed `open_feed(wake)` opens holds: the value now, then the
    latest after each change, until `stopped()` or the feed ends; a thread
    waits between values. The feed is opened at the first `next` (its
    errors are raised there) and closed when the generator is."""
    woken = threading.Event()
    feed = open_feed(woken.set)
    try:
        while not (stopped() or feed.over):
            woken.clear()
            value = feed.take()
            if value is None:
                woken.wait(FOLLOW_WAIT_SLICE_S)
            else:
                yield value
    finally:
        feed.close()
