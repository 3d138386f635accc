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

This module knows threads, time and the catalog source; the calls other
threads make (writes, reads, feeds, status) are `plane_calls`, from which
the plane derives; the keyed tables' half is `keyed_runtime`; the wire,
the disk and the queue of received frames belong to `transport`,
`storage` and `inbox`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import random
import threading
from pathlib import Path
from typing import Any, Callable, NamedTuple

from tandemkv.errors import InvalidArgument, Unavailable
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.liveness import PeerState
from tandemkv.server.available.gossip.protocol import GossipConfig, GossipNode
from tandemkv.server.available.crdt.hlc import HybridClock
from tandemkv.server.available.inbox import Delivery, GossipInbox, Verdict
from tandemkv.server.available.keyed_runtime import KeyedBatch, KeyedTables, is_keyed_frame
from tandemkv.server.available.plane_calls import PlaneCalls, PlaneStatus, _now_ms
from tandemkv.server.available.storage import CrdtStore, LmdbHighWaterMark, StoredTable
from tandemkv.limits import UDP_FRAME_BYTES_MAX
from tandemkv.server.available.transport import GossipTransport
from tandemkv.server.available.subscriptions import Changes, TableFeeds, offer_changes

__all__ = ["AvailablePlane", "CatalogSource", "CatalogTable", "PlaneStatus"]

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


class AvailablePlane(PlaneCalls):
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
        # The last member set handed over by `set_members` (numbered), and
        # the number of the one the thread took up: one atomic read each.
        self._handed_members: tuple[int, dict[str, str], bytes] = (0, peers, secret)
        self._members_taken = 0
        self._transport: GossipTransport | None = None
        self._lock = threading.Lock()
        self._committed = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stop_lock = threading.Lock()
        self._stopped = False
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
        """Stops the thread and closes the transport and the store. Safe
        from any thread, and again (the node stops a plane it retired)."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
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

    def set_members(self, peers: dict[str, str], secret: bytes) -> None:
        """Follows the committed member set: `peers` as in the constructor
        (this node's own entry included; only it when this node is not a
        member), `secret` the gossip key that goes with it. Returns at once
        (the Raft tick thread calls it); the gossip thread takes it up on
        its next step: both protocols gossip with exactly these members
        from then on, frames of the others are refused (`not_member`), and
        the transport sends to nobody else."""
        self._handed_members = (self._handed_members[0] + 1, dict(peers), secret)
        self._wake.set()

    def members(self) -> list[str]:
        """The members the plane gossips with, this node among them."""
        return list(self._members)

    def _follow_members(self) -> None:
        """Takes up the member set `set_members` left, if any (the thread)."""
        number, peers, secret = self._handed_members
        if number == self._members_taken:
            return
        self._members_taken = number
        members = sorted(peers)
        if (peers, secret) == (self._peers, self._secret):
            return  # the same set again (the node hands its set over once more as it starts)
        with self._lock:
            try:
                self._gossip.set_members(members, secret)
                self._keyed.sync.set_members(members, secret)
            except InvalidArgument as error:  # past GOSSIP_MEMBERS_MAX: both refuse before changing
                log.error("available plane %s keeps gossiping with %s: %s", self.node_name,
                          ", ".join(self._members), error.message)
                return
            self._members, self._peers, self._secret = members, peers, secret
        if self._transport is not None:
            self._transport.set_addresses({n: a for n, a in peers.items() if n != self.node_name and a})
        log.info("available plane %s: gossip members now %s", self.node_name, ", ".join(members))

    def write_store_image(self, fd: int) -> None:
        """Appends a compacted copy of the plane's store, as committed, to
        fd (a backup of the node)."""
        store = self._store
        if store is None:
            raise Unavailable(f"node {self.node_name}: the available plane is not running")
        store.write_image(fd)

    def refresh_catalog(self) -> None:
        """Follows the catalog now (after this node created or dropped a
        table, or on a write to a table not known here yet)."""
        revision, tables = self._catalog()
        with self._lock:
            self._reconcile(revision, tables)
        self._wake.set()

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
        self._follow_members()
        self._maybe_follow_catalog()
        deliveries = self._inbox.take()
        with self._lock:
            out, verdicts = self._receive(deliveries)
            out += self._gossip.tick(_now_ms())
            if _now_ms() >= self._keyed.next_round_ms():
                self._keyed.sync.set_dead(name for name, peer in self._gossip.status().peers.items()
                                          if peer.state == PeerState.DEAD)
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
            self._store.save_keyed(keyed.tables, keyed.keys, keyed.dropped)
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
