"""A snapshot that is not whole is refused with a message, never mapped.

LMDB maps a snapshot's image: a page past the end of a short image is a
SIGBUS that kills the process (seen when a follower installed a transfer
that lost a chunk on a dropped connection). These tests cut a chunk out of
a real snapshot the way that transfer did and check every path refuses it:
the install (read_snapshot), the follower's stream check before the file
is renamed into place, and pysyncobj's Serializer with the check on; and
that the leader restarts a transfer from its first byte after a lost
connection. Files of the first layout (TKVSNAP1) are still read."""

from __future__ import annotations

import json
import os

import pytest
from pysyncobj.serializer import Serializer

from tandemkv import limits
from tandemkv.server.raft import snapshot_transfer
from tandemkv.server.storage import snapshot
from tandemkv.server.storage.snapshot_check import (MAGIC_V1, PREFIX_BYTES, IncomingSnapshot,
                                                    SnapshotInvalid)
from tandemkv.server.storage.state_store import StateStore

CHUNK_BYTES = limits.RAFT_SNAPSHOT_CHUNK_BYTES
MAP_BYTES = 1 << 28
LAST, PREV = (b"last", 40, 2), (b"prev", 39, 2)


def _store_with_data(path, keys=3000) -> StateStore:
    store = StateStore(path, MAP_BYTES)
    with store.env.begin(write=True) as txn:
        for k in range(keys):
            txn.put(b"key/%05d" % k, os.urandom(200), db=store.dbs[b"kv"])
    return store


@pytest.fixture
def snapshot_file(tmp_path):
    store = _store_with_data(tmp_path / "source")
    path = tmp_path / "snapshot.bin"
    snapshot.write_snapshot(str(path), store, LAST, PREV, ["a", "b"])
    store.close()
    assert path.stat().st_size > 8 * CHUNK_BYTES
    return path


def _chunks(data: bytes) -> list[bytes]:
    return [data[at:at + CHUNK_BYTES] for at in range(0, len(data), CHUNK_BYTES)]


def _keys(store: StateStore) -> int:
    with store.env.begin() as txn:
        return txn.stat(store.dbs[b"kv"])["entries"]


def test_a_whole_snapshot_declares_its_image_and_installs(snapshot_file, tmp_path):
    header = snapshot.read_layout(str(snapshot_file))
    assert header.offset + header.image_bytes == snapshot_file.stat().st_size
    target = StateStore(tmp_path / "target", MAP_BYTES)
    assert snapshot.read_snapshot(str(snapshot_file), target) == (LAST, PREV, ["a", "b"])
    assert _keys(target) == 3000
    target.close()


@pytest.mark.parametrize("cut", ["a chunk from the middle", "the tail"])
def test_a_snapshot_missing_a_chunk_is_refused_and_the_state_kept(snapshot_file, tmp_path, cut):
    data = snapshot_file.read_bytes()
    chunks = _chunks(data)
    short = chunks[:3] + chunks[4:] if cut == "a chunk from the middle" else chunks[:-1]
    snapshot_file.write_bytes(b"".join(short))
    target = _store_with_data(tmp_path / "target", keys=5)
    with pytest.raises(SnapshotInvalid, match=r"snapshot.bin is \d+ bytes; its header says \d+"):
        snapshot.read_snapshot(str(snapshot_file), target)
    assert _keys(target) == 5 and target.last_applied() == 0
    target.close()


def test_a_damaged_image_of_the_right_length_is_refused(snapshot_file, tmp_path):
    data = bytearray(snapshot_file.read_bytes())
    data[-100] ^= 0xFF
    snapshot_file.write_bytes(bytes(data))
    target = StateStore(tmp_path / "target", MAP_BYTES)
    with pytest.raises(SnapshotInvalid, match="SHA-256 differs"):
        snapshot.read_snapshot(str(snapshot_file), target)
    target.close()


def _as_first_layout(path) -> bytes:
    """The same snapshot in the TKVSNAP1 layout (no image length or checksum)."""
    header = snapshot.read_layout(str(path))
    fields = json.loads(path.read_bytes()[PREFIX_BYTES:header.offset])
    del fields["image_bytes"], fields["image_sha256"]
    encoded = json.dumps(fields).encode()
    return MAGIC_V1 + len(encoded).to_bytes(4, "big") + encoded + path.read_bytes()[header.offset:]


def test_a_first_layout_snapshot_is_read_and_refused_when_short(snapshot_file, tmp_path):
    old = _as_first_layout(snapshot_file)
    snapshot_file.write_bytes(old)
    target = StateStore(tmp_path / "target", MAP_BYTES)
    assert snapshot.read_snapshot(str(snapshot_file), target)[0] == LAST
    assert _keys(target) == 3000
    target.close()
    snapshot_file.write_bytes(old[:-CHUNK_BYTES])
    other = StateStore(tmp_path / "other", MAP_BYTES)
    with pytest.raises(SnapshotInvalid, match="its LMDB image is \\d+ bytes; its meta page says \\d+"):
        snapshot.read_snapshot(str(snapshot_file), other)
    other.close()


def test_the_stream_check_refuses_a_transfer_that_lost_a_chunk(snapshot_file):
    chunks = _chunks(snapshot_file.read_bytes())
    whole = IncomingSnapshot()
    for chunk in chunks:
        whole.feed(chunk)
    whole.finish()
    gapped = IncomingSnapshot()
    for chunk in chunks[:5] + chunks[6:]:
        gapped.feed(chunk)
    with pytest.raises(SnapshotInvalid, match="its image is \\d+ bytes; its header declares \\d+"):
        gapped.finish()
    with pytest.raises(SnapshotInvalid, match="not a TandemKV snapshot"):
        IncomingSnapshot().feed(b"X" * CHUNK_BYTES)


def _serializer(path) -> Serializer:
    return Serializer(str(path), CHUNK_BYTES, False, lambda *a: None, lambda *a: None, None)


def test_a_follower_refuses_a_gapped_transfer_keeps_its_file_and_takes_a_resend(snapshot_file, tmp_path):
    """What a follower received when the leader went on after a lost
    connection: every chunk but the ones the connection dropped."""
    leader, follower_path = _serializer(snapshot_file), tmp_path / "follower" / "snapshot.bin"
    follower_path.parent.mkdir()
    follower_path.write_bytes(b"the follower's own snapshot")
    follower = _serializer(follower_path)
    snapshot_transfer.check_incoming(follower)
    sent = []
    while not sent or not sent[-1][2]:
        sent.append(leader.getTransmissionData("follower"))
    gapped = sent[:4] + sent[5:]
    assert [follower.setTransmissionData(chunk) for chunk in gapped] == [False] * len(gapped)
    assert follower_path.read_bytes() == b"the follower's own snapshot"
    # Chunks continuing the refused transfer are ignored; a resend installs.
    assert not follower.setTransmissionData(sent[6])
    results = [follower.setTransmissionData(chunk) for chunk in sent]
    assert results == [False] * (len(sent) - 1) + [True]
    assert follower_path.read_bytes() == snapshot_file.read_bytes()


def test_a_leader_restarts_a_transfer_from_its_first_byte_after_a_lost_connection(snapshot_file):
    leader = _serializer(snapshot_file)
    first = leader.getTransmissionData("follower")
    assert first[1] and not leader.getTransmissionData("follower")[1]
    snapshot_transfer.cancel_on_disconnect(leader, "follower")
    again = leader.getTransmissionData("follower")
    assert again[1] and again[0] == first[0]


def test_a_member_writes_its_own_snapshot_in_its_tick_thread_never_in_a_fork(tmp_path):
    """A member's own log compaction and an install it receives cannot
    write at once: with a serializer of its own, pysyncobj does not fork
    (both run on the tick thread) and writes to another temporary name."""
    serializer = snapshot_transfer.checking_serializer(
        str(tmp_path / "snapshot.bin"), CHUNK_BYTES, True, lambda *a: None, lambda *a: None, None)
    assert serializer._Serializer__useFork is False
