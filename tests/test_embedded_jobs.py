"""`node.jobs` on embedded nodes: three members in this process.

Covers the embedded front door the SDK does not: enqueue on a follower,
claim and complete through another node, sync and asyncio calls, reads
stale on a follower once it applied, a request id that makes a retried
enqueue apply once, and a scheduled job promoted on the leader's tick
with no write at all.

Method: the `Cluster` harness of test_embedded_node.py; every wait has a
deadline.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition
from tandemkv.v1 import jobs_pb2 as J
from tests.test_embedded_node import READY_S, Cluster


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.stop()


def test_enqueue_on_one_node_claim_and_complete_on_another(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    request_id = os.urandom(limits.REQUEST_ID_BYTES)
    first = follower.jobs.enqueue(b"q", b"args", request_id=request_id, timeout_s=10)
    again = follower.jobs.enqueue(b"q", b"args", request_id=request_id, timeout_s=10)
    assert again.id == first.id and not again.duplicate
    lease = leader.lease_grant(10_000).id
    (job,) = leader.jobs.claim(b"q", lease, limit=5).jobs
    assert job.id == first.id and job.args == b"args"
    done = follower.jobs.complete(job.id, job.token, b"ok")
    assert done.job.state == J.JOB_COMPLETED
    cluster.wait_applied(follower, done.header.revision)
    stale = follower.jobs.get(job.id, stale=True)
    assert stale.found and stale.job.result == b"ok"
    assert follower.jobs.stats(b"q").queues[0].completed == 1


def test_the_async_front_door_and_a_stale_token(cluster):
    node = cluster.leader()

    async def scenario():
        job_id = (await node.jobs.enqueue_async(b"aq", b"x")).id
        lease = node.lease_grant(10_000).id
        (job,) = (await node.jobs.claim_async(b"aq", lease)).jobs
        node.lease_revoke(lease)  # the claim ends with its lease
        with pytest.raises(FailedPrecondition, match="stale"):
            await node.jobs.complete_async(job_id, job.token)
        lease = node.lease_grant(10_000).id
        (again,) = (await node.jobs.claim_async(b"aq", lease)).jobs
        return job, (await node.jobs.fail_async(job_id, again.token, "boom")).job

    job, failed = asyncio.run(scenario())
    assert failed.state == J.JOB_RETRYABLE and failed.attempt == 2 and failed.failures == 1
    listed = node.jobs.list(b"aq", J.JOB_RETRYABLE).jobs
    assert [j.id for j in listed] == [job.id]
    assert node.jobs.cancel(job.id).job.state == J.JOB_CANCELLED


def test_a_scheduled_job_becomes_available_on_time_without_any_write(cluster):
    node = cluster.leader()
    job_id = node.jobs.enqueue(b"later", b"x", run_at_ms=int(time.time() * 1000) + 1_000).id
    assert node.jobs.get(job_id).job.state == J.JOB_SCHEDULED
    deadline = time.monotonic() + READY_S
    # Stale reads propose nothing (a linearizable one's barrier may write).
    while node.jobs.get(job_id, stale=True).job.state != J.JOB_AVAILABLE:
        assert time.monotonic() < deadline, "the scheduled job was never promoted"
        time.sleep(0.05)
    assert node.jobs.stats(b"later", stale=True).queues[0].available == 1


def test_a_queue_limit_set_on_one_node_bounds_claims_on_another(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    for _ in range(3):
        leader.jobs.enqueue(b"lq", b"x", timeout_s=10)
    answer = follower.jobs.set_queue_limit(b"lq", 2, timeout_s=10)
    assert (answer.queue, answer.concurrency_max) == (b"lq", 2)
    lease = leader.lease_grant(10_000).id
    assert len(leader.jobs.claim(b"lq", lease, limit=3).jobs) == 2
    stats = leader.jobs.stats(b"lq").queues[0]
    assert (stats.claimed, stats.available, stats.concurrency_max) == (2, 1, 2)
