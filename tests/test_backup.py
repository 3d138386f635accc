"""Backups without a served cluster: an embedded single-node cluster takes
one (`node.take_backup`), `tandemkv snapshot status` checks it, and
`tandemkv snapshot restore` seeds a new node from it, which starts at the
backup's revision with its data and its CRDT tables.

Damaged files are refused by status and restore alike, with exit 1 and a
one-line message, and nothing is written to the data dir: a truncated
file, a flipped byte, a wrong magic, a node's Raft snapshot file. A data
dir that is not empty is refused with exit 2 and left as it was.
(tests/test_backup_cluster.py restores a served 3-node cluster taken
during writes.)"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tandemkv.server import Member, Node, NodeConfig, RaftTimings
from tandemkv.server.available.crdt.mutations import Increment
from tandemkv.server.cli.main import main
from tandemkv.server.raft.testing import no_op_command
from tandemkv.server.storage import backup, snapshot
from tests.support.ports import free_ports

READY_S = 20.0
FAST = RaftTimings(election_timeout_min_s=0.4, election_timeout_max_s=0.8, leader_fallback_timeout_s=1.5)
KEYS = 200


def one_node(data_dir, name="n1") -> Node:
    raft, client = free_ports(2)
    return Node(NodeConfig(name=name, data_dir=data_dir, raft_address=f"127.0.0.1:{raft}",
                           client_address=f"127.0.0.1:{client}", timings=FAST))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A backup of a one-node cluster holding KEYS keys and a CRDT counter
    at 7; (path, revision, the last put's revision)."""
    root = tmp_path_factory.mktemp("backup")
    node = one_node(root / "source")
    node.start()
    try:
        node.wait_ready(READY_S)
        last = 0
        for i in range(KEYS):
            last = node.put(b"k/%04d" % i, b"v%d" % i).header.revision
        node.crdt.create_table("hits", "pn_counter")
        node.crdt.update("hits", Increment(7))
        backup_file, info = node.take_backup()
        with backup_file, open(root / "good.tkv", "wb") as out:
            shutil.copyfileobj(backup_file, out)
    finally:
        node.stop()
    assert not [name for name in os.listdir(root / "source") if name.startswith("tmp")], "no temp file left"
    return root / "good.tkv", info.revision, last


def run_cli(capsys, *words) -> tuple[int, str, str]:
    code = main([str(word) for word in words])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def damaged_copy(saved_path, tmp_path, how: str):
    data = bytearray(saved_path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "flipped":
        data[len(data) // 2] ^= 0x01
    elif how == "wrong magic":
        data[:8] = b"NOTABKUP"
    path = tmp_path / f"{how.replace(' ', '-')}.tkv"
    path.write_bytes(bytes(data))
    return path


def test_the_backup_holds_the_revision_of_the_last_acknowledged_write_and_every_key(saved):
    path, revision, last_put = saved
    info = backup.read_backup(path)
    assert info.revision == revision >= last_put
    assert info.key_count == KEYS and info.node == "n1"
    assert info.crdt_image_bytes > 0 and info.file_bytes == path.stat().st_size


def test_status_of_a_good_file_prints_what_it_holds(saved, capsys):
    path, revision, _ = saved
    code, out, _ = run_cli(capsys, "snapshot", "status", path, "--json")
    assert code == 0
    shown = json.loads(out)
    assert (shown["revision"], shown["key_count"], shown["node"]) == (revision, KEYS, "n1")
    assert shown["file_bytes"] == path.stat().st_size and len(shown["sha256"]) == 64
    code, out, _ = run_cli(capsys, "snapshot", "status", path)
    assert code == 0 and f"revision:       {revision}" in out


def test_status_reads_the_file_and_never_changes_it(saved, capsys):
    path, _, _ = saved
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    run_cli(capsys, "snapshot", "status", path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize("how, says", [
    ("truncated", "truncated"),
    ("flipped", "SHA-256 does not match"),
    ("wrong magic", "not a TandemKV backup"),
])
def test_a_damaged_file_is_refused_by_status_and_restore_and_nothing_is_written(saved, tmp_path, capsys,
                                                                                 how, says):
    bad = damaged_copy(saved[0], tmp_path, how)
    code, out, err = run_cli(capsys, "snapshot", "status", bad)
    assert (code, out) == (1, "") and says in err and len(err.strip().splitlines()) == 1
    data_dir = tmp_path / "restored"
    code, out, err = run_cli(capsys, "snapshot", "restore", bad, "--data-dir", data_dir, "--name", "n1",
                             "--raft", "127.0.0.1:1", "--client", "127.0.0.1:2")
    assert (code, out) == (1, "") and says in err
    assert not data_dir.exists()
    assert os.listdir(tmp_path) == [bad.name], "no half-built data dir left beside it"


def test_a_raft_snapshot_file_is_refused_naming_what_it_is(saved, tmp_path, capsys):
    raft_file = tmp_path / snapshot.FILE_NAME
    raft_file.write_bytes(b"TKVSNAP2" + bytes(100))
    code, _, err = run_cli(capsys, "snapshot", "status", raft_file)
    assert code == 1 and "Raft snapshot file, not a backup" in err


def test_restore_refuses_a_data_dir_that_is_not_empty_and_leaves_it_alone(saved, tmp_path, capsys):
    data_dir = tmp_path / "in-use"
    data_dir.mkdir()
    (data_dir / "keep").write_text("mine")
    code, _, err = run_cli(capsys, "snapshot", "restore", saved[0], "--data-dir", data_dir, "--name", "n1",
                           "--raft", "127.0.0.1:1", "--client", "127.0.0.1:2")
    assert code == 2 and "is not empty" in err
    assert os.listdir(data_dir) == ["keep"] and (data_dir / "keep").read_text() == "mine"


def test_restore_refuses_a_member_named_twice(saved, tmp_path, capsys):
    code, _, err = run_cli(capsys, "snapshot", "restore", saved[0], "--data-dir", tmp_path / "d", "--name", "n1",
                           "--raft", "127.0.0.1:1", "--client", "127.0.0.1:2",
                           "--peers", "n1=127.0.0.1:3,127.0.0.1:4")
    assert code == 2 and "name n1 more than once" in err and not (tmp_path / "d").exists()


def test_a_restored_node_starts_at_the_backups_revision_with_its_keys_and_crdt_tables(saved, tmp_path, capsys):
    path, revision, _ = saved
    node = one_node(tmp_path / "n9", name="n9")
    config = node.config
    code, out, _ = run_cli(capsys, "snapshot", "restore", path, "--data-dir", config.data_dir, "--name", "n9",
                           "--raft", config.raft_address, "--client", config.client_address, "--json")
    assert code == 0 and json.loads(out)["revision"] == revision
    node.start()
    try:
        node.wait_ready(READY_S)
        found = node.range(b"k/", prefix=True)
        assert len(found.kvs) == KEYS and found.kvs[0].value == b"v0"
        assert found.header.revision >= revision
        assert node.put(b"after", b"restore").header.revision > revision
        assert node.crdt.read("hits").value == 7
        assert not node.available.replica_id.startswith("n1."), "the source's replica id is not reused"
    finally:
        node.stop()


def test_the_restored_raft_entries_are_pysyncobjs_no_op():
    assert backup.RAFT_NO_OP_COMMAND == no_op_command()


def test_an_empty_node_backs_up_and_restores(tmp_path, capsys):
    node = one_node(tmp_path / "empty")
    node.start()
    try:
        node.wait_ready(READY_S)
        backup_file, info = node.take_backup()
        with backup_file, open(tmp_path / "empty.tkv", "wb") as out:
            shutil.copyfileobj(backup_file, out)
    finally:
        node.stop()
    assert info.key_count == 0
    code, _, _ = run_cli(capsys, "snapshot", "restore", tmp_path / "empty.tkv", "--data-dir", tmp_path / "r",
                         "--name", "n1", "--raft", "127.0.0.1:1", "--client", "127.0.0.1:2")
    assert code == 0 and (tmp_path / "r" / backup.STATE_DIR_NAME / backup.LMDB_FILE_NAME).exists()


def test_members_of_one_cluster_are_seeded_alike(saved, tmp_path):
    members = [Member(f"m{i}", f"127.0.0.1:{1000 + i}", f"127.0.0.1:{2000 + i}") for i in range(3)]
    from tandemkv.server.process import backup_files
    for member in members:
        backup_files.restore(saved[0], tmp_path / member.name, member, tuple(m for m in members if m != member))
    headers = [snapshot.read_header(str(tmp_path / m.name / snapshot.FILE_NAME)) for m in members]
    assert len({(last, prev, tuple(names)) for last, prev, names, _ in headers}) == 1
    last, _, names, _ = headers[0]
    assert last[1] == saved[1] and names == sorted(m.raft_address for m in members)


def test_restore_refuses_an_address_serve_would_refuse_before_writing(saved, tmp_path, capsys):
    code, _, err = run_cli(capsys, "snapshot", "restore", saved[0], "--data-dir", tmp_path / "d", "--name", "n1",
                           "--raft", "no-port-here", "--client", "127.0.0.1:2")
    assert code == 2 and "raft_address" in err and not (tmp_path / "d").exists()
