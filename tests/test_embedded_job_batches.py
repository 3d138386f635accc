"""`node.jobs.enqueue_many` and `node.jobs.settle` on embedded nodes: three
members in this process.

Covers the embedded front door of the two batch writes: many jobs enqueued
through a follower in one entry (ids increasing in order, a repeated
unique key answering the earlier job, a retry by request id applying
once), a settle whose settlements are each fenced alone (a stale token
refused with its reason while a fresh one completes and another fails),
a settle whose claim_next lease is gone refused whole, and a settle that
claims the next jobs.

Method: the `Cluster` harness of test_embedded_node.py; every wait has a
deadline.
"""

from __future__ import annotations

import os

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument
from tandemkv.server.node.jobs import enqueue_request
from tandemkv.v1 import jobs_pb2 as J
from tests.test_embedded_node import Cluster

LEASE_TTL_MS = 10_000


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.stop()


def test_enqueue_many_through_a_follower_and_settle_each_fenced_alone(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    request_id = os.urandom(limits.REQUEST_ID_BYTES)
    jobs = [J.JobEnqueueRequest(args=b"a"), enqueue_request(b"", b"b", unique_key=b"k", priority=1),
            J.JobEnqueueRequest(args=b"c"), enqueue_request(b"", b"d", unique_key=b"k")]
    answer = follower.jobs.enqueue_many(b"batch", jobs, request_id=request_id, timeout_s=10)
    ids = [job.id for job in answer.jobs]
    assert ids[0] < ids[1] < ids[2] and ids[3] == ids[1]
    assert [job.duplicate for job in answer.jobs] == [False, False, False, True]
    again = follower.jobs.enqueue_many(b"batch", jobs, request_id=request_id, timeout_s=10)
    assert [job.id for job in again.jobs] == ids  # the retry answered the first result
    assert follower.jobs.stats(b"batch").queues[0].available == 3

    old_lease = leader.lease_grant(LEASE_TTL_MS).id
    (first_claim,) = leader.jobs.claim(b"batch", old_lease, limit=1).jobs  # priority 0, lowest id: "a"
    leader.lease_revoke(old_lease)  # the claim ends with its lease; "a" is available again
    lease = leader.lease_grant(LEASE_TTL_MS).id
    claimed = {job.args: job for job in leader.jobs.claim(b"batch", lease, limit=3).jobs}
    assert set(claimed) == {b"a", b"b", b"c"} and claimed[b"a"].token > first_claim.token
    settled = follower.jobs.settle(b"batch", [
        J.JobSettlement(id=first_claim.id, token=first_claim.token, result=b"late"),
        J.JobSettlement(id=claimed[b"b"].id, token=claimed[b"b"].token, result=b"done"),
        J.JobSettlement(id=claimed[b"c"].id, token=claimed[b"c"].token, failed=True, error="boom"),
    ], timeout_s=10)
    stale, done, failed = settled.outcomes
    assert (stale.id, stale.settled, stale.state) == (first_claim.id, False, J.JOB_CLAIMED)
    assert str(claimed[b"a"].token) in stale.refused  # names the current claim's token
    assert (done.settled, done.state) == (True, J.JOB_COMPLETED)
    assert (failed.settled, failed.state) == (True, J.JOB_RETRYABLE)
    assert not settled.claimed
    cluster.wait_applied(follower, settled.header.revision)
    assert follower.jobs.get(claimed[b"b"].id, stale=True).job.result == b"done"
    assert follower.jobs.get(claimed[b"c"].id, stale=True).job.last_error == "boom"
    assert follower.jobs.get(first_claim.id, stale=True).job.state == J.JOB_CLAIMED  # the late result not taken


def test_a_settle_whose_claim_next_lease_is_gone_records_nothing_and_one_alive_claims_the_next(cluster):
    node = cluster.leader()
    ids = [job.id for job in node.jobs.enqueue_many(b"next", [J.JobEnqueueRequest(args=b"%d" % n)
                                                               for n in range(4)]).jobs]
    lease = node.lease_grant(LEASE_TTL_MS).id
    (job,) = node.jobs.claim(b"next", lease, limit=1).jobs
    gone = node.lease_grant(LEASE_TTL_MS).id
    node.lease_revoke(gone)
    settlement = J.JobSettlement(id=job.id, token=job.token, result=b"r")
    with pytest.raises(FailedPrecondition, match=f"lease {gone} of claim_next not found"):
        node.jobs.settle(b"next", [settlement], claim_lease=gone, claim_limit=2)
    assert node.jobs.get(job.id).job.state == J.JOB_CLAIMED  # the valid settlement was not recorded
    answer = node.jobs.settle(b"next", [settlement], claim_lease=lease, claim_limit=2)
    assert answer.outcomes[0].settled and [j.id for j in answer.claimed] == ids[1:3]
    assert all(j.token > job.token and j.lease == lease for j in answer.claimed)
    with pytest.raises(InvalidArgument, match=f"job {ids[1]} is settled twice"):
        node.jobs.settle(b"next", [J.JobSettlement(id=ids[1], token=answer.claimed[0].token)] * 2)
