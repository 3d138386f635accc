"""`PlaneCalls`: what any thread may ask of a running available plane
(`runtime.AvailablePlane`, which derives from it): writes, which apply
under the plane's lock and wait for the thread's commit; reads and
scans of this node's replica; feeds of a table's value or of a keyed
table's changed keys; the frame-injection hook; status.

The state these calls read and change is the plane's (`runtime`): the
`GossipNode` of single-value tables, the `KeyedTables`, the lock, the
commit sequence numbers. A call that names a key on a single-value table,
or none on a keyed one, is refused before anything changes. Never waits
on Raft.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable, Iterator

from tandemkv.errors import NotFound, OutcomeUnknown, Unavailable

from tandemkv.server.available.crdt import mutations
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.keyed_sync import KeyedSyncStatus
from tandemkv.server.available.gossip.protocol import GossipNode, GossipStatus
from tandemkv.server.available.inbox import GossipInbox, Verdict
from tandemkv.server.available.keyed_runtime import KeyedTables, refuse_shape
from tandemkv.server.available.subscriptions import KeyBatch, KeyFeed, Shape, TableFeeds
from tandemkv.server.feeds import Feed, follow



@dataclasses.dataclass(frozen=True)
class PlaneStatus:
    gossip: GossipStatus
    transport: dict[str, int]
    inbox: dict[str, int]
    replica_id: str
    keyed: KeyedSyncStatus | None = None  # the keyed tables' sync


class PlaneCalls:
    """The calls of `AvailablePlane` made from other threads (module docs)."""

    node_name: str
    replica_id: str
    _lock: threading.Lock
    _committed: threading.Condition
    _wake: threading.Event
    _stopping: threading.Event
    _inbox: GossipInbox
    _subscriptions: TableFeeds
    _gossip: GossipNode | None
    _keyed: KeyedTables
    _transport: Any
    _written_seq: int
    _durable_seq: int

    def refresh_catalog(self) -> None:
        raise NotImplementedError

    # -- writes and reads (any thread) --
    def update(self, table: str, mutation: mutations.Mutation | None, *, timeout_s: float,
               key: bytes | None = None) -> None:
        """Applies one mutation to this node's replica (of `key`, in a keyed
        table; None with a key removes it); returns once it is durable.
        Raises NotFound for a table not in the local catalog,
        FailedPrecondition for a mutation its kind does not take or a key
        named on a single-value table (none on a keyed one),
        OutcomeUnknown if the commit did not finish within `timeout_s`
        (the write is applied here in memory and will be saved and
        gossiped)."""
        deadline = time.monotonic() + timeout_s
        self._known(table)
        with self._lock:
            if self._is_keyed(table, key):
                if mutation is None:
                    self._keyed.remove(_now_ms(), table, key)
                else:
                    self._keyed.update(_now_ms(), table, key, mutation)
            else:
                kind = self._require_running().tables().get(table)
                if kind is None:
                    raise self._not_found(table)
                assert mutation is not None, "a single-value table's update has a mutation"
                mutations.check(table, kind, mutation)
                self._gossip.mutate(_now_ms(), table, mutation.mutator, *mutation.args())
            self._written_seq += 1
            seq = self._written_seq
        self._wake.set()
        self._wait_durable(seq, deadline)

    def read(self, table: str, key: bytes | None = None) -> tuple[TableKind, Any]:
        """The table's kind and this node's current value of it (of `key`
        in a keyed table: None when the key is absent)."""
        self._known(table)
        with self._lock:
            if self._is_keyed(table, key):
                return self._keyed.read(table, key)
            gossip = self._require_running()
            kind = gossip.tables().get(table)
            if kind is None:  # dropped since _known looked
                raise self._not_found(table)
            return kind, gossip.read(table).value()

    def scan_keys(self, table: str, prefix: bytes, after: bytes | None, limit: int) -> tuple[TableKind, Any]:
        """The kind and a page (crdt.keyed.ScanPage) of a keyed table's
        present keys with `prefix`, after `after`, in key order."""
        self._known(table)
        with self._lock:
            self._is_keyed(table, b"")
            return self._keyed.scan(table, prefix, after, limit)

    def key_feed(self, table: str, wake: Callable[[], None], *, key: bytes | None = None,
                 prefix: bytes | None = None,
                 shape: Callable[[TableKind, KeyBatch], Any] = lambda kind, batch: batch) -> KeyFeed:
        """A feed (subscriptions.KeyFeed) of a keyed table's changes: of
        `key` (its value now, then each change) or of every key with
        `prefix` (a resync first, then each change), each batch taken as
        `shape(kind, batch)`. NotFound for a table not known here,
        FailedPrecondition for a single-value table."""
        kind = self.table_kind(table)
        feed = KeyFeed(table, wake, key=key, prefix=prefix, shape=lambda batch: shape(kind, batch),
                       on_close=lambda: self._keyed.feeds.remove(feed))
        with self._lock:
            try:
                self._is_keyed(table, b"")
                self._keyed.add_feed(feed)
            except BaseException:
                feed.close()
                raise
        return feed

    def is_keyed(self, table: str) -> bool:
        self._known(table)
        with self._lock:
            return table in self._keyed.revisions

    def table_kind(self, table: str) -> TableKind:
        """The kind of a table in the local catalog (NotFound if absent)."""
        self._known(table)
        with self._lock:
            kind = self._require_running().tables().get(table) or self._keyed.kinds().get(table)
        if kind is None:
            raise self._not_found(table)
        return kind

    def tables(self) -> dict[str, TableKind]:
        with self._lock:
            return {**self._require_running().tables(), **self._keyed.kinds()}

    def changes(self, table: str, stop: threading.Event) -> Iterator[tuple[TableKind, Any]]:
        """The table's kind and value now, then after every saved change,
        until `stop` is set, the plane stops, or the table is dropped (then
        NotFound). A slow reader is given the latest value, never a stale
        one after the last change."""
        return follow(lambda wake: self.value_feed(table, wake), stop.is_set)

    def value_feed(self, table: str, wake: Callable[[], None], *,
                   shape: Shape = lambda kind, value: (kind, value)) -> Feed:
        """A feed (tandemkv.server.feeds) of the table's value, offered as
        `shape(kind, value)`: now, then the latest after every saved change
        (the plane's thread reads it once per change for all of the
        table's feeds, and calls `wake` of each); the feed fails with
        NotFound once the table is dropped and ends when the plane stops.
        NotFound now for a table not known here."""
        self._known(table)
        feed: Feed = Feed(wake, on_close=lambda: self._subscriptions.remove(table, feed))
        version = self._subscriptions.add(table, feed, shape)
        try:
            kind, value = self.read(table)
        except BaseException:
            feed.close()
            raise
        # Read after the version: a change saved in between is offered
        # again with its own, newer version.
        feed.offer(version, shape(kind, value))
        return feed

    def deliver(self, frames: list[bytes]) -> Verdict | None:
        """Queues injected frames (`Gossip.Deliver`) for the thread; returns
        the verdict on them, or None if the thread did not get to them in
        time. Datagrams go to the inbox without waiting."""
        return self._inbox.put_and_wait(frames)

    def status(self) -> PlaneStatus:
        with self._lock:
            gossip = self._require_running().status()
            keyed = self._keyed.status()
        inbox = self._inbox.counters()
        counters = dict(self._transport.counters) if self._transport is not None else {}
        return PlaneStatus(gossip, counters, inbox, self.replica_id, keyed)

    def _known(self, table: str) -> None:
        with self._lock:
            if table in self._require_running().tables() or table in self._keyed.revisions:
                return
        self.refresh_catalog()
        with self._lock:
            if table not in self._require_running().tables() and table not in self._keyed.revisions:
                raise self._not_found(table)

    def _is_keyed(self, table: str, key: bytes | None) -> bool:
        """Whether `table` is keyed; FailedPrecondition when `key` says the
        other (a key on a single-value table, or none on a keyed one). Under _lock."""
        self._require_running()
        keyed = table in self._keyed.revisions
        if keyed != (key is not None):
            if not keyed and table not in self._gossip.tables():
                raise self._not_found(table)
            raise refuse_shape(table, keyed)
        return keyed

    def _not_found(self, table: str) -> NotFound:
        return NotFound(
            f"no CRDT table {table!r} on node {self.node_name}; create it first "
            "(tables are created through Raft and appear on a node once it has "
            "applied the creation)")

    def _wait_durable(self, seq: int, deadline: float) -> None:
        with self._committed:
            while self._durable_seq < seq:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0 or self._stopping.is_set():
                    raise OutcomeUnknown(
                        f"node {self.node_name}: the update is applied in memory but was not "
                        "saved before the deadline; it is saved and gossiped unless the node "
                        "stops first")
                self._committed.wait(remaining_s)

    def _require_running(self) -> GossipNode:
        if self._gossip is None or self._stopping.is_set():
            raise Unavailable(f"node {self.node_name}: the available plane is not running")
        return self._gossip


def _now_ms() -> int:
    return int(time.time() * 1000)
