"""The core of `client.maintenance.snapshot(path)`, shared by the blocking
(`_maintenance`) and the asyncio (`_maintenance_async`) shells: which node
a backup is taken from, what the stream's chunks must add up to, and how
the file is written. The shells only open the stream and pass its chunks
in.

A backup (Maintenance.Snapshot, docs/backup.md) comes from one node: the
leader when it is known, else the endpoints in turn; a node that refuses
before sending anything (UNAVAILABLE: no quorum, stopping, too many
backups at once) hands over to the next. A stream that breaks after its
first byte is not resumed: the call fails, and a retry starts afresh.

The file: chunks go to `PATH.part` (mode 0600) while their SHA-256 is
computed; the last chunk names the digest, which is also the file's last
32 bytes. Only a stream whose size and digest both match is fsynced and
renamed to PATH (and the rename made durable); anything else removes the
part file and raises `Unavailable` (retry), so PATH is always a whole
backup or untouched. (etcd users met backups "missing hash" at restore
time, written by clients that stopped reading before the last message.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import grpc

from tandemkv import errors
from tandemkv.client._retry import error_from_rpc
from tandemkv.client._routing import Router
from tandemkv.v1 import maintenance_pb2

# Default deadline of a whole backup download, in seconds.
SNAPSHOT_TIMEOUT_S = 3600.0
PART_SUFFIX = ".part"
_DIGEST_BYTES = hashlib.sha256().digest_size
_MAGIC = b"TKVBKUP1"


@dataclasses.dataclass(frozen=True)
class SnapshotInfo:
    """A backup written by `snapshot`: where, from which node, and what it
    holds (its `revision`: every write acknowledged at or below it is in
    the backup, none above)."""

    path: Path
    endpoint: str
    node: str
    revision: int
    applied_index: int
    key_count: int
    state_image_bytes: int
    crdt_image_bytes: int
    file_bytes: int
    taken_unix_ms: int
    sha256: str


def request() -> maintenance_pb2.SnapshotRequest:
    return maintenance_pb2.SnapshotRequest()


def targets(router: Router, endpoint: str | None) -> list[str]:
    """The nodes to ask, in order: `endpoint` alone when given, else the
    leader (if known) and then every other endpoint."""
    if endpoint:
        return [endpoint]
    leader = router.leader
    return ([leader] if leader else []) + [e for e in router.endpoints if e != leader]


def attempt_failed(endpoint: str, rpc_error: grpc.RpcError, received_bytes: int, last: bool) -> errors.TandemKVError:
    """The error of an attempt that failed on `endpoint`. Returns it when
    the next endpoint may be tried (UNAVAILABLE before any byte arrived);
    raises it otherwise."""
    error = error_from_rpc(rpc_error, b"")
    if isinstance(error, errors.OutcomeUnknown):  # a backup changes nothing: a lost stream is only lost
        error = errors.Unavailable(f"{endpoint}: the backup stream broke ({rpc_error.details() or 'lost'}); "
                                   "nothing was written: retry")
    elif isinstance(error, errors.Unavailable):
        error = errors.Unavailable(f"{endpoint}: {error.message}")
    if last or received_bytes or not isinstance(error, errors.Unavailable):
        raise error
    return error


class SnapshotDownload:
    """One backup being written to `path` from `endpoint`: `receive` each
    chunk in order, then `finish` (checks, fsyncs, renames) or `abandon`
    (removes the part file). `finish` and `abandon` block on the disk."""

    def __init__(self, path: str | os.PathLike, endpoint: str):
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + PART_SUFFIX)
        self.endpoint = endpoint
        fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._tail = b""  # the last bytes so far: the file's digest once it is whole
        self.info: maintenance_pb2.SnapshotInfo | None = None
        self.digest: bytes | None = None
        self.received_bytes = 0

    def receive(self, chunk: maintenance_pb2.SnapshotChunk) -> None:
        if self.digest is not None:
            raise self._broken("data came after the chunk that closed the backup")
        if self.info is None:
            if not chunk.HasField("info"):
                raise self._broken("the stream did not open with what the backup holds")
            self.info = chunk.info
            if not chunk.data.startswith(_MAGIC):
                raise self._broken("the stream does not start with a backup")
        data = self._tail + chunk.data
        self._hash.update(data[:-_DIGEST_BYTES])
        self._tail = data[-_DIGEST_BYTES:]
        self._file.write(chunk.data)
        self.received_bytes += len(chunk.data)
        if self.received_bytes > self.info.file_bytes:
            raise self._broken(f"the stream ran past the {self.info.file_bytes} bytes it announced")
        if chunk.sha256:
            self.digest = chunk.sha256

    def finish(self) -> SnapshotInfo:
        """Checks the stream was a whole backup, then makes PATH that file."""
        info = self.info
        if info is None or self.digest is None:
            raise self._broken("the stream ended before the backup's last chunk")
        if self.received_bytes != info.file_bytes:
            raise self._broken(f"{self.received_bytes} bytes arrived of the {info.file_bytes} announced")
        if self._tail != self.digest or self._hash.digest() != self.digest:
            raise self._broken("its SHA-256 does not match: the backup was damaged on its way")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.part, self.path)
        _fsync_directory(self.path.parent)
        return SnapshotInfo(self.path, self.endpoint, info.node, info.revision, info.applied_index, info.key_count,
                            info.state_image_bytes, info.crdt_image_bytes, info.file_bytes, info.taken_unix_ms,
                            self.digest.hex())

    def abandon(self) -> None:
        """Removes the part file (PATH is left as it was)."""
        self._file.close()
        try:
            os.unlink(self.part)
        except FileNotFoundError:
            pass

    def _broken(self, what: str) -> errors.Unavailable:
        return errors.Unavailable(f"{self.endpoint}: {what}; nothing was written to {self.path}: retry")


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
