"""The available plane's runtime on one node, in process, with a scripted
catalog and no peers: updates are durable when acknowledged and survive a
restart, the clock's high-water mark is persisted, the catalog decides
which tables exist, and an unknown table is refused naming it."""

from __future__ import annotations

import threading

import pytest

from tandemkv.errors import FailedPrecondition, NotFound
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.crdt.mutations import Add, Assign, Decrement, Increment, Put
from tandemkv.server.available.runtime import AvailablePlane, CatalogTable
from tandemkv.server.available.storage import CrdtStore

TIMEOUT_S = 5.0


class Catalog:
    def __init__(self):
        self.revision = 1
        self.tables: list[CatalogTable] = []

    def create(self, name: str, kind: TableKind) -> None:
        self.revision += 1
        self.tables.append(CatalogTable(name, kind, self.revision))

    def drop(self, name: str) -> None:
        self.revision += 1
        self.tables = [t for t in self.tables if t.name != name]

    def __call__(self):
        return self.revision, list(self.tables)


def plane(tmp_path, catalog) -> AvailablePlane:
    running = AvailablePlane("n1", tmp_path, {"n1": ""}, b"key", catalog)
    running.start()
    return running


def test_acknowledged_updates_survive_a_restart(tmp_path):
    catalog = Catalog()
    catalog.create("hits", TableKind.PN_COUNTER)
    catalog.create("profile", TableKind.AW_LWW_MAP)
    first = plane(tmp_path, catalog)
    first.update("hits", Increment(7), timeout_s=TIMEOUT_S)
    first.update("hits", Decrement(2), timeout_s=TIMEOUT_S)
    first.update("profile", Put(b"k", b"v"), timeout_s=TIMEOUT_S)
    replica = first.replica_id
    first.stop()
    second = plane(tmp_path, catalog)
    try:
        assert second.read("hits") == (TableKind.PN_COUNTER, 5)
        assert second.read("profile") == (TableKind.AW_LWW_MAP, {b"k": b"v"})
        assert second.replica_id == replica
    finally:
        second.stop()


def test_the_clock_high_water_mark_is_stored_ahead_of_every_stamp(tmp_path):
    catalog = Catalog()
    catalog.create("name", TableKind.LWW_REGISTER)
    running = plane(tmp_path, catalog)
    running.update("name", Assign(b"x"), timeout_s=TIMEOUT_S)
    issued_ms = running.status().gossip.incarnation.wall_ms
    running.stop()
    store = CrdtStore(tmp_path / "crdt")
    try:
        assert store.load_high_water_ms() > issued_ms
    finally:
        store.close()


def test_a_table_not_in_the_catalog_is_refused_by_name(tmp_path):
    running = plane(tmp_path, Catalog())
    try:
        with pytest.raises(NotFound, match="'ghost'"):
            running.update("ghost", Increment(1), timeout_s=TIMEOUT_S)
        with pytest.raises(NotFound, match="'ghost'"):
            running.read("ghost")
    finally:
        running.stop()


def test_a_table_follows_the_catalog_in_and_out(tmp_path):
    catalog = Catalog()
    running = plane(tmp_path, catalog)
    try:
        catalog.create("online", TableKind.OR_SET)
        running.update("online", Add(b"ann"), timeout_s=TIMEOUT_S)
        with pytest.raises(FailedPrecondition):
            running.update("online", Increment(1), timeout_s=TIMEOUT_S)
        catalog.drop("online")
        running.refresh_catalog()
        with pytest.raises(NotFound):
            running.read("online")
        catalog.create("online", TableKind.G_COUNTER)
        assert running.read("online") == (TableKind.G_COUNTER, 0)
    finally:
        running.stop()
    store = CrdtStore(tmp_path / "crdt")
    try:
        assert "online" not in store.load_tables() or \
            store.load_tables()["online"].kind == TableKind.G_COUNTER
    finally:
        store.close()


def test_a_subscriber_sees_the_value_now_and_after_each_change(tmp_path):
    catalog = Catalog()
    catalog.create("hits", TableKind.G_COUNTER)
    running = plane(tmp_path, catalog)
    stop = threading.Event()
    try:
        changes = running.changes("hits", stop)
        assert next(changes) == (TableKind.G_COUNTER, 0)
        running.update("hits", Increment(3), timeout_s=TIMEOUT_S)
        assert next(changes) == (TableKind.G_COUNTER, 3)
    finally:
        stop.set()
        running.stop()
