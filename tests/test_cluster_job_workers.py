"""The SDK's job workers and run_many, and `tandemkv jobs worker -- COMMAND`,
against a real 3-node cluster: every job completed once, a handler's
exception recorded as the job's failure, the concurrency never exceeded, a
graceful stop that finishes running jobs and releases the rest at once (long
before the lease's TTL), and results in the items' order.

Method: a module-scoped `ServeCluster`; handlers count themselves and block
on events the test sets, so every step waits on a condition (bounded), never
on a sleep. Workers' leases have a TTL far above the test's waits, so a job
available right after a stop was released by the stop, not by expiry.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import sys
import threading
import time

import pytest

from tandemkv.client import AsyncClient, Client, Retry, RunManyFailed
from tests.support.cluster import ServeCluster

LEADER_TIMEOUT_S = 120.0  # nodes elect slowly on a loaded machine
WAIT_S = 60.0
POLL_S = 0.05
LONG_TTL_S = 120.0  # far above every wait here: a lease that ends in a test was revoked
FAILOVER_RETRY = Retry(deadline_s=30.0, attempts_max=60, backoff_max_s=0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("workers"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


@pytest.fixture
def client(cluster):
    with Client(cluster.endpoints, retry=FAILOVER_RETRY) as client:
        yield client


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_S)
    raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}")


class Counting:
    """A handler's bookkeeping: runs per job id, and the most at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.runs: collections.Counter[int] = collections.Counter()
        self.now = self.peak = 0

    def enter(self, job_id: int) -> None:
        with self.lock:
            self.runs[job_id] += 1
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


def test_a_thread_worker_completes_every_job_once_within_its_concurrency(client):
    ids = [client.jobs.enqueue("sync-all", str(k)) for k in range(60)]
    counting = Counting()
    gate = threading.Barrier(4, timeout=WAIT_S)  # the first four handlers meet: the slots fill up

    def handler(job):
        counting.enter(job.id)
        try:
            if int(job.args) < 4:
                gate.wait()
            return b"done " + job.args
        finally:
            counting.leave()

    with client.jobs.worker("sync-all", handler, concurrency=4, lease_ttl_s=LONG_TTL_S) as worker:
        wait_until(lambda: worker.stats().completed == 60, "60 completions")
    assert counting.peak == 4
    assert set(counting.runs) == set(ids) and set(counting.runs.values()) == {1}
    assert [client.jobs.get(job_id).result for job_id in ids[:3]] == [b"done 0", b"done 1", b"done 2"]
    (stats,) = client.jobs.stats("sync-all")
    assert (stats.completed, stats.available, stats.claimed) == (60, 0, 0)
    assert worker.stats().lost == 0 and worker.stopped


def test_a_handlers_exception_fails_its_job_with_the_message(client):
    job_id = client.jobs.enqueue("sync-fail", b"7", max_attempts=1)

    def handler(job):
        raise ValueError(f"bad input {job.args.decode()}")

    with client.jobs.worker("sync-fail", handler, concurrency=2, lease_ttl_s=LONG_TTL_S) as worker:
        wait_until(lambda: worker.stats().failed == 1, "the failure to be recorded")
    job = client.jobs.get(job_id)
    assert (job.state, job.last_error) == ("dead", "ValueError: bad input 7")


def test_a_graceful_stop_finishes_running_jobs_and_releases_the_rest_at_once(client):
    quick_id = client.jobs.enqueue("sync-stop", b"quick", priority=0)
    slow_id = client.jobs.enqueue("sync-stop", b"slow", priority=1)
    started = {b"quick": threading.Event(), b"slow": threading.Event()}
    finish = {b"quick": threading.Event(), b"slow": threading.Event()}

    def handler(job):
        started[job.args].set()
        finish[job.args].wait(WAIT_S)
        return b"first worker"

    first = client.jobs.worker("sync-stop", handler, concurrency=2, lease_ttl_s=LONG_TTL_S, grace_s=1.0)
    first.start()
    try:
        assert started[b"quick"].wait(WAIT_S) and started[b"slow"].wait(WAIT_S)
        first.request_stop(graceful=True)
        late_id = client.jobs.enqueue("sync-stop", b"late")  # a stopping worker claims nothing
        finish[b"quick"].set()
        first.stop(graceful=True)  # returns once the grace is over and the lease revoked
        assert client.jobs.get(quick_id).state == "completed"
        assert client.jobs.get(slow_id).state == "available"  # released, though the lease had 120 s left
        assert client.jobs.get(late_id).state == "available"
        assert (first.stats().completed, first.stats().released) == (1, 1)

        second = client.jobs.worker("sync-stop", lambda job: b"second worker", lease_ttl_s=LONG_TTL_S)
        with second:
            wait_until(lambda: second.stats().completed == 2, "the second worker to run the released jobs")
    finally:
        finish[b"slow"].set()  # the first worker's thread returns: its outcome is dropped
        first.stop(graceful=False)
    slow = client.jobs.get(slow_id)
    assert (slow.state, slow.result, slow.attempt) == ("completed", b"second worker", 2)


def test_run_many_returns_results_in_order_and_names_failed_items(client):
    def square(job):
        if job.args == b"13":
            raise ArithmeticError("unlucky")
        return str(int(job.args) ** 2)

    with client.jobs.worker("squares", square, concurrency=3, lease_ttl_s=LONG_TTL_S), \
            client.jobs.worker("squares", square, concurrency=3, lease_ttl_s=LONG_TTL_S):
        items = [str(k) for k in range(40) if k != 13]
        assert client.jobs.run_many("squares", items) == [str(int(k) ** 2).encode() for k in items]
        with pytest.raises(RunManyFailed, match=r"1 of 3 items did not complete: item 1 \(job \d+\): dead: "
                                                r"ArithmeticError: unlucky") as raised:
            client.jobs.run_many("squares", ["12", "13", "14"], max_attempts=1)
    assert raised.value.results == [b"144", None, b"196"]


def test_async_run_many_enqueues_in_few_requests_and_returns_results_in_order(cluster):
    async def scenario():
        async with AsyncClient(cluster.endpoints, retry=FAILOVER_RETRY) as client:
            sent = []
            real_run = client.run

            async def counting_run(operation, **kwargs):
                sent.append(operation.method)
                return await real_run(operation, **kwargs)

            client.run = counting_run

            async def double(job):
                return str(2 * int(job.args))

            items = [str(k) for k in range(1_500)]
            async with client.jobs.worker("doubles", double, concurrency=16, lease_ttl_s=LONG_TTL_S):
                results = await client.jobs.run_many("doubles", items)
            assert results == [str(2 * int(k)).encode() for k in items]
            assert sent.count("EnqueueMany") == 2 and "Enqueue" not in sent  # 1,500 items: two requests
    asyncio.run(scenario())


def test_an_async_worker_runs_jobs_as_tasks_and_cancels_what_outlives_the_grace(cluster):
    async def scenario():
        async with AsyncClient(cluster.endpoints, retry=FAILOVER_RETRY) as client:
            counting = Counting()
            hold = asyncio.Event()

            async def handler(job):
                counting.enter(job.id)
                try:
                    if job.args == b"boom":
                        raise RuntimeError("async boom")
                    if job.args == b"hold":
                        await hold.wait()  # until cancelled at the stop
                    await asyncio.sleep(0)
                    return job.args.upper()
                finally:
                    counting.leave()

            worker = client.jobs.worker("async-all", handler, concurrency=5, lease_ttl_s=LONG_TTL_S, grace_s=0.5)
            async with worker:
                results = await client.jobs.run_many("async-all", [f"item{k}" for k in range(30)])
                dead_id = await client.jobs.enqueue("async-all", b"boom", max_attempts=1)
                held_id = await client.jobs.enqueue("async-all", b"hold")
                while worker.stats().failed < 1 or worker.stats().running < 1:
                    await asyncio.sleep(POLL_S)
            return results, await client.jobs.get(dead_id), await client.jobs.get(held_id), worker.stats(), counting

    results, dead, held, stats, counting = asyncio.run(asyncio.wait_for(scenario(), WAIT_S))
    assert results == [f"ITEM{k}".encode() for k in range(30)]
    assert (dead.state, dead.last_error) == ("dead", "RuntimeError: async boom")
    assert held.state == "available" and stats.released == 1  # cancelled and released at the stop
    assert counting.peak <= 5 and set(counting.runs.values()) == {1} and counting.now == 0


SCRIPT = 'read -r word; if [ "$word" = fail ]; then echo "no good: $word" >&2; exit 3; fi; ' \
         'echo "job $TANDEMKV_JOB_ID attempt $TANDEMKV_JOB_ATTEMPT: $word"'


def test_the_cli_worker_runs_a_command_per_job_and_stops_on_sigterm(cluster, client):
    ok_id = client.jobs.enqueue("cli", b"hello\n")
    fail_id = client.jobs.enqueue("cli", b"fail\n", max_attempts=1)
    worker = subprocess.Popen(
        [sys.executable, "-m", "tandemkv.server.cli", "jobs", "worker", "cli", "--concurrency", "2",
         "--lease-ttl", str(LONG_TTL_S), "--endpoints", ",".join(cluster.endpoints), "--output", "json",
         "--", "sh", "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: client.jobs.get(ok_id).state == "completed"
                   and client.jobs.get(fail_id).state == "dead", "both jobs to finish")
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=WAIT_S)
    finally:
        worker.kill()
    assert worker.returncode == 0, err
    assert client.jobs.get(ok_id).result == f"job {ok_id} attempt 1: hello\n".encode()
    assert client.jobs.get(fail_id).last_error == "CommandFailed: exit 3; stderr: no good: fail"
    assert '"completed": 1, "failed": 1' in out and "stopping" in err


def test_an_async_handler_past_its_jobs_timeout_is_cancelled_and_the_job_failed(cluster):
    async def scenario():
        async with AsyncClient(cluster.endpoints, retry=FAILOVER_RETRY) as client:
            cancelled = asyncio.Event()

            async def handler(job):
                try:
                    await asyncio.Event().wait()  # never set: only the timeout ends it
                except asyncio.CancelledError:
                    cancelled.set()
                    raise

            job_id = await client.jobs.enqueue("async-timeout", b"", max_attempts=1, timeout_s=1.0)
            async with client.jobs.worker("async-timeout", handler, lease_ttl_s=LONG_TTL_S):
                await cancelled.wait()
                while (await client.jobs.get(job_id)).state != "dead":
                    await asyncio.sleep(POLL_S)
            return await client.jobs.get(job_id)

    job = asyncio.run(asyncio.wait_for(scenario(), WAIT_S))
    # The worker's fail or the cluster's own timeout, whichever came first: one failure either way.
    assert job.failures == 1 and job.last_error.startswith("timed out")
