"""The available plane's LMDB environment (`<data_dir>/crdt/`): each
table's encoded state, the hybrid clock's high-water mark and the replica
id this node's dots are issued under.

Sub-databases: `tables` (single-value tables: name -> `[kind,
created_revision, encoded state]` in the canonical encoding), `keyed`
(keyed tables: name -> `[kind, created_revision]`), `keys` (each key of a
keyed table: `len(name) (1 byte) | name | key` -> the key's encoded
state, so a million keys are a million small records, written as they
change, never one blob) and `meta` (`high_water_ms`, `replica_id`).
Every write is one transaction; with `durable=True` LMDB fsyncs it before
the commit returns, so `save_tables` and `LmdbHighWaterMark.save` are
durable on return. Writers: the plane's own thread (tables, batched) and
whichever thread issues a hybrid timestamp past the reservation (the mark,
about once per HLC_RESERVE_AHEAD_MS); LMDB serializes the two.

This module stores bytes; it never decodes a table or knows gossip.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import lmdb

from tandemkv import limits
from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.crdt.kinds import TableKind

# Random bytes that make a fresh replica id unique across lost data dirs.
REPLICA_SUFFIX_BYTES = 6

_HIGH_WATER = b"high_water_ms"
_REPLICA_ID = b"replica_id"
_U64 = struct.Struct(">Q")


class StoredTable(NamedTuple):
    kind: TableKind
    created_revision: int
    encoded: bytes


class KeyedTableInfo(NamedTuple):
    kind: TableKind
    created_revision: int


class CrdtStore:
    """The plane's LMDB environment. Thread-safe (LMDB locks writers)."""

    def __init__(self, path: Path, *, durable: bool = True,
                 map_size_bytes: int = limits.CRDT_MAP_SIZE_BYTES) -> None:
        Path(path).mkdir(mode=0o700, parents=True, exist_ok=True)
        self._env = lmdb.open(str(path), map_size=map_size_bytes, max_dbs=4, mode=0o700,
                              max_readers=limits.CRDT_READERS_MAX, sync=durable, metasync=durable)
        with self._env.begin(write=True) as txn:
            self._tables_db = self._env.open_db(b"tables", txn=txn)
            self._meta_db = self._env.open_db(b"meta", txn=txn)
            self._keyed_db = self._env.open_db(b"keyed", txn=txn)
            self._keys_db = self._env.open_db(b"keys", txn=txn)

    def close(self) -> None:
        self._env.close()

    def write_image(self, fd: int) -> None:
        """Appends a compacted copy of the environment, as committed, to fd
        (a backup: server/storage/backup.py)."""
        self._env.copyfd(fd, compact=True)

    def forget_replica_id(self) -> None:
        """Drops the stored replica id, so that the node that opens this
        store next issues its dots under a new one: every member restored
        from one backup holds the same store, and no two may share an id."""
        with self._env.begin(write=True, db=self._meta_db) as txn:
            txn.delete(_REPLICA_ID)

    # -- tables --
    def load_tables(self) -> dict[str, StoredTable]:
        with self._env.begin(db=self._tables_db) as txn:
            return {key.decode(): _decode_table(raw) for key, raw in txn.cursor()}

    def save_tables(self, tables: dict[str, StoredTable | None]) -> None:
        """Writes (or, for None, deletes) tables in one transaction; durable
        on return when the store is."""
        with self._env.begin(write=True, db=self._tables_db) as txn:
            for name, table in tables.items():
                key = name.encode()
                if table is None:
                    txn.delete(key)
                else:
                    raw = canonical.encode([table.kind.value, table.created_revision, table.encoded])
                    assert _decode_table(raw) == table, "a table reads back as written"
                    txn.put(key, raw)

    # -- keyed tables --
    def load_keyed_tables(self) -> dict[str, KeyedTableInfo]:
        with self._env.begin(db=self._keyed_db) as txn:
            return {name.decode(): _decode_keyed(raw) for name, raw in txn.cursor()}

    def load_keys(self, table: str) -> Iterator[tuple[bytes, bytes]]:
        """(key, encoded state) of every stored key of `table`, in key order,
        read in one transaction."""
        prefix = _key_prefix(table)
        with self._env.begin(db=self._keys_db, buffers=False) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return
            for stored_key, data in cursor:
                if not stored_key.startswith(prefix):
                    return
                yield stored_key[len(prefix):], data

    def save_keyed(self, tables: dict[str, KeyedTableInfo | None],
                   keys: list[tuple[str, bytes, bytes]], dropped: Iterable[str] = ()) -> None:
        """In one transaction: deletes the `dropped` keyed tables and every
        key of theirs, then writes keyed tables' catalog entries (None:
        drops the table and its keys too) and `keys` (table, key, encoded
        state). A table dropped and re-created since the last save is in
        both `dropped` and `tables`, so it starts empty. Durable on return
        when the store is."""
        with self._env.begin(write=True) as txn:
            for name in dropped:
                txn.delete(name.encode(), db=self._keyed_db)
                self._delete_keys(txn, name)
            for name, info in tables.items():
                if info is None:
                    txn.delete(name.encode(), db=self._keyed_db)
                    self._delete_keys(txn, name)
                else:
                    txn.put(name.encode(), canonical.encode([info.kind.value, info.created_revision]),
                            db=self._keyed_db)
            for name, key, data in keys:
                txn.put(_key_prefix(name) + key, data, db=self._keys_db)

    def _delete_keys(self, txn: lmdb.Transaction, table: str) -> None:
        prefix = _key_prefix(table)
        cursor = txn.cursor(db=self._keys_db)
        if not cursor.set_range(prefix):
            return
        while cursor.key().startswith(prefix):
            if not cursor.delete():
                return

    # -- meta --
    def replica_id(self, node_name: str) -> str:
        """The replica id stored here, or a new one (`<node>.<random hex>`)
        stored first: a node whose data dir was lost comes back under a new
        id and never reissues the dots of its earlier life."""
        with self._env.begin(write=True, db=self._meta_db) as txn:
            raw = txn.get(_REPLICA_ID)
            if raw is None:
                raw = f"{node_name}.{os.urandom(REPLICA_SUFFIX_BYTES).hex()}".encode()
                txn.put(_REPLICA_ID, raw)
            return raw.decode()

    def load_high_water_ms(self) -> int:
        with self._env.begin(db=self._meta_db) as txn:
            raw = txn.get(_HIGH_WATER)
        return 0 if raw is None else _U64.unpack(raw)[0]

    def save_high_water_ms(self, wall_ms: int) -> None:
        with self._env.begin(write=True, db=self._meta_db) as txn:
            raw = txn.get(_HIGH_WATER)
            assert raw is None or _U64.unpack(raw)[0] <= wall_ms, "the mark never moves back"
            txn.put(_HIGH_WATER, _U64.pack(wall_ms))


class LmdbHighWaterMark:
    """The clock's `HighWaterMark` in the CRDT store; `save` is durable on
    return (one fsynced transaction)."""

    def __init__(self, store: CrdtStore) -> None:
        self._store = store
        self.saves = 0

    def load(self) -> int:
        return self._store.load_high_water_ms()

    def save(self, wall_ms: int) -> None:
        self._store.save_high_water_ms(wall_ms)
        self.saves += 1


def _decode_table(raw: bytes) -> StoredTable:
    kind, created_revision, encoded = canonical.decode(raw)
    assert type(created_revision) is int and isinstance(encoded, bytes)
    return StoredTable(TableKind(kind), created_revision, encoded)


def _decode_keyed(raw: bytes) -> KeyedTableInfo:
    kind, created_revision = canonical.decode(raw)
    assert type(created_revision) is int
    return KeyedTableInfo(TableKind(kind), created_revision)


def _key_prefix(table: str) -> bytes:
    """Where a keyed table's keys start in `keys`: the name's length first,
    so no table's keys run into another's whatever bytes names hold."""
    name = table.encode()
    assert len(name) <= limits.CRDT_TABLE_NAME_BYTES_MAX < 256
    return bytes([len(name)]) + name
