"""The subscribers of one available plane's tables: each subscriber's feed
(tandemkv.server.feeds) and each table's change count.

The plane counts a change of a table each time it saves, creates or drops
it, then reads the table's value once and offers it to all of the table's
feeds, with the count as its version (`offer_changes`). A feed keeps the
highest version it was offered, so a subscriber's own first read and the
plane's offers may cross without a stale value winning: registering a feed
and reading the count are one step, as are counting a change and listing
the feeds to offer it to, and every value is read after its count.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Iterable, NamedTuple

from tandemkv.limits import CRDT_KEY_FEED_PENDING_KEYS_MAX

from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.feeds import Feed, FeedEnds

# What a subscriber's feed is offered, made of a table's kind and value.
Shape = Callable[[TableKind, Any], Any]
# Tables that changed and have feeds: (table, its change count, its feeds).
Changes = list[tuple[str, int, dict[Feed, Shape]]]


class TableFeeds:
    """The feeds of every subscribed table, and every table's change count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: collections.Counter[str] = collections.Counter()
        self._feeds: dict[str, dict[Feed, Shape]] = collections.defaultdict(dict)
        self._ended = False

    def add(self, table: str, feed: Feed, shape: Shape) -> int:
        """Registers `feed` for `table`; returns the table's change count
        now. A feed added after `end_all` is ended at once."""
        with self._lock:
            self._feeds[table][feed] = shape
            version, ended = self._versions[table], self._ended
        if ended:
            feed.end()
        return version

    def remove(self, table: str, feed: Feed) -> None:
        with self._lock:
            shapes = self._feeds.get(table)
            if shapes is not None:
                shapes.pop(feed, None)
                if not shapes:
                    del self._feeds[table]

    def count_changes(self, tables: Iterable[str]) -> Changes:
        """Counts one change of each of `tables`; those with feeds, to
        offer their value to (read it after this call)."""
        changes = []
        with self._lock:
            for table in tables:
                self._versions[table] += 1
                shapes = self._feeds.get(table)
                if shapes:
                    changes.append((table, self._versions[table], dict(shapes)))
        return changes

    def end_all(self) -> None:
        """The plane stops: every feed ends, and any added later."""
        with self._lock:
            self._ended = True
            feeds = [feed for shapes in self._feeds.values() for feed in shapes]
        for feed in feeds:
            feed.end()


def offer_changes(changes: Changes, read: Callable[[str], tuple[TableKind, Any] | None],
                  not_found: Callable[[str], BaseException]) -> None:
    """Offers each changed table's value, `read` once, to its feeds, or
    fails them with `not_found(table)` if `read` finds no such table (it
    was dropped)."""
    for table, version, shapes in changes:
        kind_value = read(table)
        if kind_value is None:
            for feed in shapes:
                feed.fail(not_found(table))
            continue
        kind, value = kind_value
        for feed, shape in shapes.items():
            feed.offer(version, shape(kind, value))


# -- keyed tables: per-key changes --

class KeyChange(NamedTuple):
    """A key's new value (None: the key reads absent, removed)."""

    key: bytes
    value: Any


class KeyBatch(NamedTuple):
    """What a keyed subscriber takes at once: `resync` first when changes
    before these may be missing (the subscription began, or overflowed),
    then the changed keys, each with its latest value, in key order."""

    resync: bool
    changes: list[KeyChange]


class KeyFeed(FeedEnds):
    """One subscriber's unsent changes of a keyed table: the keys of one
    `key`, or with one `prefix`. The plane's thread `offer`s changed keys;
    a key changed twice before the reader takes it is sent once, with its
    latest value, so a hot key never fills the feed. Past `pending_max`
    distinct keys the pending changes are dropped and the next batch says
    `resync`: never a silent gap. Same reader interface as `Feed` (`take`,
    `over`, `close`), so `follow` and `StreamStops.serve_feed` serve it."""

    def __init__(self, table: str, wake: Callable[[], None], *, key: bytes | None = None,
                 prefix: bytes | None = None, pending_max: int = CRDT_KEY_FEED_PENDING_KEYS_MAX,
                 shape: Callable[[KeyBatch], Any] = lambda batch: batch,
                 on_close: Callable[[], None] | None = None) -> None:
        """`shape`: what `take` gives of each batch, in the reader's thread."""
        assert (key is None) != (prefix is None), "a key feed follows one key or one prefix"
        super().__init__(wake, on_close)
        self.table, self.key, self.prefix = table, key, prefix
        self._shape = shape
        self._pending_max = pending_max
        self._pending: dict[bytes, Any] = {}
        self._resync = False
        self.overflows = 0

    def matches(self, key: bytes) -> bool:
        return key == self.key if self.prefix is None else key.startswith(self.prefix)

    def offer(self, changes: Iterable[KeyChange]) -> None:
        with self._lock:
            if self._ended:
                return
            was_news = bool(self._pending) or self._resync
            for change in changes:
                self._pending[change.key] = change.value
            if len(self._pending) > self._pending_max:
                self._pending.clear()
                self._resync = True
                self.overflows += 1
            wake = not was_news and (bool(self._pending) or self._resync)
        if wake:
            self._wake()

    def resync(self) -> None:
        """The reader must read what it follows now (the subscription begins)."""
        with self._lock:
            self._pending.clear()
            self._resync = True
        self._wake()

    def take(self) -> Any:
        """The pending batch, shaped (None: nothing new); raises the
        failure the feed ended with (once)."""
        with self._lock:
            self._raise_failure()
            if self._ended or not (self._pending or self._resync):
                return None
            batch = KeyBatch(self._resync, [KeyChange(k, v) for k, v in sorted(self._pending.items())])
            self._pending, self._resync = {}, False
        return self._shape(batch)


class KeyFeeds:
    """The key feeds of every keyed table: by exact key, and by prefix."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, bytes], set[KeyFeed]] = collections.defaultdict(set)
        self._by_prefix: dict[str, set[KeyFeed]] = collections.defaultdict(set)
        self._ended = False

    def add(self, feed: KeyFeed) -> None:
        with self._lock:
            if feed.key is not None:
                self._by_key[(feed.table, feed.key)].add(feed)
            else:
                self._by_prefix[feed.table].add(feed)
            ended = self._ended
        if ended:
            feed.end()

    def remove(self, feed: KeyFeed) -> None:
        with self._lock:
            index, slot = ((self._by_key, (feed.table, feed.key)) if feed.key is not None
                           else (self._by_prefix, feed.table))
            feeds = index.get(slot)  # type: ignore[attr-defined]
            if feeds is not None:
                feeds.discard(feed)
                if not feeds:
                    del index[slot]  # type: ignore[attr-defined]

    def subscribed(self, changed: Iterable[tuple[str, bytes]]) -> dict[KeyFeed, list[tuple[str, bytes]]]:
        """The feeds that follow any of `changed` (table, key), with the
        changes each follows."""
        out: dict[KeyFeed, list[tuple[str, bytes]]] = collections.defaultdict(list)
        with self._lock:
            if not self._by_key and not self._by_prefix:
                return {}
            for table, key in changed:
                for feed in self._by_key.get((table, key), ()):
                    out[feed].append((table, key))
                for feed in self._by_prefix.get(table, ()):
                    if feed.matches(key):
                        out[feed].append((table, key))
        return out

    def of_table(self, table: str) -> list[KeyFeed]:
        with self._lock:
            return [feed for (name, _), feeds in self._by_key.items() if name == table for feed in feeds] + \
                list(self._by_prefix.get(table, ()))

    def end_all(self) -> None:
        with self._lock:
            self._ended = True
            feeds = [f for fs in self._by_key.values() for f in fs] + \
                [f for fs in self._by_prefix.values() for f in fs]
        for feed in feeds:
            feed.end()
