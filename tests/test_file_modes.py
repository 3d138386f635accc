"""A node's files are its own: every directory under its data dir is 0700
and every file 0600 (state, Raft log, snapshot, crash marker, CRDT store,
a snapshot installed from the leader), and a data dir an older version
left readable by others is tightened when the node starts, with a log line.

Method: embedded nodes on 127.0.0.1; walk each data dir and look at modes."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from pathlib import Path

from tandemkv.server import Node
from tandemkv.server.storage import disk, snapshot
from tests.test_embedded_node import READY_S, Cluster, _solo_config


def loose_paths(root: Path) -> list[str]:
    """Paths under root (itself included) whose mode is not the private one."""
    found = []
    for parent, dirs, files in os.walk(root):
        for path, wanted in [(Path(parent), 0o700)] + [(Path(parent, f), 0o600) for f in files]:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            if mode != wanted:
                found.append(f"{path.relative_to(root.parent)} {mode:o}")
    return found


def test_a_new_node_writes_only_private_directories_and_files(tmp_path):
    config = _solo_config(tmp_path)
    with Node(config) as node:
        node.wait_ready(READY_S)
        node.incr(b"c")
        node.compact()
        deadline = time.monotonic() + READY_S
        while not (config.data_dir / snapshot.FILE_NAME).exists():
            assert time.monotonic() < deadline, "no snapshot was written"
            time.sleep(0.02)
        names = {p.name for p in config.data_dir.iterdir()}
        assert {"state", "raft", snapshot.FILE_NAME, "running.marker"} <= names, names
        assert loose_paths(config.data_dir) == []
    assert loose_paths(config.data_dir) == []


def test_a_data_dir_left_readable_by_an_older_version_is_tightened_on_start(tmp_path, caplog):
    config = _solo_config(tmp_path)
    with Node(config) as node:
        node.wait_ready(READY_S)
        node.incr(b"c")
    for parent, dirs, files in os.walk(config.data_dir):
        os.chmod(parent, 0o755)
        for name in files:
            os.chmod(Path(parent, name), 0o644)
    assert loose_paths(config.data_dir)
    with caplog.at_level(logging.WARNING, logger=disk.__name__), Node(config) as node:
        node.wait_ready(READY_S)
        assert node.counter_get(b"c").value == 1
        assert loose_paths(config.data_dir) == []
    assert any("took group and other access away" in r.getMessage() for r in caplog.records)


def test_a_snapshot_installed_from_the_leader_is_private(tmp_path):
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        leader = cluster.leader()
        for _ in range(20):
            leader.incr(b"snap")
        cluster.compact_all()
        follower = next(n for n in cluster.nodes if cluster.nodes[n] is not leader)
        cluster.stop(follower)
        shutil.rmtree(cluster.base / follower)
        cluster.start(follower)
        cluster.wait_applied(cluster.nodes[follower], leader.status().applied_index)
        assert (cluster.base / follower / snapshot.FILE_NAME).exists()
        assert loose_paths(cluster.base / follower) == []
    finally:
        cluster.stop()
