"""The strong plane's state in one LMDB environment: apply batches, reads,
snapshot images, and the logical size count (see lmdb_view.py for the
layout and the view the state machine writes through).

Writes come from one thread, the Raft tick thread, in batches: every entry
that one tick applies shares one write transaction, committed before any of
those entries is acknowledged. Commits do not fsync: the Raft log (fsynced)
makes acknowledged writes durable and replay rebuilds this state; see
crash_marker.py for the machine-crash case. Readers use short read
transactions from any thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
import tempfile
from pathlib import Path
from typing import Iterator

import lmdb

from tandemkv import limits
from tandemkv.server.storage.lmdb_topics import TOPIC_DB_NAMES
from tandemkv.server.storage.lmdb_view import HISTORY_BYTES_KEY, SPACE_USED_KEY, LmdbView, SpaceLedger, count_space
from tandemkv.server.storage.snapshot_check import LMDB_PAGE_BYTES_MAX, SnapshotInvalid, lmdb_bytes_needed

log = logging.getLogger(__name__)

STATE_DB_NAMES = (b"kv", b"counters", b"dedup", b"dedup_by_ts", b"meta", b"leases",
                  b"lease_deadlines", b"lease_items", b"claims", b"events", *TOPIC_DB_NAMES)
_U64 = struct.Struct(">Q")
# Bytes read at a time when copying a snapshot's image out of its file.
_COPY_READ_BYTES = 1 << 20


class StateStore:
    """Owns the state environment: batches of applies, reads, snapshots."""

    def __init__(self, path: Path, map_size_bytes: int):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self.env = lmdb.open(
            str(path),
            mode=0o700,  # the directory's if LMDB creates it; its files get it less x: 0600
            map_size=map_size_bytes,
            max_dbs=len(STATE_DB_NAMES) + 4,
            max_readers=limits.STATE_READERS_MAX,
            sync=False,
            metasync=False,
        )
        with self.env.begin(write=True) as txn:
            self.dbs = {name: self.env.open_db(name, txn=txn) for name in STATE_DB_NAMES}
        self._batch_txn: lmdb.Transaction | None = None
        self._ledger: SpaceLedger | None = None
        self._count_space_if_uncounted()

    def _count_space_if_uncounted(self) -> None:
        """A store written before sizes were counted gets them counted once,
        by the same formulas the views use, so its quota decisions match a
        member's that counted all along."""
        with self.env.begin(write=True) as txn:
            if txn.get(SPACE_USED_KEY, db=self.dbs[b"meta"]) is not None:
                return
            used, history = count_space(txn, self.dbs)
            txn.put(SPACE_USED_KEY, _U64.pack(used), db=self.dbs[b"meta"])
            txn.put(HISTORY_BYTES_KEY, _U64.pack(history), db=self.dbs[b"meta"])
        if used:
            log.info("counted the state's logical size: %d bytes (history %d)", used, history)

    # -- writes (tick thread only) --
    def begin_batch(self) -> None:
        assert self._batch_txn is None, "one apply batch at a time"
        self._batch_txn = txn = self.env.begin(write=True)
        meta = self.dbs[b"meta"]
        self._ledger = SpaceLedger(*(_U64.unpack(txn.get(key, db=meta) or bytes(8))[0]
                                     for key in (SPACE_USED_KEY, HISTORY_BYTES_KEY)))

    def batch_view(self) -> LmdbView:
        assert self._batch_txn is not None, "apply runs inside a batch"
        return LmdbView(self.env, self._batch_txn, self.dbs, self._ledger)

    def commit_batch(self) -> None:
        txn, self._batch_txn = self._batch_txn, None
        ledger, self._ledger = self._ledger, None
        if txn is not None:
            assert ledger.used >= ledger.history >= 0, "logical sizes never go negative"
            txn.put(SPACE_USED_KEY, _U64.pack(ledger.used), db=self.dbs[b"meta"])
            txn.put(HISTORY_BYTES_KEY, _U64.pack(ledger.history), db=self.dbs[b"meta"])
            txn.commit()

    def space_used(self) -> int:
        with self.read_view() as view:
            return view.space_used()

    # -- reads (any thread) --
    @contextlib.contextmanager
    def read_view(self) -> Iterator[LmdbView]:
        with self.env.begin(write=False) as txn:
            yield LmdbView(self.env, txn, self.dbs)

    def last_applied(self) -> int:
        with self.read_view() as view:
            return view.last_applied()

    def fill_ratio(self) -> float:
        info, stat = self.env.info(), self.env.stat()
        return (info["last_pgno"] + 1) * stat["psize"] / info["map_size"]

    # -- snapshots (tick thread) --
    def write_image(self, fd: int) -> None:
        """Appends a consistent, compacted copy of the environment to fd."""
        self.env.copyfd(fd, compact=True)

    def restore_image(self, source_path: Path, offset: int, image_sha256: str | None = None) -> None:
        """Replaces every state database with the image stored in
        source_path from offset on, in one write transaction: readers see
        the old state or the new, never a mix. The image is checked before
        LMDB maps it (SnapshotInvalid, state untouched): against
        `image_sha256` if given, and against the size its meta page gives,
        since LMDB reading past the end of a short file is a SIGBUS."""
        with tempfile.TemporaryDirectory(dir=self.path.parent) as tmp:
            image_path = os.path.join(tmp, "data.mdb")
            with open(source_path, "rb") as source, open(image_path, "wb") as image_file:
                source.seek(offset)
                first_pages, digest = _copy_hashing(source, image_file)
            image_bytes = os.path.getsize(image_path)
            if image_sha256 is not None and digest != image_sha256:
                raise SnapshotInvalid("its image's SHA-256 differs from the one its header declares")
            needed = lmdb_bytes_needed(first_pages)
            if image_bytes < needed:
                raise SnapshotInvalid(f"its LMDB image is {image_bytes} bytes; its meta page says {needed}")
            image = lmdb.open(tmp, readonly=True, max_dbs=len(STATE_DB_NAMES) + 4, lock=False)
            try:
                self._copy_from(image)
            finally:
                image.close()
        self._count_space_if_uncounted()

    def _copy_from(self, image: lmdb.Environment) -> None:
        with image.begin() as source, self.env.begin(write=True) as target:
            for name, db in self.dbs.items():
                target.drop(db, delete=False)
                try:
                    source_db = image.open_db(name, txn=source, create=False)
                except lmdb.NotFoundError:  # an image from before this database existed: empty
                    continue
                cursor = target.cursor(db=db)
                cursor.putmulti(source.cursor(db=source_db).iternext(), append=True)

    def sync(self) -> None:
        self.env.sync(True)

    def close(self) -> None:
        assert self._batch_txn is None, "close after the tick thread stopped"
        self.env.sync(True)
        self.env.close()


def _copy_hashing(source, target) -> tuple[bytes, str]:
    """Copies source to target; returns the first two LMDB pages' worth of
    bytes (for the meta check) and the SHA-256 of all of it."""
    digest, first_pages = hashlib.sha256(), b""
    while block := source.read(_COPY_READ_BYTES):
        if len(first_pages) < 2 * LMDB_PAGE_BYTES_MAX:
            first_pages += block[: 2 * LMDB_PAGE_BYTES_MAX - len(first_pages)]
        digest.update(block)
        target.write(block)
    return first_pages, digest.hexdigest()
