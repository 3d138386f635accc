"""Settle-and-claim through real `tandemkv serve` processes: a complete
carrying claim_next answers the settlement and the next jobs together, a
bad claim_next is INVALID_ARGUMENT naming the field, a stale token claims
nothing, and the SDK worker runs a batch of jobs with every one completed
exactly once (each by its last claim) while its slots settle and claim in
one request.

Method: a 3-node `ServeCluster`; the requests are the SDK's operations
(client/_jobs_ops.py) sent with `Client.run`; every wait is bounded and
polls a condition.
"""

from __future__ import annotations

import time

import pytest

from tandemkv.client import Client, FailedPrecondition, InvalidArgument
from tandemkv.client import _jobs_ops as ops
from tests.support.cluster import ServeCluster

LEADER_TIMEOUT_S = 60.0
WAIT_S = 60.0
POLL_S = 0.05
JOBS = 60


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("settle"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


def test_a_complete_with_claim_next_answers_the_settlement_and_the_next_jobs(cluster):
    with Client(cluster.endpoints) as client, client.lease(ttl_s=10) as lease:
        ids = [client.jobs.enqueue("sc-one", b"%d" % n) for n in range(3)]
        (job,) = client.jobs.claim("sc-one", lease.id)
        settled = client.run(ops.settle_and_claim(ops.complete(job.id, job.token, b"r"), lease.id, 5))
        assert settled.job.state == "completed" and settled.job.result == b"r"
        assert [j.id for j in settled.claimed] == ids[1:]
        assert all(j.token > job.token and j.args for j in settled.claimed)
        with pytest.raises(FailedPrecondition, match="stale"):
            client.run(ops.settle_and_claim(ops.complete(job.id, job.token), lease.id, 5))


def test_a_bad_claim_next_is_invalid_argument_naming_the_field(cluster):
    with Client(cluster.endpoints) as client:
        too_many = ops.complete(1, 1)
        too_many.request.claim_next.lease, too_many.request.claim_next.limit = 7, 10_000
        with pytest.raises(InvalidArgument, match="claim_next.limit .* JOB_CLAIM_JOBS_MAX"):
            client.run(too_many)
        no_lease = ops.fail(1, 1, "x")
        no_lease.request.claim_next.limit = 1
        with pytest.raises(InvalidArgument, match="claim_next.lease"):
            client.run(no_lease)


def test_the_sdk_worker_completes_every_job_once_through_settle_and_claim(cluster):
    with Client(cluster.endpoints) as client:
        ids = [client.jobs.enqueue("sc-many", b"%d" % n) for n in range(JOBS)]
        runs: list[int] = []
        with client.jobs.worker("sc-many", lambda job: runs.append(job.id) or b"x%d" % job.id,
                                concurrency=4) as worker:
            deadline = time.monotonic() + WAIT_S
            while worker.stats().completed < JOBS and time.monotonic() < deadline:
                time.sleep(POLL_S)
        stats = worker.stats()
        assert stats.completed == JOBS and stats.lost == 0 and sorted(runs) == ids
        assert stats.claimed == JOBS  # no job claimed twice
        for job_id in ids:
            job = client.jobs.get(job_id)
            assert job.state == "completed" and job.attempt == 1 and job.result == b"x%d" % job_id


@pytest.mark.parametrize("face", ["threads", "asyncio"])
def test_a_worker_that_claims_ahead_runs_no_more_handlers_at_once_than_its_concurrency(cluster, face):
    queue = f"sc-ahead-{face}"
    concurrency, prefetch = 2, 6
    with Client(cluster.endpoints) as client:
        ids = [client.jobs.enqueue(queue, b"") for _ in range(JOBS)]
    book = {"now": 0, "most": 0, "runs": []}

    def enter(job):
        book["now"] += 1
        book["most"] = max(book["most"], book["now"])
        book["runs"].append(job.id)

    if face == "threads":
        import threading
        lock = threading.Lock()

        def handler(job):
            with lock:
                enter(job)
            time.sleep(0.002)  # a handler that takes a moment, so turns overlap
            with lock:
                book["now"] -= 1
        with Client(cluster.endpoints) as client:
            with client.jobs.worker(queue, handler, concurrency=concurrency, prefetch=prefetch) as worker:
                deadline = time.monotonic() + WAIT_S
                while worker.stats().completed < JOBS and time.monotonic() < deadline:
                    time.sleep(POLL_S)
            stats = worker.stats()
    else:
        import asyncio

        from tandemkv.client import AsyncClient

        async def handler(job):
            enter(job)
            await asyncio.sleep(0.002)
            book["now"] -= 1

        async def scenario():
            async with AsyncClient(cluster.endpoints) as client:
                async with client.jobs.worker(queue, handler, concurrency=concurrency,
                                              prefetch=prefetch) as worker:
                    deadline = time.monotonic() + WAIT_S
                    while worker.stats().completed < JOBS and time.monotonic() < deadline:
                        await asyncio.sleep(POLL_S)
                return worker.stats()
        stats = asyncio.run(scenario())
    assert stats.completed == JOBS and stats.lost == 0 and sorted(book["runs"]) == ids
    assert 1 <= book["most"] <= concurrency
