"""The Raft port's frame bound (server/raft/port_guard.py, installed when
server/raft/member.py is imported): what it decides from a buffer's first
frame, that it is installed on pysyncobj's connections, that it fails
loudly if pysyncobj reads frames differently, and that the largest frames
members legitimately send fit within RAFT_FRAME_BYTES_MAX (encoded by
pysyncobj's own code, encrypted)."""

from __future__ import annotations

import os
import struct

import pytest
from pysyncobj import pickle as pysyncobj_pickle
from pysyncobj.encryptor import getEncryptor
from pysyncobj.tcp_connection import TcpConnection

from tandemkv import limits
from tandemkv.server.raft import member, pinned, port_guard as raft_port_guard
from tandemkv.server.raft.port_guard import Frame, first_frame

LIMIT = 1000


@pytest.mark.parametrize("buffered, expected", [
    (b"", (Frame.INCOMPLETE, None)),
    (b"\x01\x00", (Frame.INCOMPLETE, None)),
    (struct.pack("i", 10) + b"x" * 9, (Frame.INCOMPLETE, 10)),
    (struct.pack("i", 10) + b"x" * 10, (Frame.COMPLETE, 10)),
    (struct.pack("i", 10) + b"x" * 30, (Frame.COMPLETE, 10)),
    (struct.pack("i", LIMIT), (Frame.INCOMPLETE, LIMIT)),
    (struct.pack("i", LIMIT + 1), (Frame.REFUSED, LIMIT + 1)),
    (struct.pack("i", 2**31 - 1) + b"junk", (Frame.REFUSED, 2**31 - 1)),
    (struct.pack("i", -5), (Frame.REFUSED, -5)),
])
def test_the_first_frame_is_refused_over_the_limit_and_complete_once_whole(buffered, expected):
    assert first_frame(buffered, LIMIT) == expected


def test_pysyncobj_connections_read_through_the_bound():
    read_loop = getattr(TcpConnection, raft_port_guard.READ_LOOP)
    assert read_loop.bounds_frames_to == limits.RAFT_FRAME_BYTES_MAX


@pytest.mark.parametrize("internal", ["_TcpConnection__processRead", "_TcpConnection__processParseMessage"])
def test_a_changed_connection_internal_is_refused(monkeypatch, internal):
    monkeypatch.delattr(TcpConnection, internal)
    with pytest.raises(RuntimeError, match="TcpConnection"):
        pinned.check_pinned_internals()


def _frame_bytes(message, password="secret") -> int:
    """The frame pysyncobj writes for `message` on an encrypted connection."""
    connection = TcpConnection(poller=None)
    connection.encryptor = getEncryptor(password)
    connection.sendRandKey = os.urandom(32)
    connection.send(message)
    buffered = connection._TcpConnection__writeBuffer
    (declared,) = struct.unpack_from("i", buffered)
    assert declared == len(buffered) - 4
    return declared


def _entry(command: bytes, index: int) -> tuple[bytes, int, int]:
    """A log entry as pysyncobj makes one for `apply(command)`."""
    return (b"\x00" + pysyncobj_pickle.dumps((0, (command,))), index, 2**20)


def _append(entries) -> dict:
    return {"type": "append_entries", "term": 2**20, "commit_index": 2**30, "entries": entries,
            "prevLogIdx": 2**30, "prevLogTerm": 2**20}


def _batch(command_bytes: int) -> list:
    """Entries the way a leader batches them: until their commands reach
    the batch size, and one past it (random bytes: nothing compresses)."""
    entries, total, index = [], 0, 2**30
    while total < member.APPEND_ENTRIES_BATCH_BYTES:
        entry = _entry(os.urandom(command_bytes), index)
        entries.append(entry)
        total += len(entry[0])
        index += 1
    return entries


@pytest.mark.parametrize("command_bytes", [16, 100, 4096, limits.COMMAND_SIZE_BYTES_MAX])
def test_the_largest_legitimate_frames_fit_within_the_limit(command_bytes):
    assert _frame_bytes(_append(_batch(command_bytes))) <= limits.RAFT_FRAME_BYTES_MAX


def test_a_snapshot_chunk_fits_within_the_limit():
    chunk = os.urandom(member.SNAPSHOT_CHUNK_BYTES)
    message = {"type": "append_entries", "term": 2**20, "commit_index": 2**30,
               "serialized": (chunk, True, False)}
    assert _frame_bytes(message) <= limits.RAFT_FRAME_BYTES_MAX
