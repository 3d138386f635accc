"""The backup file (`tandemkv snapshot save|status|restore`, docs/backup.md):
a consistent image of one node's strong plane with its revision, and the
node's CRDT store, in one file that carries its own SHA-256.

Layout: MAGIC | u32 header length | JSON header | state image | CRDT image | SHA-256.
- The header names the node, the revision, the applied index, the key
  count, when it was taken and the bytes of each image.
- The state image is a compacted LMDB copy made inside the very read
  transaction that read the revision and counted the keys, so the three
  agree: every write acknowledged at or below the revision is in it, none
  above.
- The CRDT image is a compacted copy of the CRDT environment (0 bytes
  for a node without an available plane).
- The last 32 bytes are the SHA-256 of every byte before them.

`read_backup` checks a file before anything else touches it: magic,
header, the file's size against the header's, the digest, then each
image's LMDB meta page against its length (LMDB maps an image, and a page
past the end of a short one is a SIGBUS, not an error: snapshot_check.py).
It only reads: nothing opens an image inside the backup file (etcd's
`snapshot status` once wrote to the file it inspected, which then failed
its checksum at restore).

`seed_member` turns a checked backup into one member's data dir for a new
cluster: the state image, less the member set of the cluster it came
from (the new cluster's members are the ones it is started with, as for a
cluster that never changed); a Raft snapshot file at the backup's revision
naming the new cluster's members; a Raft log holding only that snapshot's
two entries (term 1), so the new cluster's first entries follow the
revision and every member restored from the same file starts from the
same place; and the CRDT image, whose replica id the caller drops.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
import time
from pathlib import Path
from typing import Callable

from tandemkv import limits
from tandemkv.server.storage import snapshot
from tandemkv.server.storage.disk import DIR_MODE, fsync_path, open_private
from tandemkv.server.storage.lmdb_view import LmdbView
from tandemkv.server.storage.raft_log import DurableRaftLog
from tandemkv.server.storage.snapshot_check import LMDB_PAGE_BYTES_MAX, SnapshotInvalid, lmdb_bytes_needed
from tandemkv.server.storage.state_store import StateStore
from tandemkv.server.strong import members

MAGIC = b"TKVBKUP1"
_LENGTH = struct.Struct(">I")
PREFIX_BYTES = len(MAGIC) + _LENGTH.size
DIGEST_BYTES = hashlib.sha256().digest_size
# A member's data dir, as Node and the available plane lay it out.
STATE_DIR_NAME = "state"
RAFT_DIR_NAME = "raft"
CRDT_DIR_NAME = "crdt"
LMDB_FILE_NAME = "data.mdb"
# The two Raft entries a restored log holds: pysyncobj's no-op command
# (its _COMMAND_TYPE.NO_OP; tests/test_backup.py checks it), in term 1.
# They sit at and below the restored applied index, so no member applies them.
RAFT_NO_OP_COMMAND = b"\x01"
RESTORED_TERM = 1
# Bytes read or copied at a time.
_BLOCK_BYTES = 1 << 20
# Digits a count in the header may take (a u64), kept free when the header's room is set.
_COUNT_DIGITS_MAX = 20
_COUNT_FIELDS = ("revision", "applied_index", "key_count", "state_image_bytes", "crdt_image_bytes",
                 "file_bytes", "taken_unix_ms")
_OTHER_SNAPSHOT_MAGICS = (b"TKVSNAP1", b"TKVSNAP2")


class BackupInvalid(SnapshotInvalid):
    """A file that is not a whole backup; the message says what is wrong."""


@dataclasses.dataclass(frozen=True)
class BackupInfo:
    node: str
    revision: int
    applied_index: int
    key_count: int
    state_image_bytes: int
    crdt_image_bytes: int
    file_bytes: int
    taken_unix_ms: int
    header_bytes: int  # where the state image starts
    sha256: str = ""  # the file's digest (hex), as it ends with it

    @property
    def state_image_at(self) -> int:
        return self.header_bytes

    @property
    def crdt_image_at(self) -> int:
        return self.header_bytes + self.state_image_bytes

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in ("node", *_COUNT_FIELDS, "sha256")}


# -- taking a backup (the node, off its event loop) --
def write_backup(fd: int, state: StateStore, copy_crdt: Callable[[int], None] | None, node: str,
                 applied_index: Callable[[], int]) -> BackupInfo:
    """Writes a backup of `state` (and, through `copy_crdt(fd)`, the CRDT
    image) to the empty file `fd`, readable and writable, and fsyncs it.
    `applied_index()` is asked once the state's read transaction is open."""
    assert os.lseek(fd, 0, os.SEEK_CUR) == 0 and os.fstat(fd).st_size == 0, "a backup starts an empty file"
    fields: dict[str, int | str] = {"format": 1, "node": node, **dict.fromkeys(_COUNT_FIELDS, 0)}
    # The sizes are known once the images are written: room is kept for
    # them, and the header is written again, padded to that room.
    room = len(json.dumps(fields).encode()) + len(_COUNT_FIELDS) * _COUNT_DIGITS_MAX
    assert room <= limits.BACKUP_HEADER_BYTES_MAX, "a member name is far shorter"
    _write_all(fd, MAGIC + _LENGTH.pack(room) + b" " * room)
    with state.env.begin() as txn:
        revision = LmdbView(state.env, txn, state.dbs).last_applied()
        fields["revision"] = revision
        fields["key_count"] = txn.stat(state.dbs[b"kv"])["entries"]
        fields["applied_index"] = max(revision, applied_index())
        fields["taken_unix_ms"] = int(time.time() * 1000)
        state.env.copyfd(fd, compact=True, txn=txn)
    state_end = os.lseek(fd, 0, os.SEEK_CUR)
    if copy_crdt is not None:
        copy_crdt(fd)
    end = os.lseek(fd, 0, os.SEEK_CUR)
    fields["state_image_bytes"] = state_end - PREFIX_BYTES - room
    fields["crdt_image_bytes"] = end - state_end
    fields["file_bytes"] = end + DIGEST_BYTES
    os.pwrite(fd, json.dumps(fields).encode().ljust(room), PREFIX_BYTES)
    digest = _digest_of(fd, end)
    os.pwrite(fd, digest, end)
    os.fsync(fd)
    # Read back what was written, as a restore will (all but hashing it
    # again: the client and every restore do that).
    return _check(fd, "the backup just written", digest)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _digest_of(fd: int, length: int) -> bytes:
    digest, at = hashlib.sha256(), 0
    while at < length:
        block = os.pread(fd, min(_BLOCK_BYTES, length - at), at)
        if not block:
            break
        digest.update(block)
        at += len(block)
    return digest.digest()


# -- checking a backup (status and restore) --
def read_backup(path: Path) -> BackupInfo:
    """What the backup at `path` holds, once it is checked whole (magic,
    header, size, SHA-256, LMDB meta pages); BackupInvalid if it is not."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        return _check(fd, str(path))
    finally:
        os.close(fd)


def _check(fd: int, name: str, digest: bytes | None = None) -> BackupInfo:
    """The checks of `read_backup`; with `digest` (the one just computed
    over the file) the file is not hashed again."""
    size = os.fstat(fd).st_size
    prefix = os.pread(fd, PREFIX_BYTES, 0)
    if prefix[:len(MAGIC)] != MAGIC:
        if prefix[:len(MAGIC)] in _OTHER_SNAPSHOT_MAGICS:
            raise BackupInvalid(f"{name} is a node's Raft snapshot file, not a backup; take a backup "
                                "with `tandemkv snapshot save FILE`")
        raise BackupInvalid(f"{name} is not a TandemKV backup: it does not start with {MAGIC.decode()}")
    if size < PREFIX_BYTES + DIGEST_BYTES:
        raise BackupInvalid(f"{name} is {size} bytes, too short for a backup (truncated?)")
    (length,) = _LENGTH.unpack(prefix[len(MAGIC):])
    if length > limits.BACKUP_HEADER_BYTES_MAX or PREFIX_BYTES + length + DIGEST_BYTES > size:
        raise BackupInvalid(f"{name}: its header length ({length} bytes) does not fit the file of "
                            f"{size} bytes; the file is truncated or damaged")
    info = _parse_header(os.pread(fd, length, PREFIX_BYTES), PREFIX_BYTES + length, name)
    if size != info.file_bytes:
        what = "truncated" if size < info.file_bytes else "longer than it should be"
        raise BackupInvalid(f"{name} is {size} bytes but its header says {info.file_bytes}: it is {what}")
    stored = os.pread(fd, DIGEST_BYTES, size - DIGEST_BYTES)
    if (digest or _digest_of(fd, size - DIGEST_BYTES)) != stored:
        raise BackupInvalid(f"{name}: its SHA-256 does not match its contents: the file is damaged "
                            "(use another copy of the backup)")
    info = dataclasses.replace(info, sha256=stored.hex())
    for label, at, image_bytes in (("state", info.state_image_at, info.state_image_bytes),
                                   ("CRDT", info.crdt_image_at, info.crdt_image_bytes)):
        if label == "state" or image_bytes:
            _check_image(os.pread(fd, min(image_bytes, 2 * LMDB_PAGE_BYTES_MAX), at), image_bytes,
                         f"{name}: its {label} image")
    return info


def _parse_header(raw: bytes, header_bytes: int, name: str) -> BackupInfo:
    try:
        fields = json.loads(raw)
        if fields.get("format") != 1:
            raise ValueError(f"format {fields.get('format')!r} is not one this version reads")
        counts = {key: fields[key] for key in _COUNT_FIELDS}
        if not all(type(value) is int and value >= 0 for value in counts.values()):
            raise ValueError("a count is not a whole number")
        if not isinstance(fields["node"], str):
            raise ValueError("node is not a name")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise BackupInvalid(f"{name}: its header is damaged ({error})") from None
    info = BackupInfo(node=fields["node"], header_bytes=header_bytes, **counts)
    if info.file_bytes != header_bytes + info.state_image_bytes + info.crdt_image_bytes + DIGEST_BYTES:
        raise BackupInvalid(f"{name}: its header is damaged (its sizes do not add up)")
    return info


def _check_image(first_pages: bytes, image_bytes: int, what: str) -> None:
    try:
        needed = lmdb_bytes_needed(first_pages)
    except SnapshotInvalid as error:
        raise BackupInvalid(f"{what}: {error}") from None
    if image_bytes < needed:
        raise BackupInvalid(f"{what} is {image_bytes} bytes; its LMDB meta page says {needed}")


# -- restoring (one member of a new cluster) --
def seed_member(path: Path, info: BackupInfo, target: Path, raft_members: list[str],
                map_size_bytes: int) -> None:
    """Fills the empty directory `target` with one member's data dir from
    the backup at `path` (checked by `read_backup`, which gave `info`).
    `raft_members`: the Raft addresses of every member of the new cluster."""
    state_dir = target / STATE_DIR_NAME
    state_dir.mkdir(mode=DIR_MODE)
    _copy_range(path, info.state_image_at, info.state_image_bytes, state_dir / LMDB_FILE_NAME)
    if info.crdt_image_bytes:
        crdt_dir = target / CRDT_DIR_NAME
        crdt_dir.mkdir(mode=DIR_MODE)
        _copy_range(path, info.crdt_image_at, info.crdt_image_bytes, crdt_dir / LMDB_FILE_NAME)
    store = StateStore(state_dir, max(map_size_bytes, info.state_image_bytes))
    try:
        with store.read_view() as view:
            revision = view.last_applied()
        if revision != info.revision:  # read back from disk, as the node will read it
            raise BackupInvalid(f"{path}: its state image holds revision {revision}, its header says "
                                f"{info.revision}")
        with store.env.begin(write=True) as txn:
            txn.delete(members.MEMBERS_KEY, db=store.dbs[b"meta"])
        if revision >= 2:  # index 1 is Raft's own first entry; below 2 nothing was applied
            _seed_raft(target, store, revision, raft_members)
    finally:
        store.close()
    fsync_path(target)


def _seed_raft(target: Path, store: StateStore, revision: int, raft_members: list[str]) -> None:
    last = (RAFT_NO_OP_COMMAND, revision, RESTORED_TERM)
    previous = (RAFT_NO_OP_COMMAND, revision - 1, RESTORED_TERM)
    snapshot.write_snapshot(str(target / snapshot.FILE_NAME), store, last, previous, sorted(raft_members))
    raft_log = DurableRaftLog(target / RAFT_DIR_NAME, durable=True)
    try:
        raft_log.add(*previous)
        raft_log.add(*last)
        raft_log.setCurrentTerm(RESTORED_TERM, None)
        raft_log.setRaftCommitIndex(revision)
        raft_log.flush()
    finally:
        raft_log._destroy()


def _copy_range(path: Path, offset: int, length: int, target: Path) -> None:
    with open(path, "rb") as source, os.fdopen(open_private(target), "wb") as out:
        source.seek(offset)
        left = length
        while left:
            block = source.read(min(_BLOCK_BYTES, left))
            if not block:
                raise BackupInvalid(f"{path} ended inside an image (changed while restoring?)")
            out.write(block)
            left -= len(block)
        out.flush()
        os.fsync(out.fileno())
