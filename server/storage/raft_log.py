"""The Raft log and Raft's persistent state (current term, vote, commit
index) in their own LMDB environment, with group commit.

pysyncobj's own journal never fsyncs. This one keeps the same interface (the
method names are pysyncobj's, camelCase) but buffers every change in memory.
`request_flush()` hands the buffer to a flusher thread and returns a
sequence number; the flusher writes everything handed to it since its last
write in one fsynced LMDB transaction (group commit) and then reports that
sequence number durable. The tick thread never waits for the disk unless it
must: the Raft adapter holds back the messages that promise durability
(acknowledgements, votes) until their sequence number is durable, and waits
before applying entries that are not.

The whole log is also held in memory (as pysyncobj's file journal does) as
a list of (command, index, term); snapshots bound its length.
"""

from __future__ import annotations

import json
import logging
import queue
import struct
import threading
import time
from pathlib import Path
from typing import Callable

import lmdb

from tandemkv import limits
from tandemkv.server.storage.disk import DIR_MODE, fsync_path

log = logging.getLogger(__name__)

_INDEX = struct.Struct(">Q")
_TERM = struct.Struct(">Q")
_META_KEY = b"raft_meta"

Entry = tuple[bytes, int, int]  # (command, index, term), pysyncobj's shape


class DurableRaftLog:
    """pysyncobj's Journal interface over LMDB, fsynced in batches."""

    def __init__(self, path: Path, durable: bool):
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self._path = path
        self._durable = durable
        self._env = lmdb.open(str(path), map_size=limits.RAFT_LOG_MAP_SIZE_BYTES, max_dbs=4, mode=DIR_MODE,
                              sync=durable, metasync=durable)
        with self._env.begin(write=True) as txn:
            self._entries_db = self._env.open_db(b"entries", txn=txn)
            self._meta_db = self._env.open_db(b"meta", txn=txn)
        self._entries: list[Entry] = []
        self._meta = {"term": 0, "voted_for": None, "commit_index": 1}
        self._pending: list[tuple] = []
        self._meta_dirty = False
        self._load()
        self._submitted_seq = 0
        self._durable_seq = 0
        # The last index of the log when the newest durable batch was handed
        # over, and truncations whose batches are not durable yet.
        self._durable_last_index = self.last_index()
        self._truncations: list[tuple[int, int]] = []  # (seq, first dropped index)
        self._durable = threading.Condition()
        self._batches: queue.SimpleQueue = queue.SimpleQueue()
        self._on_durable: Callable[[], None] = lambda: None
        self._on_failure: Callable[[BaseException], None] = _raise
        # Told the seconds of each durable write (the fsync included) on the
        # flusher thread: the node's metrics; None: not told.
        self.on_flushed: Callable[[float], None] | None = None
        self._flusher = threading.Thread(target=self._flush_loop, name="raft-log-flusher",
                                         daemon=True)
        self._flusher.start()

    def set_callbacks(self, on_durable: Callable[[], None],
                      on_failure: Callable[[BaseException], None]) -> None:
        """on_durable runs on the flusher thread after each write (keep it
        short: a wake-up); on_failure gets the error when a write fails."""
        self._on_durable = on_durable
        self._on_failure = on_failure

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
        self._truncations.append((self._submitted_seq + 1, 0))

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 (pysyncobj's name)
        if entryFrom >= len(self._entries):
            return
        first_dropped = self._entries[entryFrom][1]
        del self._entries[entryFrom:]
        self._pending.append(("drop_from", first_dropped))
        self._truncations.append((self._submitted_seq + 1, first_dropped))

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
        self._batches.put(None)
        self._flusher.join()
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
        # Only the commit index may be waiting: hand it over, don't wait.
        if self._meta_dirty and not self._pending:
            self._pending.append(("meta",))
        self.request_flush()

    # -- durability --
    @property
    def dirty(self) -> bool:
        return bool(self._pending)

    @property
    def durable_seq(self) -> int:
        return self._durable_seq

    def request_flush(self) -> int:
        """Hands every buffered change to the flusher; returns the sequence
        number that is durable once all of them (and all before) are."""
        if self._pending:
            pending, self._pending = self._pending, []
            meta = json.dumps(self._meta).encode() if self._meta_dirty else None
            self._meta_dirty = False
            self._submitted_seq += 1
            self._batches.put((self._submitted_seq, pending, meta, self.last_index()))
        return self._submitted_seq

    def durable_through(self) -> int:
        """Every entry at or below this index is on disk as the log holds it
        now (tick thread)."""
        durable_seq = self._durable_seq
        self._truncations = [t for t in self._truncations if t[0] > durable_seq]
        through = self._durable_last_index
        for _, first_dropped in self._truncations:
            through = min(through, first_dropped - 1)
        return through

    def wait_durable_through(self, index: int) -> None:
        """Hands buffered changes to the flusher; waits only if the entries
        up to `index` are not on disk yet."""
        seq = self.request_flush()
        if self.durable_through() < index:
            self.wait_durable(seq)

    def wait_durable(self, seq: int) -> None:
        with self._durable:
            while self._durable_seq < seq:
                self._durable.wait()

    def flush(self) -> None:
        """Makes every buffered change durable before returning."""
        self.wait_durable(self.request_flush())

    def _flush_loop(self) -> None:
        while True:
            batches = [self._batches.get()]
            while not self._batches.empty():  # group commit: take all waiting
                batches.append(self._batches.get())
            stop = batches[-1] is None
            batches = [b for b in batches if b is not None]
            if batches:
                started = time.monotonic()
                try:
                    self._write_batches(batches)
                except BaseException as error:  # noqa: BLE001 (reported, then fatal)
                    self._on_failure(error)
                    return
                if self.on_flushed is not None:
                    self.on_flushed(time.monotonic() - started)
                with self._durable:
                    self._durable_last_index = batches[-1][3]
                    self._durable_seq = batches[-1][0]
                    self._durable.notify_all()
                self._on_durable()
            if stop:
                return

    def _write_batches(self, batches: list) -> None:
        with self._env.begin(write=True) as txn:
            for _, changes, meta, _ in batches:
                for change in changes:
                    self._write_change(txn, change)
                if meta is not None:
                    txn.put(_META_KEY, meta, db=self._meta_db)

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


def _raise(error: BaseException) -> None:
    raise error
