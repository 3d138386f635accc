"""A node's applied index counts only what a local read can see: an entry is
reported applied once the LMDB batch holding it has committed, not as soon
as its apply returns inside a batch that has not.

Method: three embedded nodes on 127.0.0.1; a follower's tick thread is held
between applying a batch and committing it (server/raft/testing.py), and
its status and a STALE read are compared while it waits. (pysyncobj's own
applied index runs ahead of the commit: a follower once reported an index
past every write while a STALE range on it lacked the last entry's 16 keys.)
"""

from __future__ import annotations

import concurrent.futures

from tandemkv.server.raft import testing as raft_testing
from tandemkv.v1 import kv_pb2
from tests.test_embedded_node import READY_S, Cluster

# Longest the held batch waits for the test to release it.
HOLD_RELEASE_WAIT_S = 30.0


def _visible(node, key: bytes) -> bool:
    return node.get(key, consistency=kv_pb2.STALE).found


def test_a_follower_reports_an_entry_applied_only_once_its_batch_committed(tmp_path):
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        leader = cluster.leader()
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        warm = leader.put(b"warm", b"0").header.revision
        cluster.wait_applied(follower, warm)
        held = raft_testing.hold_commit(follower._replica, HOLD_RELEASE_WAIT_S)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            try:
                revision = leader.put(b"k", b"v").header.revision  # the leader and the other follower
                assert held.reached.wait(READY_S), "the follower applied nothing"
                claimed = follower.status().applied_index
                seen = _visible(follower, b"k")
                # Begun after the put was acknowledged, so it must see it.
                linearizable = pool.submit(follower.get, b"k")
                assert claimed < held.indexes[0], (claimed, held.indexes)
                assert seen or claimed < revision, "status claims an entry a local read cannot see"
            finally:
                held.release()
            assert linearizable.result(timeout=READY_S).found
        cluster.wait_applied(follower, revision)
        assert _visible(follower, b"k")
    finally:
        cluster.stop()


def test_a_single_node_reports_an_entry_applied_only_once_its_batch_committed(tmp_path):
    """The same on a lone node, which applies what it writes at once; the
    write itself is answered only after the commit."""
    cluster = Cluster(tmp_path, size=1)
    cluster.start()
    try:
        node = cluster.leader()
        held = raft_testing.hold_commit(node._replica, HOLD_RELEASE_WAIT_S)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            try:
                put = pool.submit(node.put, b"k", b"v")
                assert held.reached.wait(READY_S), "the node applied nothing"
                claimed = node.status().applied_index
                seen = _visible(node, b"k")
                assert claimed < held.indexes[0], (claimed, held.indexes)
                assert not seen and not put.done(), "acknowledged before its batch committed"
            finally:
                held.release()
            revision = put.result(timeout=READY_S).header.revision
        assert node.status().applied_index >= revision and _visible(node, b"k")
    finally:
        cluster.stop()
