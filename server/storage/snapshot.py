"""The snapshot file: a small header naming the Raft entries it covers and
the members, then a compacted copy of the state environment.

pysyncobj writes it on log compaction (through `write_snapshot`), ships its
bytes to a follower that lags behind the log, and reads it back on restart
or install (through `read_snapshot`). Installing replaces the state only when
the snapshot is ahead of it; otherwise the log replay that follows skips
what the state already holds.

Layout: MAGIC | u32 header length | JSON header | LMDB image.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from pathlib import Path

from tandemkv import limits
from tandemkv.server.storage.disk import fsync_path, open_private
from tandemkv.server.storage.state_store import StateStore

# Its name in a node's data dir.
FILE_NAME = "snapshot.bin"
MAGIC = b"TKVSNAP1"
_LENGTH = struct.Struct(">I")

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
    header = json.dumps(
        {"last": _encode_entry(last_entry), "prev": _encode_entry(prev_entry), "members": members}
    ).encode()
    with store.read_view() as view:
        assert view.last_applied() <= last_entry[1], "snapshot covers the entry it names"
    store.sync()
    with os.fdopen(open_private(path), "wb") as out:
        out.write(MAGIC + _LENGTH.pack(len(header)) + header)
        out.flush()
        store.write_image(out.fileno())
        os.fsync(out.fileno())


def read_header(path: str) -> tuple[Entry, Entry, list[str], int]:
    """(last entry, previous entry, members, offset of the LMDB image)."""
    with open(path, "rb") as source:
        prefix = source.read(len(MAGIC) + _LENGTH.size)
        if prefix[: len(MAGIC)] != MAGIC:
            raise ValueError(f"{path} is not a TandemKV snapshot")
        (length,) = _LENGTH.unpack(prefix[len(MAGIC):])
        if length > limits.SNAPSHOT_HEADER_BYTES_MAX:
            raise ValueError(f"{path}: snapshot header of {length} bytes is too large")
        header = json.loads(source.read(length))
    offset = len(prefix) + length
    return _decode_entry(header["last"]), _decode_entry(header["prev"]), header["members"], offset


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
        except (OSError, ValueError, KeyError) as error:
            raise RuntimeError(f"{path} is unreadable ({error}) and the Raft log was compacted "
                               f"past it; {_REBUILD_ADVICE}") from error
    if covered < log_first_index - 1:
        what = f"{path.name} covers entries up to {covered}" if path.exists() else f"{path.name} is missing"
        raise RuntimeError(f"{path.parent}: the Raft log starts at entry {log_first_index}, but the state "
                           f"holds entries up to {state_applied} and {what}, so entries "
                           f"{covered + 1}..{log_first_index - 1} are nowhere on this node; {_REBUILD_ADVICE}")


def read_snapshot(path: str, store: StateStore) -> tuple[Entry, Entry, list[str]]:
    """Brings `store` up to the snapshot if it is behind; returns the header."""
    last_entry, prev_entry, members, offset = read_header(path)
    if last_entry[1] > store.last_applied():
        # pysyncobj wrote an installed snapshot without fsync, and clears
        # the log down to it next: both it and the state it becomes must be
        # on disk before the log forgets the entries it replaces.
        fsync_path(Path(path))
        fsync_path(Path(path).parent)
        store.restore_image(Path(path), offset)
        store.sync()
    return last_entry, prev_entry, members

