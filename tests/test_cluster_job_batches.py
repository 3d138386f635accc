"""`jobs.enqueue_many` and `jobs.settle` through the SDK, both faces, against
real `tandemkv serve` processes: more than JOB_ENQUEUE_MANY_JOBS_MAX items
go in several requests and answer increasing ids in the items' order; a
settle with a stale token and a fresh one reports each outcome (the stale
one refused with its reason, the fresh one recorded) and claims the next
jobs; a settle whose claim_next lease was revoked raises
FailedPrecondition and records nothing; a job named twice, or too many
settlements, is InvalidArgument naming it.

Method: a 3-node `ServeCluster` for the module. Each scenario is written
once, awaiting the jobs calls: the asyncio face runs it on `AsyncClient`,
the blocking face on `Client` with each call wrapped to be awaitable.
Leases come from a blocking client (they are not what is tested here).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tandemkv import limits
from tandemkv.client import AsyncClient, Client, FailedPrecondition, InvalidArgument
from tandemkv.client._jobs import Jobs
from tests.support.cluster import ServeCluster

LEADER_TIMEOUT_S = 60.0
# Long enough that no lease of a test expires while it runs (none is renewed).
LEASE_TTL_S = 60.0
FACES = ["sync", "async"]
settlement = Jobs.settlement


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("job-batches"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


class Awaited:
    """The blocking client's `jobs` with each call awaitable, so one scenario
    runs on both faces."""

    def __init__(self, jobs: Jobs):
        self._jobs = jobs

    def __getattr__(self, name: str):
        method = getattr(self._jobs, name)

        async def call(*args, **kwargs):
            return method(*args, **kwargs)
        return call


def run_on(face: str, cluster: ServeCluster, scenario):
    """Runs `scenario(jobs, leases)` on the face's client; `leases` is a
    blocking client for granting and revoking leases."""
    with Client(cluster.endpoints) as leases:
        if face == "sync":
            with Client(cluster.endpoints) as client:
                return asyncio.run(scenario(Awaited(client.jobs), leases))

        async def on_async_client():
            async with AsyncClient(cluster.endpoints) as client:
                return await scenario(client.jobs, leases)
        return asyncio.run(on_async_client())


@pytest.mark.parametrize("face", FACES)
def test_enqueue_many_past_the_request_limit_answers_increasing_ids_in_order(cluster, face):
    queue = f"many-{face}"
    count = limits.JOB_ENQUEUE_MANY_JOBS_MAX + 250

    async def scenario(jobs, leases):
        ids = await jobs.enqueue_many(queue, [b"%d" % n for n in range(count)], priority=2)
        picked = {n: await jobs.get(ids[n]) for n in (0, limits.JOB_ENQUEUE_MANY_JOBS_MAX - 1,
                                                      limits.JOB_ENQUEUE_MANY_JOBS_MAX, count - 1)}
        return ids, picked, await jobs.stats(queue), await jobs.enqueue_many(queue, [])

    ids, picked, stats, none = run_on(face, cluster, scenario)
    assert len(ids) == count and all(a < b for a, b in zip(ids, ids[1:]))
    assert {n: (job.args, job.priority, job.state) for n, job in picked.items()} == {
        n: (b"%d" % n, 2, "available") for n in picked}
    assert stats[0].available == count and none == []


@pytest.mark.parametrize("face", FACES)
def test_a_settle_with_a_stale_token_and_a_fresh_one_reports_each_and_claims_the_next(cluster, face):
    queue = f"settle-{face}"

    async def scenario(jobs, leases):
        ids = await jobs.enqueue_many(queue, [b"a", b"b", b"c", b"d"])
        first = leases.lease(LEASE_TTL_S)
        (lost,) = await jobs.claim(queue, first.id, limit=1)
        first.revoke()  # the claim ends with its lease: job "a" is available again
        lease = leases.lease(LEASE_TTL_S)
        claimed = await jobs.claim(queue, lease.id, limit=2)  # "a" again, and "b"
        answer = await jobs.settle(queue, [settlement(lost.id, lost.token, result=b"late"),
                                           settlement(claimed[1].id, claimed[1].token, result=b"done")],
                                   lease=lease.id, limit=5)
        after = [await jobs.get(job_id) for job_id in ids[:2]]
        lease.revoke()
        return ids, lost, claimed, answer, after

    ids, lost, claimed, answer, after = run_on(face, cluster, scenario)
    assert [job.id for job in claimed] == ids[:2] and claimed[0].token > lost.token
    stale, fresh = answer.outcomes
    assert (stale.id, stale.settled, stale.state) == (ids[0], False, "claimed")
    assert "stale" in stale.refused and str(claimed[0].token) in stale.refused
    assert (fresh.id, fresh.settled, fresh.refused, fresh.state) == (ids[1], True, "", "completed")
    assert [job.id for job in answer.claimed] == ids[2:] and all(job.token for job in answer.claimed)
    assert after[0].token == claimed[0].token and after[0].result == b""  # the late result not recorded
    assert (after[1].state, after[1].result) == ("completed", b"done")


@pytest.mark.parametrize("face", FACES)
def test_a_settle_whose_claim_next_lease_was_revoked_raises_and_records_nothing(cluster, face):
    queue = f"revoked-{face}"

    async def scenario(jobs, leases):
        await jobs.enqueue_many(queue, [b"a", b"b"])
        lease = leases.lease(LEASE_TTL_S)
        (job,) = await jobs.claim(queue, lease.id, limit=1)
        revoked = leases.lease(LEASE_TTL_S)
        revoked.revoke()
        with pytest.raises(FailedPrecondition, match=f"lease {revoked.id} of claim_next not found") as refused:
            await jobs.settle(queue, [settlement(job.id, job.token, error="boom")], lease=revoked.id, limit=1)
        still, stats = await jobs.get(job.id), await jobs.stats(queue)
        lease.revoke()
        return job, still, refused.value, stats

    job, still, refused, stats = run_on(face, cluster, scenario)
    assert "nothing is claimed" in refused.message
    assert (still.state, still.token, still.failures, still.last_error) == ("claimed", job.token, 0, "")
    assert stats[0].claimed == 1 and stats[0].available == 1  # nothing claimed under the revoked lease


@pytest.mark.parametrize("face", FACES)
def test_a_job_settled_twice_or_too_many_settlements_is_invalid_argument_naming_it(cluster, face):
    queue = f"twice-{face}"

    async def scenario(jobs, leases):
        with pytest.raises(InvalidArgument) as twice:
            await jobs.settle(queue, [settlement(41, 3), settlement(42, 4, error="x"), settlement(41, 5)])
        with pytest.raises(InvalidArgument) as too_many:
            await jobs.settle(queue, [settlement(n, 1) for n in range(1, limits.JOB_SETTLE_JOBS_MAX + 2)])
        return twice.value, too_many.value

    twice, too_many = run_on(face, cluster, scenario)
    assert "settlements[2]: job 41 is settled twice" in twice.message
    assert f"settlements holds {limits.JOB_SETTLE_JOBS_MAX + 1}" in too_many.message
    assert f"JOB_SETTLE_JOBS_MAX={limits.JOB_SETTLE_JOBS_MAX}" in too_many.message
    assert too_many.limit == "JOB_SETTLE_JOBS_MAX" and twice.limit is None  # the limit's name crosses gRPC


def test_a_job_with_the_largest_args_runs_and_completes_with_the_largest_result(cluster):
    # JOB_ARGS_BYTES_MAX is half a command: an Enqueue and a Settle at the limit both fit one.
    largest = bytes(range(256)) * (limits.JOB_ARGS_BYTES_MAX // 256)
    assert len(largest) == limits.JOB_ARGS_BYTES_MAX
    queue = "largest"
    with Client(cluster.endpoints) as client:
        first, second = client.jobs.enqueue(queue, largest), client.jobs.enqueue_many(queue, [largest])[0]
        with client.jobs.worker(queue, lambda job: job.args[::-1], concurrency=2) as worker:
            deadline = time.monotonic() + LEADER_TIMEOUT_S
            while worker.stats().completed < 2:
                assert time.monotonic() < deadline, worker.stats()
                time.sleep(0.05)
        for job_id in (first, second):
            job = client.jobs.get(job_id)
            assert job.state == "completed" and job.args == largest and job.result == largest[::-1]
