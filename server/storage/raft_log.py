"""The Raft log and Raft's persistent state (current term, vote, commit
index) in their own LMDB environment, with group commit.

pysyncobj's own journal never fsyncs. This one keeps the same interface (the
method names are pysyncobj's, camelCase) but buffers every change in memory
and writes the buffer in one fsynced LMDB transaction at `flush()`. The Raft
adapter calls `flush()` before any message leaves the node and before any
entry is applied, so an entry is on disk before it is acknowledged to a
leader, counted towards a commit, or acknowledged to a client; one fsync
covers every entry of a batch.

The whole log is also held in memory (as pysyncobj's file journal does) as
a list of (command, index, term); snapshots bound its length.
"""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path

import lmdb

from .disk import fsync_path

log = logging.getLogger(__name__)

_INDEX = struct.Struct(">Q")
_TERM = struct.Struct(">Q")
_META_KEY = b"raft_meta"
# The log's environment holds only entries and meta; big enough for the
# entries between two snapshots at the largest command size.
LOG_MAP_SIZE_BYTES = 8 << 30

Entry = tuple[bytes, int, int]  # (command, index, term), pysyncobj's shape


class DurableRaftLog:
    """pysyncobj's Journal interface over LMDB, fsynced in batches."""

    def __init__(self, path: Path, durable: bool):
        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._durable = durable
        self._env = lmdb.open(str(path), map_size=LOG_MAP_SIZE_BYTES, max_dbs=4,
                              sync=durable, metasync=durable)
        with self._env.begin(write=True) as txn:
            self._entries_db = self._env.open_db(b"entries", txn=txn)
            self._meta_db = self._env.open_db(b"meta", txn=txn)
        self._entries: list[Entry] = []
        self._meta = {"term": 0, "voted_for": None, "commit_index": 1}
        self._pending: list[tuple] = []
        self._meta_dirty = False
        self._load()

    def _load(self) -> None:
        with self._env.begin() as txn:
            raw_meta = txn.get(_META_KEY, db=self._meta_db)
            if raw_meta is not None:
                self._meta.update(json.loads(raw_meta))
            for key, value in txn.cursor(db=self._entries_db):
                index = _INDEX.unpack(key)[0]
                term = _TERM.unpack_from(value)[0]
                self._entries.append((bytes(value[_TERM.size:]), index, term))
        for previous, entry in zip(self._entries, self._entries[1:]):
            if entry[1] != previous[1] + 1:
                raise RuntimeError(
                    f"raft log in {self._path} has a gap after index {previous[1]}; "
                    "wipe this node's data dir to rebuild it from the cluster"
                )

    # -- pysyncobj's Journal interface --
    def add(self, command: bytes, idx: int, term: int) -> None:
        if self._entries:
            assert idx == self._entries[-1][1] + 1, "raft log indexes are contiguous"
        self._entries.append((command, idx, term))
        self._pending.append(("put", idx, term, command))

    def clear(self) -> None:
        self._entries = []
        self._pending.append(("clear",))

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 (pysyncobj's name)
        if entryFrom >= len(self._entries):
            return
        first_dropped = self._entries[entryFrom][1]
        del self._entries[entryFrom:]
        self._pending.append(("drop_from", first_dropped))

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802
        if entryTo <= 0 or not self._entries:
            return
        kept_from = self._entries[entryTo][1] if entryTo < len(self._entries) else (
            self._entries[-1][1] + 1)
        del self._entries[:entryTo]
        # The snapshot file that replaces these entries was just renamed into
        # place; make the rename durable before the entries can disappear.
        fsync_path(self._path.parent)
        self._pending.append(("drop_below", kept_from))

    def __getitem__(self, item):
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def _destroy(self) -> None:
        self.flush()
        self._env.close()

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802
        # Not worth an fsync of its own: a stale commit index only means a
        # restarted node replays less before the leader tells it more.
        if raftCommitIndex != self._meta["commit_index"]:
            self._meta["commit_index"] = raftCommitIndex
            self._meta_dirty = True

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return self._meta["commit_index"]

    def setCurrentTerm(self, term: int, votedForNodeId) -> None:  # noqa: N802
        self._meta["term"] = term
        self._meta["voted_for"] = votedForNodeId
        self._meta_dirty = True
        # Durable before any vote request or grant leaves: flush() runs
        # before every send.
        self._pending.append(("meta",))

    def getCurrentTerm(self) -> int:  # noqa: N802
        return self._meta["term"]

    def getVotedForNodeId(self):  # noqa: N802
        return self._meta["voted_for"]

    def onOneSecondTimer(self) -> None:  # noqa: N802
        if self._meta_dirty and not self._pending:
            self._pending.append(("meta",))
        self.flush()

    # -- durability --
    @property
    def dirty(self) -> bool:
        return bool(self._pending)

    def flush(self) -> None:
        """Writes every buffered change in one transaction (fsynced when
        durable). A failure here is fatal: the caller crashes the node."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self._env.begin(write=True) as txn:
            for change in pending:
                self._write_change(txn, change)
            if self._meta_dirty:
                txn.put(_META_KEY, json.dumps(self._meta).encode(), db=self._meta_db)
                self._meta_dirty = False

    def _write_change(self, txn: lmdb.Transaction, change: tuple) -> None:
        kind = change[0]
        if kind == "put":
            _, idx, term, command = change
            txn.put(_INDEX.pack(idx), _TERM.pack(term) + command, db=self._entries_db)
        elif kind == "clear":
            txn.drop(self._entries_db, delete=False)
        elif kind == "drop_from":
            self._drop_keys(txn, start=change[1], end=None)
        elif kind == "drop_below":
            self._drop_keys(txn, start=0, end=change[1])

    def _drop_keys(self, txn: lmdb.Transaction, start: int, end: int | None) -> None:
        cursor = txn.cursor(db=self._entries_db)
        if not cursor.set_range(_INDEX.pack(start)):
            return
        while True:
            key = cursor.key()
            if not key or (end is not None and _INDEX.unpack(key)[0] >= end):
                return
            if not cursor.delete():
                return

    def trim_head_to(self, entry: Entry) -> bool:
        """Drops entries before `entry` if the log holds it; used when a
        snapshot was published but the crash came before the log's matching
        compaction reached disk. Returns whether the log now starts there."""
        for position, held in enumerate(self._entries):
            if held[1] == entry[1]:
                if held != tuple(entry):
                    return False
                if position:
                    self.deleteEntriesTo(position)
                    self.flush()
                return True
        return False

    def first_index(self) -> int:
        return self._entries[0][1] if self._entries else 0

    def last_index(self) -> int:
        return self._entries[-1][1] if self._entries else 0

