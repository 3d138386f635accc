"""`AvailablePlane`: the available plane of one running node. It owns the
`GossipNode` (single-value tables), the keyed tables (`keyed_runtime`:
`KeyedSync`, one LMDB record per key), the CRDT store (`<data_dir>/crdt/`),
the gossip transport and one thread (`tandemkv-gossip`) that drives them.
Both protocols share the UDP socket; a frame's first byte (its wire
version) says which one it is for.

The thread, each time it wakes (a round is due, frames arrived, a write
waits to be made durable, the catalog poll is due):

1. follows the table catalog (Raft-agreed, read from local state);
2. feeds received frames to the `GossipNode` and ticks it;
3. saves every changed table in one LMDB transaction (group commit);
4. only then sends the frames those steps produced, and acknowledges the
   writes the transaction covered.

So a table is on disk before any frame carrying its state leaves the node
(the core's rule), and a write is acknowledged only once it is durable
(`Update` returns after the fsync that covers it; writes that arrive during
one fsync share the next). The `GossipNode` is not thread-safe: every call
into it holds `_lock`; writes run the mutator in the caller's thread
under that lock and then wait for the thread's commit. Never waits on Raft.

This module knows threads, time and the catalog source; the wire, the
disk and the queue of received frames belong to `transport`, `storage`
and `inbox`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import random
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from tandemkv.errors import NotFound, OutcomeUnknown, Unavailable

from tandemkv.server.available.crdt import mutations
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.protocol import GossipConfig, GossipNode, GossipStatus
from tandemkv.server.available.crdt.hlc import HybridClock
from tandemkv.server.available.inbox import Delivery, GossipInbox, Verdict
from tandemkv.server.available.keyed_runtime import KeyedBatch, KeyedTables, is_keyed_frame, refuse_shape
from tandemkv.server.available.storage import CrdtStore, LmdbHighWaterMark, StoredTable
from tandemkv.limits import UDP_FRAME_BYTES_MAX
from tandemkv.server.available.transport import GossipTransport
from tandemkv.server.available.subscriptions import Changes, KeyFeed, Shape, TableFeeds, offer_changes
from tandemkv.server.feeds import Feed, follow

log = logging.getLogger(__name__)

# How often the thread re-reads the table catalog from local state.
CATALOG_POLL_INTERVAL_MS = 200
# Longest stop() waits for the thread.
STOP_JOIN_S = 10.0


class CatalogTable(NamedTuple):
    name: str
    kind: TableKind
    created_revision: int
    keyed: bool = False


# The catalog as local state has it: (applied revision, tables).
CatalogSource = Callable[[], tuple[int, list[CatalogTable]]]


@dataclasses.dataclass(frozen=True)
class PlaneStatus:
    gossip: GossipStatus
    transport: dict[str, int]
    inbox: dict[str, int]
    replica_id: str
    keyed: Any = None  # KeyedSyncStatus of the keyed tables


class AvailablePlane:
    def __init__(self, node_name: str, data_dir: Path, peers: dict[str, str], secret: bytes,
                 catalog: CatalogSource, *, durable: bool = True,
                 config: GossipConfig = GossipConfig()) -> None:
        """`peers`: every member's name -> its client address (gossip
        datagrams go to the same host and port, over UDP); `catalog` reads
        the Raft-agreed table catalog."""
        self.node_name = node_name
        self._path = Path(data_dir) / "crdt"
        self._members = sorted(peers)
        self._secret = secret
        self._catalog = catalog
        self._durable = durable
        self._config = config
        self._peers = peers
        self._transport: GossipTransport | None = None
        self._lock = threading.Lock()
        self._committed = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._inbox = GossipInbox(node_name, self._wake.set)
        self._revisions: dict[str, int] = {}
        self._dropped: set[str] = set()
        self._written_seq = 0
        self._durable_seq = 0
        # Subscribers' feeds, and each table's change count.
        self._subscriptions = TableFeeds()
        self._next_catalog_ms = 0
        self._store: CrdtStore | None = None
        self._gossip: GossipNode | None = None
        self._keyed: KeyedTables | None = None
        self._thread: threading.Thread | None = None
        self.replica_id = ""

    # -- lifecycle --
    def start(self) -> None:
        self._store = CrdtStore(self._path, durable=self._durable)
        self.replica_id = self._store.replica_id(self.node_name)
        clock = HybridClock(LmdbHighWaterMark(self._store))
        config = dataclasses.replace(
            self._config,
            message_bytes_max=min(self._config.message_bytes_max, UDP_FRAME_BYTES_MAX))
        self._gossip = GossipNode(self.node_name, self._secret, random.Random(), clock, _now_ms(),
                                  config, replica_id=self.replica_id)
        self._gossip.set_members(self._members)
        for name, stored in self._store.load_tables().items():
            self._gossip.create_table(name, stored.kind, stored.encoded)
            self._revisions[name] = stored.created_revision
        self._gossip.take_changed()
        self._keyed = KeyedTables(self.node_name, self._secret, clock, _now_ms(), self.replica_id,
                                  self._members)
        keys_loaded = self._keyed.restore(self._store)
        own_address = self._peers.get(self.node_name)
        if own_address:
            others = {n: a for n, a in self._peers.items() if n != self.node_name and a}
            self._transport = GossipTransport(others, own_address, self._inbox.put_nowait)
        self._thread = threading.Thread(target=self._run, name="tandemkv-gossip", daemon=True)
        self._thread.start()
        log.info("available plane %s: replica %s, %d tables and %d keyed tables (%d keys) restored",
                 self.node_name, self.replica_id, len(self._revisions), len(self._keyed.revisions),
                 keys_loaded)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_S)
            assert not self._thread.is_alive(), "the gossip thread stops"
            self._thread = None
        with self._committed:
            self._committed.notify_all()
        self._subscriptions.end_all()
        if self._keyed is not None:
            self._keyed.feeds.end_all()
        if self._transport is not None:
            self._transport.close()
        if self._store is not None:
            self._store.close()
            self._store = None

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
                 prefix: bytes | None = None) -> KeyFeed:
        """A feed (subscriptions.KeyFeed) of a keyed table's changes: of
        `key` (its value now, then each change) or of every key with
        `prefix` (a resync first, then each change). NotFound for a table
        not known here, FailedPrecondition for a single-value table."""
        self._known(table)
        feed = KeyFeed(table, wake, key=key, prefix=prefix,
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

    def refresh_catalog(self) -> None:
        """Follows the catalog now (after this node created or dropped a
        table, or on a write to a table not known here yet)."""
        revision, tables = self._catalog()
        with self._lock:
            self._reconcile(revision, tables)
        self._wake.set()

    def status(self) -> PlaneStatus:
        with self._lock:
            gossip = self._require_running().status()
            keyed = self._keyed.status()
        inbox = self._inbox.counters()
        counters = dict(self._transport.counters) if self._transport is not None else {}
        return PlaneStatus(gossip, counters, inbox, self.replica_id, keyed)

    # -- the thread --
    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._step()
            except Exception:  # noqa: BLE001 - logged; the next step retries
                log.exception("available plane %s: gossip step failed", self.node_name)
                self._stopping.wait(self._config.round_interval_ms / 1000)
            self._wake.wait(self._wait_s())
            self._wake.clear()
        self._final_commit()

    def _final_commit(self) -> None:
        """Saves what changed since the last step (drops, merged frames);
        sends nothing."""
        with self._lock:
            batch, seq = self._take_batch()
            keyed, changed = self._keyed.take_batch()
        self._commit(batch, seq, keyed, changed)

    def _wait_s(self) -> float:
        now_ms = _now_ms()
        with self._lock:
            due_ms = min(self._gossip.next_round_ms(), self._keyed.next_round_ms(), self._next_catalog_ms)
        return min(max(0, due_ms - now_ms), self._config.round_interval_ms) / 1000

    def _step(self) -> None:
        self._maybe_follow_catalog()
        deliveries = self._inbox.take()
        with self._lock:
            out, verdicts = self._receive(deliveries)
            out += self._gossip.tick(_now_ms())
            out += self._keyed.tick(_now_ms())
            batch, seq = self._take_batch()
            keyed, changed = self._keyed.take_batch()
        self._commit(batch, seq, keyed, changed)
        if self._transport is not None:
            self._transport.send(out)
        for delivery, verdict in zip(deliveries, verdicts):
            delivery.verdict.set_result(verdict)

    def _maybe_follow_catalog(self) -> None:
        now_ms = _now_ms()
        if now_ms < self._next_catalog_ms:
            return
        self._next_catalog_ms = now_ms + CATALOG_POLL_INTERVAL_MS
        try:
            self.refresh_catalog()
        except Exception as error:  # noqa: BLE001 - local state unavailable (stopping)
            log.debug("catalog not read: %s", error)

    def _receive(self, deliveries: list[Delivery]) -> tuple[list, list[Verdict]]:
        out, verdicts = [], []
        for delivery in deliveries:
            before = self._rejected()
            for frame in delivery.frames:
                protocol = self._keyed if is_keyed_frame(frame) else self._gossip
                out += protocol.receive(_now_ms(), frame)
            after = self._rejected()
            verdicts.append(Verdict(dict(after - before), dict(after)))
        return out, verdicts

    def _take_batch(self) -> tuple[dict[str, StoredTable | None], int]:
        batch: dict[str, StoredTable | None] = {name: None for name in self._dropped}
        self._dropped.clear()
        tables = self._gossip.tables()
        for name in self._gossip.take_changed():
            batch[name] = StoredTable(tables[name], self._revisions[name],
                                      self._gossip.encoded_table(name))
        return batch, self._written_seq

    def _rejected(self) -> collections.Counter[str]:
        return collections.Counter(self._gossip.status().rejected) + self._keyed.rejected()

    def _commit(self, batch: dict[str, StoredTable | None], seq: int, keyed: KeyedBatch,
                changed: list[tuple[str, bytes]]) -> None:
        if batch:
            self._store.save_tables(batch)
        if keyed:
            self._store.save_keyed(keyed.tables, keyed.keys)
        if changed:
            with self._lock:
                self._keyed.offer(changed)
        with self._committed:
            self._durable_seq = max(self._durable_seq, seq)
            self._committed.notify_all()
        changes = self._subscriptions.count_changes(batch)
        if changes:
            with self._lock:
                self._offer(changes)

    def _offer(self, changes: Changes) -> None:
        """Offers the changed tables' values to their subscribers. Under _lock."""
        def read(name: str) -> tuple[TableKind, Any] | None:
            kind = self._gossip.tables().get(name)
            return None if kind is None else (kind, self._gossip.read(name).value())
        offer_changes(changes, read, self._not_found)

    # -- the catalog (under _lock) --
    def _reconcile(self, revision: int, catalog: list[CatalogTable]) -> None:
        self._reconcile_keyed(revision, [table for table in catalog if table.keyed])
        wanted = {table.name: table for table in catalog if not table.keyed}
        touched = []
        for name, created in list(self._revisions.items()):
            table = wanted.get(name)
            gone = table is None and revision >= created
            replaced = table is not None and table.created_revision != created
            if gone or replaced:
                self._drop(name)
                touched.append(name)
        for name, table in wanted.items():
            if name not in self._revisions:
                self._gossip.create_table(name, table.kind)
                self._revisions[name] = table.created_revision
                touched.append(name)
        if touched:
            self._offer(self._subscriptions.count_changes(dict.fromkeys(touched)))

    def _reconcile_keyed(self, revision: int, catalog: list[CatalogTable]) -> None:
        wanted = {table.name: table for table in catalog}
        for name, created in list(self._keyed.revisions.items()):
            table = wanted.get(name)
            if (table is None and revision >= created) or (table is not None and table.created_revision != created):
                self._keyed.drop(name)
        for name, table in wanted.items():
            if name not in self._keyed.revisions:
                self._keyed.create(name, table.kind, table.created_revision)

    def _drop(self, name: str) -> None:
        log.info("available plane %s: table %r dropped", self.node_name, name)
        self._gossip.drop_table(name)
        del self._revisions[name]
        self._dropped.add(name)

    # -- helpers --
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
