"""Legitimate large Raft traffic still passes the Raft port's frame bound:
a follower catching up on log entries batched to COMMAND_SIZE_BYTES_MAX
(appends of a whole batch), and a wiped follower installing a snapshot of
several MB (many chunks). No frame is refused on the way. A snapshot
transfer whose connection is lost midway starts again from its first byte,
and a follower refuses a transfer that lost a chunk, then installs the
leader's resend (such a transfer once made LMDB read past the end of a
short image: SIGBUS).

Method: three embedded nodes on 127.0.0.1 (one process, so the refused
frame count of raft_port_guard covers every connection), with the default
election timings: these tests are about large traffic, and the short test
timings let a busy machine's stalls start elections midway. A leader may
still change: a write refused for it is sent again, as a client would, and
every node's snapshot reads go through the test's tampering."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import os
import shutil
import time

from tandemkv import limits
from tandemkv.errors import OutcomeUnknown, Unavailable
from tandemkv.server import RaftTimings
from tandemkv.server.storage import snapshot
from tandemkv.server.raft import port_guard as raft_port_guard
from tandemkv.server.raft import testing as raft_testing
from tandemkv.v1 import kv_pb2
from tests.test_embedded_node import READY_S, Cluster

WRITERS = 16
WRITES_PER_WRITER = 24
VALUE_BYTES = limits.VALUE_SIZE_BYTES_MAX - 1024
# Times one write is sent before the test gives up (a leader change refuses it).
WRITE_ATTEMPTS_MAX = 5
STEADY = RaftTimings()


class _SteadyCluster(Cluster):
    def config(self, member):
        return dataclasses.replace(super().config(member), timings=self.timings())

    def timings(self) -> RaftTimings:
        return STEADY


def _put(node, key: bytes, value: bytes) -> None:
    """A put sent again while a leader change refuses it (or leaves its
    outcome unknown: the same request id applies it at most once)."""
    request_id = os.urandom(limits.REQUEST_ID_BYTES)
    for attempt in range(WRITE_ATTEMPTS_MAX):
        try:
            node.put(key, value, request_id=request_id)
            return
        except (Unavailable, OutcomeUnknown):
            if attempt == WRITE_ATTEMPTS_MAX - 1:
                raise
            node.wait_ready(READY_S)


def _write_concurrently(node, prefix: bytes) -> int:
    """Big puts from many threads at once, so they share log entries."""
    def write(writer: int) -> int:
        for k in range(WRITES_PER_WRITER):
            _put(node, prefix + b"%02d/%02d" % (writer, k), os.urandom(VALUE_BYTES))
        return WRITES_PER_WRITER
    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        return sum(pool.map(write, range(WRITERS)))


def _stored(node, prefix: bytes) -> int:
    return len(node.range(prefix, prefix=True, keys_only=True, consistency=kv_pb2.STALE).kvs)


def test_big_batched_entries_and_a_multi_chunk_snapshot_reach_followers(tmp_path):
    refused_before = raft_port_guard.refused_frames.count
    cluster = _SteadyCluster(tmp_path)
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


CHUNK_BYTES = limits.RAFT_SNAPSHOT_CHUNK_BYTES
SMALL_WRITES = 160  # about 5 MB of values: a snapshot of some 80 chunks


def _wiped_follower_installing(cluster, tamper) -> tuple:
    """Fills and compacts the cluster, wipes a follower and restarts it
    while `tamper(follower_node_key, get_chunk)` stands in for the leader's
    reading of the next snapshot chunk; returns (leader, follower name)."""
    leader = cluster.leader()
    address = {m.name: m.raft_address for m in cluster.members}
    # Preferably one the leader connects to (it reconnects at once after a cut).
    follower = min((n for n in cluster.nodes if cluster.nodes[n] is not leader),
                   key=lambda n: address[n] > leader.config.raft_address)
    for k in range(SMALL_WRITES):
        _put(leader, b"snap/%04d" % k, os.urandom(VALUE_BYTES))
    cluster.compact_all()
    cluster.stop(follower)
    shutil.rmtree(cluster.base / follower)
    # Every member's, so that a leader elected midway tampers as well.
    serializers = [raft_testing.snapshot_serializer(node._replica) for node in cluster.nodes.values()]
    for serializer in serializers:
        serializer.getTransmissionData = functools.partial(_tampered, tamper,
                                                           serializer.getTransmissionData)
    try:
        cluster.start(follower)
        cluster.wait_applied(cluster.nodes[follower], leader.status().applied_index)
    finally:
        for serializer in serializers:
            del serializer.getTransmissionData
    return leader, follower


def _tampered(tamper, get_chunk, node):
    return tamper(node, get_chunk)


def test_a_snapshot_transfer_cut_by_a_lost_connection_starts_again_from_its_first_byte(tmp_path):
    cluster = _SteadyCluster(tmp_path)
    cluster.start()
    sent: list[tuple[bool, bool]] = []  # (first, last) of each chunk sent
    cut_after = []

    def cut_the_connection_once(node, get_chunk):
        chunk = get_chunk(node)
        if chunk:
            sent.append(chunk[1:])
            if len(sent) == 10 and not cut_after:
                cut_after.append(len(sent))
                # Cut the connection as its timeout does; the side that
                # connects tries again at once (not a second later), so the
                # follower is back before the leader's next append round.
                for name in cluster.nodes:
                    raft_testing.reconnect_at_once(cluster.nodes[name]._replica)
                raft_testing.drop_connection(cluster.leader()._replica, node)
        return chunk

    try:
        leader, follower = _wiped_follower_installing(cluster, cut_the_connection_once)
        assert _stored(cluster.nodes[follower], b"snap/") == SMALL_WRITES
    finally:
        cluster.stop()
    assert cut_after == [10] and sent[0] == (True, False)
    # The chunk after the cut is a transfer's first: nothing is appended to
    # what the follower received before the cut.
    assert sent[10] == (True, False), sent[:12]
    assert sent[-1] == (False, True)


def test_a_follower_refuses_a_transfer_that_lost_a_chunk_and_installs_the_resend(tmp_path, caplog):
    cluster = _SteadyCluster(tmp_path)
    cluster.start()
    sent, dropped = [], []

    def lose_one_chunk(node, get_chunk):
        chunk = get_chunk(node)
        if chunk:
            sent.append(chunk[1:])
            if len(sent) == 20 and not dropped:  # inside the image, past the header
                dropped.append(len(chunk[0]))
                chunk = get_chunk(node)  # the one read before is never sent
        return chunk

    try:
        with caplog.at_level(logging.ERROR, logger="tandemkv.server.raft.snapshot_transfer"):
            leader, follower = _wiped_follower_installing(cluster, lose_one_chunk)
        assert _stored(cluster.nodes[follower], b"snap/") == SMALL_WRITES
    finally:
        cluster.stop()
    assert dropped == [CHUNK_BYTES]
    refusals = [r.getMessage() for r in caplog.records if "refused the snapshot" in r.getMessage()]
    assert len(refusals) == 1 and "its header declares" in refusals[0], refusals


CONNECTION_TIMEOUT_S = 1.5
SLOW_CHUNK_S = 0.05  # a leader this slow takes some 4 s over 80 chunks


class _ShortConnectionTimeoutCluster(_SteadyCluster):
    def timings(self) -> RaftTimings:
        # The member's connection timeout is at least its longest election timeout.
        return dataclasses.replace(STEADY, election_timeout_max_s=CONNECTION_TIMEOUT_S,
                                   connection_timeout_s=CONNECTION_TIMEOUT_S)


def test_a_transfer_longer_than_the_connection_timeout_completes(tmp_path):
    """A follower receiving a snapshot answers each chunk: the leader's
    connection, which sees no other data from it, stays open. Without the
    answers it timed out during every attempt and the transfer started
    over forever (the follower never caught up)."""
    cluster = _ShortConnectionTimeoutCluster(tmp_path)
    cluster.start()
    sent = []

    def slow_transfer(node, get_chunk):
        chunk = get_chunk(node)
        if chunk:
            sent.append(chunk[1:])
            time.sleep(SLOW_CHUNK_S)  # the transfer's pace, not a wait for a condition
        return chunk

    try:
        leader, follower = _wiped_follower_installing(cluster, slow_transfer)
        assert _stored(cluster.nodes[follower], b"snap/") == SMALL_WRITES
    finally:
        cluster.stop()
    assert len(sent) * SLOW_CHUNK_S > 2 * CONNECTION_TIMEOUT_S
    assert sent[-1] == (False, True)
