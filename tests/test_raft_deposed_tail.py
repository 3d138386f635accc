"""A deposed leader's unreplicated tail is never acknowledged, even when
the new leader catches it up with a snapshot (embedded nodes on 127.0.0.1).

The leader is cut off and a write sent to it: the write reaches its log
only. The two others elect a leader, write past a snapshot's chunk size and
compact their logs beyond the cut-off leader's, so that, healed, it can
only be caught up with a snapshot sent in chunks. The write's caller must
not be told it succeeded unless the cluster holds it: pysyncobj raised a
follower's commit index on every snapshot chunk and so committed and
applied the deposed leader's own tail (server/raft/progress.py,
`cap_snapshot_commit`; the handler alone, over a stand-in for pysyncobj's
commit update, is checked in tests/test_raft_internals.py).
"""

from __future__ import annotations

import os
import threading
import time

from tandemkv import errors, limits
from tandemkv.server.raft.contract import ROLE_LEADER
from tandemkv.server.raft.testing import isolate, last_log_index, log_first_index
from tandemkv.v1 import kv_pb2
from tests.test_membership_node import READY_TIMEOUT_S, Nodes, wait_until

# The cut-off leader's write waits this long for its outcome (it is told
# at the snapshot's install, well before).
STALE_WRITE_TIMEOUT_S = 60.0
# Values written meanwhile: together several snapshot chunks.
VALUE_BYTES = 4096
KEYS = 3 * limits.RAFT_SNAPSHOT_CHUNK_BYTES // VALUE_BYTES
POLL_S = 0.02


def _other_leader(nodes: Nodes, deposed) -> object:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for node in nodes.nodes.values():
            if node is not deposed and node.status().role == ROLE_LEADER:
                return node
        time.sleep(POLL_S)
    raise AssertionError("the two members left never elected a leader")


def test_a_write_on_a_deposed_leader_caught_up_by_a_snapshot_is_not_acknowledged(tmp_path):
    nodes = Nodes(tmp_path)
    try:
        first = [nodes.members[n] for n in ("n1", "n2", "n3")]
        for name in ("n1", "n2", "n3"):
            nodes.start(name, first)
        old_leader = nodes.leader()
        old_leader.propose(kv_pb2.PutRequest(key=b"before", value=b"v"), timeout_s=READY_TIMEOUT_S)
        tail_index = old_leader.status().commit_index
        heal = isolate(old_leader._replica)

        outcome: dict[str, object] = {}

        def stale_write() -> None:
            try:
                outcome["response"] = old_leader.propose(kv_pb2.PutRequest(key=b"stale", value=b"v"),
                                                         timeout_s=STALE_WRITE_TIMEOUT_S)
            except errors.TandemKVError as error:
                outcome["error"] = error

        writer = threading.Thread(target=stale_write, name="stale-write")
        writer.start()
        wait_until(lambda: last_log_index(old_leader._replica) > tail_index,
                   "the cut-off leader never appended the write to its own log")

        new_leader = _other_leader(nodes, old_leader)
        for k in range(KEYS):
            new_leader.propose(kv_pb2.PutRequest(key=b"k%d" % k, value=os.urandom(VALUE_BYTES)),
                               timeout_s=READY_TIMEOUT_S)
        new_leader.compact()
        wait_until(lambda: log_first_index(new_leader._replica) > last_log_index(old_leader._replica),
                   "the new leader never compacted past the deposed leader's log")
        heal()
        wait_until(lambda: old_leader.status().applied_index >= new_leader.status().commit_index,
                   "the deposed leader never caught up from the snapshot")
        writer.join(STALE_WRITE_TIMEOUT_S)
        assert not writer.is_alive()

        held = new_leader.get(b"stale").found
        if "response" in outcome:
            assert held, "the deposed leader acknowledged a write no other member holds"
        else:
            # Told at the install, not at its deadline (the log that held it is gone).
            assert isinstance(outcome["error"], errors.OutcomeUnknown), outcome
        caught_up = old_leader.get(b"k%d" % (KEYS - 1), consistency=kv_pb2.STALE)
        assert caught_up.found and len(caught_up.kv.value) == VALUE_BYTES
        assert old_leader.get(b"stale", consistency=kv_pb2.STALE).found == held
    finally:
        nodes.stop()

