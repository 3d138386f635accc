"""`KeyedTables`: the keyed half of a running available plane. It owns the
node's `KeyedSync` (gossip of keyed tables, wire version 2), follows the
keyed entries of the table catalog, turns changed keys into records to
store and into per-key offers to subscribers.

The plane (`runtime.AvailablePlane`) drives it from its one gossip thread
exactly as it drives the whole-table `GossipNode`: received frames whose
first byte is the keyed wire version come here, `tick` runs beside the
other protocol's, and every changed key is written to LMDB (`storage`:
one record per key) in the step's commit before any frame leaves the
node and before the write that changed it is acknowledged.

Not thread-safe: every call but the feeds' own is made under the plane's
lock. The feeds are registered under that lock too, so a subscriber's
first value and the plane's offers never cross with a stale value last.
"""

from __future__ import annotations

import collections
import logging
import random
from typing import Any, Callable, Iterable, NamedTuple

from tandemkv.errors import FailedPrecondition, NotFound

from tandemkv.server.available.crdt import mutations
from tandemkv.server.available.crdt.hlc import HybridClock
from tandemkv.server.available.crdt.keyed import ScanPage, check_key
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.keyed_sync import KeyedSync, KeyedSyncConfig, KeyedSyncStatus, Outgoing
from tandemkv.server.available.gossip.keyed_wire import KEYED_WIRE_VERSION
from tandemkv.server.available.storage import CrdtStore, KeyedTableInfo
from tandemkv.server.available.subscriptions import KeyChange, KeyFeed, KeyFeeds

log = logging.getLogger(__name__)


def is_keyed_frame(frame: bytes) -> bool:
    """Whether a received frame is keyed sync's (wire version 2), by its first byte."""
    return frame[:1] == bytes([KEYED_WIRE_VERSION])


class KeyedBatch(NamedTuple):
    """What one commit writes: tables dropped (their keys deleted first),
    catalog entries of tables created, and keys."""

    dropped: set[str]
    tables: dict[str, KeyedTableInfo | None]
    keys: list[tuple[str, bytes, bytes]]

    def __bool__(self) -> bool:
        return bool(self.dropped or self.tables or self.keys)


class KeyedTables:
    def __init__(self, node_name: str, secret: bytes, clock: HybridClock, now_ms: int,
                 replica_id: str, members: Iterable[str],
                 config: KeyedSyncConfig = KeyedSyncConfig()) -> None:
        self.node_name = node_name
        self.sync = KeyedSync(node_name, secret, random.Random(), clock, now_ms, config,
                              replica_id=replica_id)
        self.sync.set_members(members)
        self.revisions: dict[str, int] = {}
        self.feeds = KeyFeeds()
        self._kinds: dict[str, TableKind] = {}
        self._new_tables: dict[str, KeyedTableInfo | None] = {}
        self._dropped: set[str] = set()

    # -- lifecycle and the catalog --
    def restore(self, store: CrdtStore) -> int:
        """Loads every stored keyed table and its keys; returns the keys loaded."""
        loaded = 0
        for name, info in store.load_keyed_tables().items():
            self.sync.create_table(name, info.kind, store.load_keys(name))
            self.revisions[name], self._kinds[name] = info.created_revision, info.kind
            loaded += len(self.sync.table(name))
        self.sync.take_changed()
        return loaded

    def kinds(self) -> dict[str, TableKind]:
        return dict(self._kinds)

    def create(self, name: str, kind: TableKind, created_revision: int) -> None:
        self.sync.create_table(name, kind)
        self.revisions[name], self._kinds[name] = created_revision, kind
        self._new_tables[name] = KeyedTableInfo(kind, created_revision)

    def drop(self, name: str) -> None:
        log.info("available plane %s: keyed table %r dropped", self.node_name, name)
        self.sync.drop_table(name)
        del self.revisions[name], self._kinds[name]
        self._new_tables.pop(name, None)
        self._dropped.add(name)
        for feed in self.feeds.of_table(name):
            feed.fail(NotFound(f"keyed CRDT table {name!r} was dropped"))

    # -- writes and reads --
    def update(self, now_ms: int, table: str, key: bytes, mutation: mutations.Mutation) -> None:
        kind = self.kind(table)
        mutations.check(table, kind, mutation)
        self.sync.mutate(now_ms, table, key, mutation.mutator, *mutation.args())

    def remove(self, now_ms: int, table: str, key: bytes) -> None:
        self.kind(table)
        self.sync.remove(now_ms, table, key)

    def read(self, table: str, key: bytes) -> tuple[TableKind, Any]:
        kind = self.kind(table)
        check_key(key)
        return kind, self.sync.read(table, key)

    def scan(self, table: str, prefix: bytes, after: bytes | None, limit: int) -> tuple[TableKind, ScanPage]:
        kind = self.kind(table)
        check_key(prefix)
        if after is not None:
            check_key(after)
        return kind, self.sync.scan(table, prefix, after, limit)

    def kind(self, table: str) -> TableKind:
        kind = self._kinds.get(table)
        if kind is None:
            raise NotFound(f"no keyed CRDT table {table!r} on node {self.node_name}")
        return kind

    # -- subscribers --
    def add_feed(self, feed: KeyFeed) -> None:
        """Registers `feed` and gives it its start: a key's value now, or
        (a prefix) a resync, so its reader scans after this point."""
        self.kind(feed.table)
        check_key(feed.key if feed.key is not None else feed.prefix)  # type: ignore[arg-type]
        self.feeds.add(feed)
        if feed.key is not None:
            feed.offer([KeyChange(feed.key, self.sync.read(feed.table, feed.key))])
        else:
            feed.resync()

    def offer(self, changed: Iterable[tuple[str, bytes]]) -> None:
        """Offers each changed key's value, read once, to the feeds that follow it."""
        subscribed = self.feeds.subscribed(changed)
        values: dict[tuple[str, bytes], Any] = {}
        for feed, keys in subscribed.items():
            changes = []
            for table, key in keys:
                if (table, key) not in values:
                    values[(table, key)] = self.sync.read(table, key) if table in self._kinds else None
                changes.append(KeyChange(key, values[(table, key)]))
            feed.offer(changes)

    # -- the thread's step --
    def receive(self, now_ms: int, frame: bytes) -> list[Outgoing]:
        return self.sync.receive(now_ms, frame)

    def tick(self, now_ms: int) -> list[Outgoing]:
        return self.sync.tick(now_ms)

    def next_round_ms(self) -> int:
        return self.sync.next_round_ms()

    def take_batch(self) -> tuple[KeyedBatch, list[tuple[str, bytes]]]:
        """The records to write now, and the (table, key) changes they carry."""
        changed = sorted(self.sync.take_changed())
        keys = []
        for table, key in changed:
            data = self.sync.table(table).encoded(key)
            assert data is not None, "a changed key has a state"
            keys.append((table, key, data))
        tables, self._new_tables = self._new_tables, {}
        dropped, self._dropped = self._dropped, set()
        return KeyedBatch(dropped, tables, keys), changed

    def rejected(self) -> collections.Counter[str]:
        return collections.Counter(self.sync.status().rejected)

    def status(self) -> KeyedSyncStatus:
        return self.sync.status()


def refuse_shape(table: str, keyed: bool) -> FailedPrecondition:
    """The error of a call that names a key on a single-value table, or none on a keyed one."""
    if keyed:
        return FailedPrecondition(f"table {table!r} is a keyed table: name the key to read or update "
                                  "(and a key or a prefix to subscribe to)")
    return FailedPrecondition(f"table {table!r} is a single-value table: leave the key unset, or "
                              "create a keyed table (keyed=True) to hold a value per key")


KeyFeedFactory = Callable[[Callable[[], None]], KeyFeed]
