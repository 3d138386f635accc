"""A node stopped while a backup copy is under way waits for the copy
before it stops its planes and closes LMDB, and the backup is whole; a
backup asked for once the node is stopping is refused with Unavailable."""

from __future__ import annotations

import threading

import pytest

from tandemkv.errors import Unavailable
from tandemkv.server.storage import backup
from tests.test_backup import READY_S, one_node

WAIT_S = 30.0


def test_stop_waits_for_a_backup_copy_and_the_backup_is_whole(tmp_path):
    node = one_node(tmp_path / "n1")
    node.start()
    node.wait_ready(READY_S)
    for i in range(50):
        node.put(b"k/%03d" % i, b"v")
    in_copy, release = threading.Event(), threading.Event()
    plane = node.available
    copy_crdt_image = plane.write_store_image

    def slow_copy(fd):
        # The strong plane's image is written by now; hold the copy open.
        in_copy.set()
        assert release.wait(WAIT_S)
        copy_crdt_image(fd)

    plane.write_store_image = slow_copy
    stop_waiting = threading.Event()
    copies = node._backup_copies
    close_and_wait = copies.close_and_wait

    def close_and_wait_noted():
        stop_waiting.set()
        close_and_wait()

    copies.close_and_wait = close_and_wait_noted
    taken: dict = {}

    def take():
        backup_file, info = node.take_backup(timeout_s=WAIT_S)
        taken["info"] = info
        taken["bytes"] = backup_file.read()
        backup_file.close()

    taker = threading.Thread(target=take)
    taker.start()
    assert in_copy.wait(WAIT_S)
    stopper = threading.Thread(target=node.stop)
    stopper.start()
    assert stop_waiting.wait(WAIT_S)
    # Stop has begun and is waiting: nothing is closed under the copy.
    assert stopper.is_alive()
    assert node._state is not None and node.available is plane
    with pytest.raises(Unavailable, match="stopping"):
        node.take_backup(timeout_s=WAIT_S)
    release.set()
    taker.join(WAIT_S)
    stopper.join(WAIT_S)
    assert not taker.is_alive() and not stopper.is_alive()
    assert node._state is None
    path = tmp_path / "taken.tkv"
    path.write_bytes(taken["bytes"])
    info = backup.read_backup(path)
    assert info.key_count == 50 and info.revision == taken["info"].revision
