"""The job queue through the SDK against real `tandemkv serve` processes:
enqueue on one node, claim through another, a worker process killed with
its claim (the job comes back when its lease expires, and its late token
is refused), and a leader killed with jobs queued (the queue survives).

Method: a 3-node `ServeCluster`; the worker is a child process that claims
under a lease it keeps alive, prints its claim, and is killed -9. Every
wait is bounded and polls a condition.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

from tandemkv.client import AsyncClient, Client, FailedPrecondition, Retry
from tests.support.cluster import ServeCluster

LEADER_TIMEOUT_S = 60.0
WAIT_S = 30.0
POLL_S = 0.05
FAILOVER_RETRY = Retry(deadline_s=30.0, attempts_max=60, backoff_max_s=0.5)

WORKER = textwrap.dedent("""
    import sys, time
    from tandemkv.client import Client
    with Client(sys.argv[1].split(",")) as client:
        with client.lease(ttl_s=1.0) as lease:
            (job,) = client.jobs.claim("work", lease.id)
            print(job.id, job.token, flush=True)
            time.sleep(120)  # until killed
""")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("jobs"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_S)
    raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}")


def test_enqueued_on_one_node_claimed_through_another_completed_once(cluster):
    first, _, third = cluster.endpoints
    with Client([first], retry=FAILOVER_RETRY) as producer, Client([third], retry=FAILOVER_RETRY) as worker:
        job_id = producer.jobs.enqueue("mail", b"hello", unique_key="greeting")
        assert producer.jobs.enqueue("mail", b"again", unique_key="greeting") == job_id
        with worker.lease(ttl_s=10) as lease:
            (job,) = worker.jobs.claim("mail", lease.id, limit=4)
            assert (job.id, job.args, job.state, job.attempt) == (job_id, b"hello", "claimed", 1)
            done = worker.jobs.complete(job.id, job.token, b"sent")
        assert done.state == "completed"
        assert producer.jobs.get(job_id).result == b"sent"
        (stats,) = producer.jobs.stats("mail")
        assert stats.completed == 1 and stats.available == stats.claimed == 0


def test_a_killed_workers_job_comes_back_and_its_late_token_is_refused(cluster):
    endpoints = ",".join(cluster.endpoints)
    with Client(cluster.endpoints, retry=FAILOVER_RETRY) as client:
        job_id = client.jobs.enqueue("work", b"task")
        worker = subprocess.Popen([sys.executable, "-c", WORKER, endpoints], stdout=subprocess.PIPE, text=True)
        try:
            line = worker.stdout.readline()
            claimed_id, stale_token = map(int, line.split())
            assert claimed_id == job_id and client.jobs.get(job_id).state == "claimed"
        finally:
            worker.kill()
            worker.wait(timeout=WAIT_S)
            worker.stdout.close()
        wait_until(lambda: client.jobs.get(job_id).state == "available", "the dead worker's job to return")
        with client.lease(ttl_s=10) as lease:
            (job,) = client.jobs.claim("work", lease.id)
            assert job.id == job_id and job.attempt == 2 and job.token > stale_token
            with pytest.raises(FailedPrecondition, match=f"current token {job.token}"):
                client.jobs.complete(job_id, stale_token)
            assert client.jobs.complete(job_id, job.token).state == "completed"


def test_the_queue_survives_a_leader_kill(cluster):
    with Client(cluster.endpoints, retry=FAILOVER_RETRY) as client:
        ids = [client.jobs.enqueue("durable", str(k), priority=k % 2) for k in range(5)]
        leader = cluster.wait_for_leader(LEADER_TIMEOUT_S)
        cluster.kill(leader)
        try:
            cluster.wait_for_leader(LEADER_TIMEOUT_S)
            (stats,) = client.jobs.stats("durable")
            assert stats.available == 5
            with client.lease(ttl_s=10) as lease:
                claimed = client.jobs.claim("durable", lease.id, limit=10)
                assert [job.id for job in claimed] == ids[0::2] + ids[1::2]
                for job in claimed:
                    client.jobs.complete(job.id, job.token)
        finally:
            cluster.restart(leader)
            cluster.wait_for_leader(LEADER_TIMEOUT_S)


def test_the_async_client_shares_the_queue(cluster):
    async def scenario():
        async with AsyncClient(cluster.endpoints, retry=FAILOVER_RETRY) as client:
            job_id = await client.jobs.enqueue("async", b"x", max_attempts=1)
            lease = await client.lease(ttl_s=10)
            try:
                (job,) = await client.jobs.claim("async", lease.id)
                dead = await client.jobs.fail(job.id, job.token, "boom")
            finally:
                await lease.revoke()
            page = await client.jobs.list("async", state="dead")
            return job_id, dead, page
    job_id, dead, page = asyncio.run(scenario())
    assert dead.state == "dead" and dead.last_error == "boom"
    assert [job.id for job in page.jobs] == [job_id]
