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
from typing import Any, Callable, Iterable

from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.feeds import Feed

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
