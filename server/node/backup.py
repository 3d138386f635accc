"""The backup half of the `Node` API: `node.write_backup(fd)` writes a
backup of this node (the file format is server/storage/backup.py) for the
Maintenance.Snapshot call and `tandemkv snapshot save`.

A backup is linearizable: it first waits for a read barrier, as a
linearizable read does, so every write acknowledged anywhere in the
cluster before the call began is in it. It then copies the strong plane
inside one LMDB read transaction (the revision it records is that
transaction's), and the CRDT store as the available plane has committed it.

Blocking (a copy of the whole state to the file): call it off the event
loop. The copy holds one LMDB reader for its duration, which keeps the
pages it reads from being reused, so it copies to a local file rather than
to a client that may read slowly.

A node that stops waits for the copies under way before it stops its
planes and closes LMDB (`BackupCopies`): a copy cannot be interrupted
safely inside LMDB, and closing the environment under an open read
transaction is undefined. A backup asked for once the node is stopping is
refused with Unavailable.
"""

from __future__ import annotations

import concurrent.futures
import logging
import tempfile
import threading
import time
from typing import BinaryIO

import lmdb

from tandemkv.errors import ResourceExhausted, Unavailable
from tandemkv.server.node.deadlines import deadline_of
from tandemkv.server.storage import backup
from tandemkv.server.storage.backup import BackupInfo

__all__ = ["BackupCopies", "BackupInfo", "NodeBackup"]

log = logging.getLogger(__name__)


class BackupCopies:
    """The backup copies under way on a node, so that `stop` can wait for
    them; once `close_and_wait` has begun, no copy starts."""

    def __init__(self, node_name: str) -> None:
        self._node_name = node_name
        self._changed = threading.Condition()
        self._running = 0
        self._closed = False

    def begin(self) -> None:
        with self._changed:
            if self._closed:
                raise Unavailable(f"node {self._node_name} is stopping; take the backup from "
                                  "another node, or from this one once it is back")
            self._running += 1

    def end(self) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify_all()

    def close_and_wait(self) -> None:
        """Refuses new copies and returns once none is running. There is no
        bound: a copy's length is the store's size over the disk's speed
        (about 6.5 s for 10^6 keys), and abandoning one would close LMDB
        under it."""
        with self._changed:
            self._closed = True
            if self._running:
                log.info("node %s: waiting for %d backup cop%s to finish before stopping",
                         self._node_name, self._running, "y" if self._running == 1 else "ies")
            self._changed.wait_for(lambda: self._running == 0)


class NodeBackup:
    """Mixin of `Node`: `take_backup` and `write_backup`. Needs the node's
    state, replica, read barrier and available plane."""

    def take_backup(self, *, timeout_s: float | None = None) -> tuple[BinaryIO, BackupInfo]:
        """A backup of this node (`write_backup`) in a temporary file of
        its data dir, at its start; the caller closes it. The file has no
        name (unlinked at once), so nothing is left behind whatever
        happens; it takes the data dir's disk space while it is open."""
        backup_file = tempfile.TemporaryFile(dir=self.config.data_dir)
        try:
            info = self.write_backup(backup_file.fileno(), timeout_s=timeout_s)
        except (OSError, lmdb.Error) as error:
            backup_file.close()
            raise ResourceExhausted(f"node {self.config.name}: writing a backup to "
                                    f"{self.config.data_dir} failed ({error}); is its disk full?") from None
        except BaseException:
            backup_file.close()
            raise
        backup_file.seek(0)
        return backup_file, info

    def write_backup(self, fd: int, *, timeout_s: float | None = None) -> BackupInfo:
        """Writes a backup of this node to the empty file `fd` (open for
        reading and writing) once a read barrier confirms this node has
        every write acknowledged before the call; returns what it holds.
        Raises Unavailable when the barrier is not confirmed in time
        (no quorum): a backup of a node cut off from the cluster could
        miss acknowledged writes."""
        deadline = deadline_of(timeout_s)
        barrier = self._require_barrier().join()
        try:
            outcome = barrier.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            raise Unavailable(f"node {self.config.name}: no read barrier confirmed within the "
                              "deadline (no quorum?), so a backup here could miss acknowledged "
                              "writes; retry, or ask another node") from None
        self._check_barrier(outcome)
        self._backup_copies.begin()
        try:
            plane = self.available
            copy_crdt = plane.write_store_image if plane is not None else None
            return backup.write_backup(fd, self._state, copy_crdt, self.config.name,
                                       lambda: self._require_replica().status().applied_index)
        finally:
            self._backup_copies.end()
