"""lossyfs, the power-loss filesystem of the fault harness
(tests/faults/lossyfs.py): its semantics, first without FUSE (one file's
held changes against a byte-array model; the namespace undo journal), then
on a real mount: what a cut keeps and what it drops, and the access
patterns LMDB relies on (pwrite under a shared read-only mmap, a shared
writable mmap, an O_DSYNC meta write).

The mount tests skip, naming what to install, where libfuse 3 (Debian's
fuse3) or /dev/fuse is missing or the kernel refuses the mount; under
.ci/run such a skip fails (tests/support/system_needs.py)."""

from __future__ import annotations

import json
import mmap
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.faults.lossyfs_model import PAGE_BYTES, FileData, UndoJournal
from tests.faults.power_mounts import LossyMount, MountNotPermitted
from tests.support.system_needs import FUSE_MOUNT, skip_needing, skip_unless_fuse_works

# -- one file's held changes, against a model ---------------------------------

SIZE_MAX = 3 * PAGE_BYTES + 100
operations = st.lists(st.one_of(
    st.tuples(st.just("write"), st.integers(0, SIZE_MAX), st.binary(min_size=1, max_size=PAGE_BYTES + 50)),
    st.tuples(st.just("truncate"), st.integers(0, SIZE_MAX)),
    st.tuples(st.just("sync")),
), max_size=25)


def _apply_to_model(model: bytearray, operation: tuple) -> None:
    if operation[0] == "write":
        _, offset, data = operation
        if offset > len(model):
            model.extend(bytes(offset - len(model)))
        model[offset:offset + len(data)] = data
    elif operation[0] == "truncate":
        length = operation[1]
        del model[length:]
        model.extend(bytes(length - len(model)))


@settings(max_examples=300, deadline=None)
@given(initial=st.binary(max_size=2 * PAGE_BYTES + 7), script=operations)
def test_held_changes_read_like_the_file_and_only_synced_ones_survive_a_cut(tmp_path_factory, initial, script):
    path = tmp_path_factory.mktemp("filedata") / "file"
    path.write_bytes(initial)
    fd = os.open(path, os.O_RDWR)
    try:
        data = FileData(fd)
        current, synced = bytearray(initial), bytes(initial)
        for operation in script:
            if operation[0] == "sync":
                data.sync()
                synced = bytes(current)
                assert not data.dirty
            else:
                getattr(data, operation[0])(*operation[1:])
                _apply_to_model(current, operation)
            assert data.size == len(current)
            assert data.read(0, SIZE_MAX + PAGE_BYTES) == bytes(current)
        offset = len(current) // 3
        assert data.read(offset, 5000) == bytes(current[offset:offset + 5000])
        assert data.dirty or bytes(current) == synced
        # The cut: a fresh view of the backing file holds what was synced.
        assert path.read_bytes() == synced
    finally:
        os.close(fd)


@settings(max_examples=100, deadline=None)
@given(initial=st.binary(max_size=2 * PAGE_BYTES), script=operations, keep=st.sampled_from([0.0, 1.0]))
def test_a_torn_cut_keeping_all_or_nothing_leaves_the_current_or_the_synced_file(
        tmp_path_factory, initial, script, keep):
    path = tmp_path_factory.mktemp("torn") / "file"
    path.write_bytes(initial)
    fd = os.open(path, os.O_RDWR)
    try:
        data = FileData(fd)
        for operation in script:
            getattr(data, operation[0])(*operation[1:])
        current, synced = data.read(0, SIZE_MAX + PAGE_BYTES), path.read_bytes()
        data.write_back_some(random.Random(1), keep)
        assert path.read_bytes() == (synced if keep == 0 else current)
    finally:
        os.close(fd)


# -- the namespace undo journal ------------------------------------------------

def _tree(root) -> dict[str, bytes | None]:
    """Every path under root (the journal's own directory excluded) with
    its content (None for a directory)."""
    found = {}
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d != ".lossyfs"]
        for name in subdirectories:
            found[os.path.relpath(os.path.join(directory, name), root)] = None
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as source:
                found[os.path.relpath(path, root)] = source.read()
    return found


def test_rolling_back_the_journal_restores_the_namespace_of_the_last_commit(tmp_path):
    (tmp_path / "keep").write_bytes(b"old")
    (tmp_path / "gone").write_bytes(b"removed later")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "inner").write_bytes(b"inner")
    journal = UndoJournal(tmp_path)
    journal.apply({"op": "create", "path": "/early"}, lambda: (tmp_path / "early").write_bytes(b""))
    journal.commit()
    committed = _tree(tmp_path)

    journal.apply({"op": "mkdir", "path": "/new"}, lambda: (tmp_path / "new").mkdir())
    journal.apply({"op": "create", "path": "/new/file"}, lambda: (tmp_path / "new" / "file").write_bytes(b"x"))
    journal.remove("/gone")
    journal.rename("/new/file", "/keep", replaces=True)
    journal.rename("/dir", "/new/dir", replaces=False)
    journal.remove("/early")
    assert _tree(tmp_path) != committed

    assert journal.undo_to(0) == 6
    assert _tree(tmp_path) == committed
    assert not os.listdir(journal.trash)


@pytest.mark.parametrize("survivors", [0, 1, 2])
def test_a_torn_cut_never_splits_a_rename_that_replaces_a_file(tmp_path, survivors):
    # What a writer of snapshot.bin does: write the new copy aside, then
    # rename it over the old one. A real disk shows the old or the new file
    # after any crash, never neither.
    (tmp_path / "snapshot").write_bytes(b"old")
    journal = UndoJournal(tmp_path)
    journal.apply({"op": "create", "path": "/snapshot.tmp"},
                  lambda: (tmp_path / "snapshot.tmp").write_bytes(b"new"))
    journal.rename("/snapshot.tmp", "/snapshot", replaces=True)
    assert journal.pending == 2
    journal.commit_first(survivors)
    journal.undo_to(0)
    expected = {0: {"snapshot": b"old"}, 1: {"snapshot": b"old", "snapshot.tmp": b"new"},
                2: {"snapshot": b"new"}}[survivors]
    assert _tree(tmp_path) == expected


def test_a_record_whose_operation_never_ran_and_a_torn_last_line_roll_back_harmlessly(tmp_path):
    (tmp_path / "a").write_bytes(b"a")
    journal = UndoJournal(tmp_path)
    before = _tree(tmp_path)
    # A daemon killed between recording and acting, then inside a write.
    for entry in ({"op": "create", "path": "/b"}, {"op": "mkdir", "path": "/d"},
                  {"op": "trash", "path": "/a", "slot": str(journal.trash / "9")},
                  {"op": "rename", "old": "/a", "new": "/c"}):
        os.write(journal.fd, json.dumps(entry).encode() + b"\n")
    os.write(journal.fd, b'{"op": "create", "pa')
    assert journal.undo_to(0) == 4
    assert _tree(tmp_path) == before


def test_a_failed_operation_leaves_no_record(tmp_path):
    journal = UndoJournal(tmp_path)
    with pytest.raises(FileNotFoundError):
        journal.apply({"op": "create", "path": "/x/y"}, lambda: (tmp_path / "x" / "y").write_bytes(b""))
    assert journal.pending == 0 and journal.undo_to(0) == 0


# -- on a real mount -----------------------------------------------------------

@pytest.fixture
def disk(tmp_path):
    """A lossyfs mount over tmp_path/backing; unmounted whatever happens."""
    skip_unless_fuse_works()
    mount = LossyMount(tmp_path / "backing", tmp_path / "mnt", tmp_path / "lossyfs.log")
    try:
        mount.mount()
    except MountNotPermitted as error:
        skip_needing(FUSE_MOUNT, str(error))
    try:
        yield mount
    finally:
        mount.kill()
        mount.cut()


def _write(path, data: bytes, *, sync: bool) -> None:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        if sync:
            os.fsync(out.fileno())


def _sync_dir(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def test_reads_see_unsynced_writes_and_a_cut_drops_them(disk):
    path = disk.mountpoint / "f"
    _write(path, b"synced", sync=True)
    with open(path, "r+b") as out:
        out.seek(3)
        out.write(b"-held-and-longer")
    assert path.read_bytes() == b"syn-held-and-longer"
    assert disk.stats()["unsynced_files"] == 1
    assert (disk.backing / "f").read_bytes() == b"synced"
    disk.power_cycle()
    assert path.read_bytes() == b"synced"


def test_fsync_and_fdatasync_make_content_survive(disk):
    first, second = disk.mountpoint / "first", disk.mountpoint / "second"
    _write(first, b"one" * 5000, sync=True)
    with open(second, "wb") as out:
        out.write(b"two" * 3)
        out.flush()
        os.fdatasync(out.fileno())
    assert disk.stats()["unsynced_bytes"] == 0
    disk.power_cycle()
    assert first.read_bytes() == b"one" * 5000
    assert second.read_bytes() == b"two" * 3


def test_truncation_is_held_until_fsync(disk):
    path = disk.mountpoint / "t"
    _write(path, bytes(range(256)) * 40, sync=True)
    os.truncate(path, 100)
    os.truncate(path, 5000)
    assert path.read_bytes() == bytes(range(100)) + bytes(4900)
    disk.power_cycle()
    assert path.read_bytes() == bytes(range(256)) * 40
    with open(path, "r+b") as out:
        out.truncate(10)
        os.fsync(out.fileno())
    disk.power_cycle()
    assert path.read_bytes() == bytes(range(10))


def test_open_with_o_trunc_is_held_until_fsync(disk):
    path = disk.mountpoint / "o"
    _write(path, b"before", sync=True)
    _write(path, b"after, unsynced", sync=False)
    disk.power_cycle()
    assert path.read_bytes() == b"before"


def test_namespace_changes_are_held_until_an_fsync_and_rolled_back_at_the_next_mount(disk):
    root = disk.mountpoint
    _write(root / "stays", b"stays", sync=True)
    _write(root / "old", b"old content", sync=True)
    _sync_dir(root)
    (root / "d").mkdir()
    _write(root / "d" / "new", b"new content", sync=False)
    os.rename(root / "d" / "new", root / "old")
    os.unlink(root / "stays")
    assert sorted(os.listdir(root)) == ["d", "old"]
    assert disk.stats()["uncommitted_namespace_ops"] == 4  # mkdir, create, rename over, unlink
    disk.power_cycle()
    assert sorted(os.listdir(root)) == ["old", "stays"]
    assert (root / "old").read_bytes() == b"old content"
    assert disk.stats()["rolled_back_at_mount"] == 4


def test_an_fsync_commits_every_earlier_namespace_change_with_the_synced_content(disk):
    root = disk.mountpoint
    _write(root / "target", b"old", sync=True)
    _write(root / "target.tmp", b"new", sync=True)  # its fsync commits its creation too
    os.rename(root / "target.tmp", root / "target")
    _sync_dir(root)
    _write(root / "unsynced-name", b"x", sync=False)
    _write(root / "other", b"other", sync=True)  # commits unsynced-name's creation, not its content
    disk.power_cycle()
    assert sorted(os.listdir(root)) == ["other", "target", "unsynced-name"]
    assert (root / "target").read_bytes() == b"new"
    assert (root / "unsynced-name").read_bytes() == b""


def test_an_unlinked_open_file_stays_usable_through_its_descriptor(disk):
    path = disk.mountpoint / "open"
    _write(path, b"content", sync=True)
    with open(path, "r+b") as handle:
        os.unlink(path)
        handle.write(b"CON")
        handle.flush()
        os.fsync(handle.fileno())
        assert os.pread(handle.fileno(), 7, 0) == b"CONtent"
    assert os.listdir(disk.mountpoint) == []  # no .fuse_hidden file
    disk.power_cycle()
    assert os.listdir(disk.mountpoint) == []


def test_a_write_through_an_o_dsync_handle_is_durable_at_once(disk):
    path = disk.mountpoint / "meta"
    _write(path, bytes(8192), sync=True)
    fd = os.open(path, os.O_WRONLY | os.O_DSYNC)
    try:
        os.pwrite(fd, b"META", 4096)
    finally:
        os.close(fd)
    disk.power_cycle()
    assert path.read_bytes()[4096:4100] == b"META"


def test_pwrite_shows_through_a_shared_read_only_mmap_and_a_writable_mmap_works(disk):
    data_path, lock_path = disk.mountpoint / "data.mdb", disk.mountpoint / "lock.mdb"
    _write(data_path, bytes(3 * PAGE_BYTES), sync=True)
    fd = os.open(data_path, os.O_RDWR)
    try:
        view = mmap.mmap(fd, 3 * PAGE_BYTES, mmap.MAP_SHARED, mmap.PROT_READ)
        os.pwrite(fd, b"page two", 2 * PAGE_BYTES)
        assert view[2 * PAGE_BYTES:2 * PAGE_BYTES + 8] == b"page two"
        view.close()
    finally:
        os.close(fd)
    _write(lock_path, bytes(PAGE_BYTES), sync=False)
    fd = os.open(lock_path, os.O_RDWR)
    try:
        shared = mmap.mmap(fd, PAGE_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        shared[:6] = b"reader"
        shared.flush()
        assert os.pread(fd, 6, 0) == b"reader"
        shared.close()
    finally:
        os.close(fd)


def test_an_lmdb_environment_with_sync_survives_a_cut_and_one_without_loses_its_writes(disk):
    import lmdb

    durable = lmdb.open(str(disk.mountpoint / "durable"), map_size=64 << 20)
    loose = lmdb.open(str(disk.mountpoint / "loose"), map_size=64 << 20, sync=False, metasync=False)
    for env in (durable, loose):
        for batch in range(20):
            with env.begin(write=True) as txn:
                for k in range(50):
                    txn.put(f"{batch:03d}/{k:03d}".encode(), os.urandom(100))
    loose.sync(True)  # the loose environment's first 20 batches are on disk ...
    with loose.begin(write=True) as txn:  # ... this one is not
        txn.put(b"after the sync", b"lost")
    durable.close()
    loose.close()
    disk.power_cycle()
    durable = lmdb.open(str(disk.mountpoint / "durable"), map_size=64 << 20)
    loose = lmdb.open(str(disk.mountpoint / "loose"), map_size=64 << 20)
    try:
        with durable.begin() as txn:
            assert txn.stat()["entries"] == 1000
        with loose.begin() as txn:
            assert txn.stat()["entries"] == 1000
            assert txn.get(b"after the sync") is None
    finally:
        durable.close()
        loose.close()


def test_a_torn_cut_keeps_each_unsynced_page_with_the_given_probability(disk):
    path = disk.mountpoint / "torn"
    _write(path, bytes(64 * PAGE_BYTES), sync=True)
    with open(path, "r+b") as out:
        out.write(b"\xff" * 64 * PAGE_BYTES)
    report = disk.power_cycle(keep=0.5, seed=7)
    assert report["pages_kept"] + report["pages_lost"] == 64
    assert 10 < report["pages_kept"] < 54
    content = path.read_bytes()
    pages = [content[n * PAGE_BYTES:(n + 1) * PAGE_BYTES] for n in range(64)]
    assert sum(page == b"\xff" * PAGE_BYTES for page in pages) == report["pages_kept"]
    assert sum(page == bytes(PAGE_BYTES) for page in pages) == report["pages_lost"]


def test_the_daemon_s_own_files_and_the_stats_file_stay_out_of_listings(disk):
    assert os.listdir(disk.mountpoint) == []
    assert (disk.backing / ".lossyfs").is_dir()
    stats = disk.stats()
    assert stats["unsynced_bytes"] == 0 and stats["syncs"] == 0
    with pytest.raises(PermissionError):
        (disk.mountpoint / ".lossyfs").mkdir()
