"""Legitimate large Raft traffic still passes the Raft port's frame bound:
a follower catching up on log entries batched to COMMAND_SIZE_BYTES_MAX
(appends of a whole batch), and a wiped follower installing a snapshot of
several MB (many chunks). No frame is refused on the way.

Method: three embedded nodes on 127.0.0.1 (one process, so the refused
frame count of raft_port_guard covers every connection)."""

from __future__ import annotations

import concurrent.futures
import os
import shutil

from tandemkv import limits
from tandemkv.server.storage import snapshot
from tandemkv.server.raft import port_guard as raft_port_guard
from tandemkv.v1 import kv_pb2
from tests.test_embedded_node import Cluster

WRITERS = 16
WRITES_PER_WRITER = 24
VALUE_BYTES = limits.VALUE_SIZE_BYTES_MAX - 1024


def _write_concurrently(node, prefix: bytes) -> int:
    """Big puts from many threads at once, so they share log entries."""
    def write(writer: int) -> int:
        for k in range(WRITES_PER_WRITER):
            node.put(prefix + b"%02d/%02d" % (writer, k), os.urandom(VALUE_BYTES))
        return WRITES_PER_WRITER
    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        return sum(pool.map(write, range(WRITERS)))


def _stored(node, prefix: bytes) -> int:
    return len(node.range(prefix, prefix=True, keys_only=True, consistency=kv_pb2.STALE).kvs)


def test_big_batched_entries_and_a_multi_chunk_snapshot_reach_followers(tmp_path):
    refused_before = raft_port_guard.refused_frames.count
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        leader = cluster.leader()
        followers = [n for n in cluster.nodes if cluster.nodes[n] is not leader]
        # One follower misses the writes and catches up on whole batches.
        cluster.stop(followers[0])
        written = _write_concurrently(leader, b"big/")
        cluster.start(followers[0])
        cluster.wait_applied(cluster.nodes[followers[0]], leader.status().applied_index)
        assert _stored(cluster.nodes[followers[0]], b"big/") == written

        # The other is wiped after compaction and installs the snapshot.
        cluster.compact_all()
        snapshot_bytes = (cluster.base / followers[1] / snapshot.FILE_NAME).stat().st_size
        assert snapshot_bytes > 4 << 20, snapshot_bytes
        cluster.stop(followers[1])
        shutil.rmtree(cluster.base / followers[1])
        cluster.start(followers[1])
        cluster.wait_applied(cluster.nodes[followers[1]], leader.status().applied_index)
        assert _stored(cluster.nodes[followers[1]], b"big/") == written
    finally:
        cluster.stop()
    assert raft_port_guard.refused_frames.count == refused_before
