"""Job progress and worker heartbeats on a 3-node cluster (embedded nodes in
this process): written on one node, seen on the others by gossip, never a
Raft write per report or beat.

- heartbeats: after the first (which catalogues the workers table), twenty
  beats leave every member's Raft commit index where it was (no lease
  exists, so nothing else writes), and another node lists the worker with
  its last running count; a stopping beat removes it everywhere;
- progress: after the first report, ten more make no proposal on the node
  that takes them; another node's get shows the last one; a complete there
  removes it on every node, and a report under the ended claim's token is
  refused;
- the sweep: a report whose claim was lost (lease revoked) and a worker
  past JOB_WORKER_STALE_MS (set to 0 here) leave when a node sweeps.

Method: the `Cluster` harness of test_embedded_node.py; every wait polls
with a deadline and says what it last saw.
"""

from __future__ import annotations

import time

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition
from tandemkv.server.available import job_board as rules
from tests.test_embedded_node import READY_S, Cluster

POLL_S = 0.05


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("job-board"))
    c.start()
    yield c
    c.stop()


def eventually(read, check, what: str):
    deadline = time.monotonic() + READY_S
    while True:
        seen = read()
        if check(seen):
            return seen
        assert time.monotonic() < deadline, f"{what} within {READY_S} s; last saw {seen!r}"
        time.sleep(POLL_S)


def commit_indexes(cluster) -> dict[str, int]:
    return {name: node.status().commit_index for name, node in cluster.nodes.items()}


def settled_commit_indexes(cluster) -> dict[str, int]:
    """Every member's commit index, once all agree (the last write reached all)."""
    return eventually(lambda: commit_indexes(cluster), lambda seen: len(set(seen.values())) == 1,
                      "every member at one commit index")


def stored_progress(node, job_id: int):
    return node.crdt.read(rules.PROGRESS_TABLE, rules.progress_key(job_id)).value


def test_heartbeats_reach_every_node_without_a_raft_write(cluster):
    leader = cluster.leader()
    a, b, c = [cluster.nodes[name] for name in sorted(cluster.nodes)]
    a.jobs.heartbeat(b"mail", "host-1/41", running=0)  # catalogues the table: one Raft write, once
    eventually(lambda: [w.worker for w in b.jobs.workers(b"mail").workers], lambda seen: seen == ["host-1/41"],
               "the first worker listed on another node")
    before = settled_commit_indexes(cluster)
    for running in range(1, 21):
        a.jobs.heartbeat(b"mail", "host-1/41", running=running)
    b_workers = eventually(lambda: list(b.jobs.workers(b"mail").workers),
                           lambda seen: [w.running for w in seen] == [20], "the last beat on another node")
    assert b_workers[0].node == a.config.name and b_workers[0].queue == b"mail"
    eventually(lambda: [w.running for w in c.jobs.workers().workers if w.queue == b"mail"],
               lambda seen: seen == [20], "the last beat on a third node")
    assert commit_indexes(cluster) == before, "a heartbeat was written through Raft"
    assert leader.status().commit_index == before[leader.config.name]

    a.jobs.heartbeat(b"mail", "host-1/41", stopping=True)
    eventually(lambda: list(c.jobs.workers(b"mail").workers), lambda seen: seen == [],
               "a stopping worker gone from a third node")


def test_progress_is_written_locally_seen_elsewhere_and_removed_on_complete(cluster, monkeypatch):
    leader = cluster.leader()
    a, b, _ = [cluster.nodes[name] for name in sorted(cluster.nodes)]
    job_id = leader.jobs.enqueue(b"render", b"frame-1", timeout_s=10).id
    lease = leader.lease_grant(30_000).id
    (job,) = leader.jobs.claim(b"render", lease).jobs
    cluster.wait_applied(a, job.token)
    a.jobs.progress(job_id, job.token, 1, "starting")  # catalogues the table: one Raft write, once

    proposals = []
    for name in ("propose", "propose_async"):
        original = getattr(a, name)
        monkeypatch.setattr(a, name, lambda *args, _original=original, **kw: (proposals.append(args),
                                                                               _original(*args, **kw))[1])
    for percent in range(10, 101, 10):
        a.jobs.progress(job_id, job.token, percent, f"frame at {percent}%")
    assert proposals == [], "a progress report was proposed to Raft"

    cluster.wait_applied(b, job.token)
    shown = eventually(lambda: b.jobs.get(job_id, stale=True),
                       lambda answer: answer.HasField("progress") and answer.progress.progress == 100,
                       "the last progress on another node")
    assert shown.progress.note == "frame at 100%" and shown.progress.token == job.token
    assert shown.progress.node == a.config.name

    b.jobs.complete(job_id, job.token, b"done", timeout_s=10)
    assert stored_progress(b, job_id) is None  # removed at once where the claim ended
    eventually(lambda: stored_progress(a, job_id), lambda value: value is None, "the removal gossiped back")
    cluster.wait_applied(a, leader.status().commit_index)
    assert not a.jobs.get(job_id, stale=True).HasField("progress")
    with pytest.raises(FailedPrecondition, match="stale"):
        a.jobs.progress(job_id, job.token, 100, "late")
    leader.lease_revoke(lease)


def test_a_sweep_removes_progress_of_a_lost_claim_and_stale_workers(cluster, monkeypatch):
    leader = cluster.leader()
    a, b, _ = [cluster.nodes[name] for name in sorted(cluster.nodes)]
    job_id = leader.jobs.enqueue(b"sweep", b"x", timeout_s=10).id
    lease = leader.lease_grant(30_000).id
    (job,) = leader.jobs.claim(b"sweep", lease).jobs
    cluster.wait_applied(a, job.token)
    a.jobs.progress(job_id, job.token, 50, "half")
    a.jobs.heartbeat(b"sweep", "old-worker", running=1)
    revoked = leader.lease_revoke(lease)  # the claim is lost: the job is available again
    cluster.wait_applied(b, revoked.header.revision)
    eventually(lambda: stored_progress(b, job_id), lambda value: value is not None, "the report gossiped")
    assert not b.jobs.get(job_id, stale=True).HasField("progress")  # shown only for the current claim

    monkeypatch.setattr(limits, "JOB_WORKER_STALE_MS", -1)  # every worker is stale now
    assert b.jobs.board.sweep() >= 2
    assert stored_progress(b, job_id) is None
    eventually(lambda: stored_progress(a, job_id), lambda value: value is None, "the sweep's removal gossiped")
    monkeypatch.undo()
    eventually(lambda: [w.worker for w in a.jobs.workers(b"sweep").workers], lambda seen: seen == [],
               "the stale worker gone from the node it beat on")
