"""The snapshot file: a small header naming the Raft entries it covers and
the members, then a compacted copy of the state environment.

pysyncobj writes it on log compaction (through `write_snapshot`), ships its
bytes to a follower that lags behind the log, and reads it back on restart
or install (through `read_snapshot`). Installing replaces the state only when
the snapshot is ahead of it; otherwise the log replay that follows skips
what the state already holds.

Layout: MAGIC | u32 header length | JSON header | LMDB image. The header
declares the image's length and SHA-256 (TKVSNAP2), so a snapshot that lost
bytes on its way (a transfer resumed on a new connection without the chunks
the old one dropped) or on disk is refused with a message instead of being
opened: LMDB maps the image, and a page past the end of a short file is a
SIGBUS. Files of the first layout (TKVSNAP1, no length or checksum) are
still read, checked against their LMDB meta page only (snapshot_check.py).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from pathlib import Path

from tandemkv.server.storage.disk import fsync_path, open_private
from tandemkv.server.storage.snapshot_check import (LENGTH, MAGIC, PREFIX_BYTES, SnapshotInvalid,
                                                    header_length, parse_header)
from tandemkv.server.storage.state_store import StateStore

# Its name in a node's data dir.
FILE_NAME = "snapshot.bin"
# Bytes read at a time when hashing an image.
_HASH_READ_BYTES = 1 << 20
# The most digits image_bytes can have in the header (a u64).
_IMAGE_BYTES_DIGITS_MAX = 20

Entry = tuple[bytes, int, int]


def _encode_entry(entry: Entry) -> list:
    command, index, term = entry
    return [base64.b64encode(command).decode(), index, term]


def _decode_entry(raw: list) -> Entry:
    return (base64.b64decode(raw[0]), int(raw[1]), int(raw[2]))


def write_snapshot(
    path: str, store: StateStore, last_entry: Entry, prev_entry: Entry, members: list[str]
) -> None:
    """Writes and fsyncs the snapshot of `store`, which holds every entry up
    to `last_entry` (the tick thread, the only writer, calls this between
    applies). pysyncobj's own no-op entries never reach the state machine,
    so the state's last applied index may be lower."""
    fields = {"last": _encode_entry(last_entry), "prev": _encode_entry(prev_entry), "members": members,
              "image_bytes": 0, "image_sha256": "0" * 64}
    # The image's length and checksum are known once it is written: room is
    # kept for them, and the header is written again, padded to that room.
    room = len(json.dumps(fields).encode()) + _IMAGE_BYTES_DIGITS_MAX
    with store.read_view() as view:
        assert view.last_applied() <= last_entry[1], "snapshot covers the entry it names"
    store.sync()
    with os.fdopen(open_private(path), "wb") as out:
        out.write(MAGIC + LENGTH.pack(room) + b" " * room)
        out.flush()
        store.write_image(out.fileno())
        with open(path, "rb") as written:
            image_bytes, image_sha256 = _hash_image(written, PREFIX_BYTES + room)
        fields.update(image_bytes=image_bytes, image_sha256=image_sha256)
        out.seek(PREFIX_BYTES)
        out.write(json.dumps(fields).encode().ljust(room))
        out.flush()
        os.fsync(out.fileno())


def _hash_image(source, offset: int) -> tuple[int, str]:
    source.seek(offset)
    digest, size = hashlib.sha256(), 0
    while block := source.read(_HASH_READ_BYTES):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Header:
    last: Entry
    prev: Entry
    members: list[str]
    offset: int  # where the LMDB image starts
    image_bytes: int | None  # None in a TKVSNAP1 file, which does not say
    image_sha256: str | None


def read_layout(path: str) -> Header:
    """The header of the snapshot at `path` (SnapshotInvalid if it is not
    one, or shorter than its header says its image is)."""
    with open(path, "rb") as source:
        prefix = source.read(PREFIX_BYTES)
        if len(prefix) < PREFIX_BYTES:
            raise SnapshotInvalid(f"{path}: {len(prefix)} bytes, too short for a snapshot")
        try:
            length = header_length(prefix)
            fields = parse_header(prefix, source.read(length))
        except SnapshotInvalid as error:
            raise SnapshotInvalid(f"{path}: {error}") from error
        size = os.fstat(source.fileno()).st_size
    header = Header(_decode_entry(fields["last"]), _decode_entry(fields["prev"]), fields["members"],
                    PREFIX_BYTES + length, fields["image_bytes"], fields["image_sha256"])
    if header.image_bytes is not None and size != header.offset + header.image_bytes:
        raise SnapshotInvalid(f"{path} is {size} bytes; its header says {header.offset + header.image_bytes}")
    return header


def read_header(path: str) -> tuple[Entry, Entry, list[str], int]:
    """(last entry, previous entry, members, offset of the LMDB image)."""
    header = read_layout(path)
    return header.last, header.prev, header.members, header.offset


_REBUILD_ADVICE = ("move this node's data dir aside and restart the node to rebuild it from "
                   "the other members")


def check_log_covered(path: Path, state_applied: int, log_first_index: int) -> None:
    """Raises if the state cannot be rebuilt here: the Raft log starts after
    entry 1 (compacted into a snapshot), but neither the state nor the
    snapshot file reaches the entry before the log's first, so the entries
    in between are nowhere on this node. (Such a node would wait forever,
    never ready, since the leader sees its log match and sends no snapshot.)"""
    if log_first_index <= 1 or state_applied >= log_first_index - 1:
        return
    covered = state_applied
    if path.exists():
        try:
            covered = max(covered, read_header(str(path))[0][1])
        except (OSError, ValueError) as error:
            raise RuntimeError(f"{path} is unreadable ({error}) and the Raft log was compacted "
                               f"past it; {_REBUILD_ADVICE}") from error
    if covered < log_first_index - 1:
        what = f"{path.name} covers entries up to {covered}" if path.exists() else f"{path.name} is missing"
        raise RuntimeError(f"{path.parent}: the Raft log starts at entry {log_first_index}, but the state "
                           f"holds entries up to {state_applied} and {what}, so entries "
                           f"{covered + 1}..{log_first_index - 1} are nowhere on this node; {_REBUILD_ADVICE}")


def read_snapshot(path: str, store: StateStore) -> tuple[Entry, Entry, list[str]]:
    """Brings `store` up to the snapshot if it is behind; returns the header.
    Raises SnapshotInvalid, with the state untouched, if the snapshot it
    would restore is not whole."""
    header = read_layout(path)
    if header.last[1] > store.last_applied():
        # pysyncobj wrote an installed snapshot without fsync, and clears
        # the log down to it next: both it and the state it becomes must be
        # on disk before the log forgets the entries it replaces.
        fsync_path(Path(path))
        fsync_path(Path(path).parent)
        try:
            store.restore_image(Path(path), header.offset, header.image_sha256)
        except SnapshotInvalid as error:
            raise SnapshotInvalid(f"{path}: {error}") from error
        store.sync()
    return header.last, header.prev, header.members
