"""`tandemkv jobs show` with a claim's progress, `tandemkv jobs workers
[QUEUE]`, and `jobs enqueue --max-lost-claims`, through subprocesses
against a real one-node cluster; the SDK's progress and heartbeat calls
(sync and asyncio) are the worker's side. Bad input exits 2 with one line
naming what to fix.

Method: a `ServeCluster` of one node shared by the module; every call has
a timeout.
"""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from tandemkv.client import AsyncClient, Client
from tandemkv.errors import FailedPrecondition, InvalidArgument
from tests.support.cluster import ServeCluster
from tests.support.local_up import TANDEMKV

LEADER_TIMEOUT_S = 60.0
# Workers stay listed this long after a beat here: on a loaded machine one
# command can take longer than the default JOB_WORKER_STALE_MS to start.
WORKER_STALE_MS = 10 * 60 * 1000


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("cli-job-board"), nodes=1,
                      limits={"JOB_WORKER_STALE_MS": WORKER_STALE_MS}) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield ",".join(cluster.endpoints)


def cli(endpoints: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TANDEMKV, *args, "--endpoints", endpoints], capture_output=True, text=True,
                          timeout=120)


def test_show_prints_the_claims_progress_and_workers_lists_beats(endpoints):
    enqueued = cli(endpoints, "jobs", "enqueue", "render", "frame", "--max-lost-claims", "3")
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = int(enqueued.stdout)
    with Client(endpoints.split(",")) as client, client.lease(ttl_s=30) as lease:
        (job,) = client.jobs.claim("render", lease.id)
        assert job.max_lost_claims == 3 and job.lost_claims == 0
        client.jobs.heartbeat("render", "host-a/7", running=1)
        client.jobs.progress(job.id, job.token, 40, "frame 4 of 10")
        shown = cli(endpoints, "jobs", "show", str(job_id))
        assert shown.returncode == 0 and "progress: 40% frame 4 of 10" in shown.stdout, shown.stdout
        as_json = json.loads(cli(endpoints, "jobs", "show", str(job_id), "--output", "json").stdout)
        assert as_json["progress"]["progress"] == 40 and as_json["max_lost_claims"] == 3
        listed = cli(endpoints, "jobs", "workers", "render")
        assert listed.returncode == 0 and "host-a/7" in listed.stdout, listed.stdout
        beats = json.loads(cli(endpoints, "jobs", "workers", "--output", "json").stdout)["workers"]
        assert [(b["queue"], b["worker"], b["running"]) for b in beats] == [("render", "host-a/7", 1)]
        client.jobs.complete(job.id, job.token)
        assert client.jobs.get(job.id).progress is None  # removed when the claim ended
        with pytest.raises(FailedPrecondition, match="stale"):
            client.jobs.progress(job.id, job.token, 100)
        client.jobs.heartbeat("render", "host-a/7", stopping=True)
    assert "host-a/7" not in cli(endpoints, "jobs", "workers", "render").stdout


def test_the_asyncio_client_reports_progress_and_beats(endpoints):
    async def scenario():
        async with AsyncClient(endpoints.split(",")) as client:
            job_id = await client.jobs.enqueue("async-q", b"x")
            async with client.lease(ttl_s=30) as lease:
                (job,) = await client.jobs.claim("async-q", lease.id)
                await client.jobs.progress(job_id, job.token, 70, "nearly")
                await client.jobs.heartbeat("async-q", "loop-1", running=1)
                got = await client.jobs.get(job_id)
                beats = await client.jobs.workers("async-q")
                await client.jobs.complete(job_id, job.token)
            return got, beats
    got, beats = asyncio.run(scenario())
    assert got.progress is not None and (got.progress.progress, got.progress.note) == (70, "nearly")
    assert [(b.worker, b.running) for b in beats] == [("loop-1", 1)]


def test_bad_progress_from_the_sdk_is_refused_naming_what_to_fix(endpoints):
    with Client(endpoints.split(",")) as client:
        with pytest.raises(InvalidArgument, match="over 100"):
            client.jobs.progress(1, 1, 101)
        with pytest.raises(InvalidArgument, match="JOB_WORKER_ID_BYTES_MAX"):
            client.jobs.heartbeat("q", "")


@pytest.mark.parametrize("args, says", [
    (("jobs", "workers", "q" * 300), "JOB_QUEUE_BYTES_MAX"),
    (("jobs", "enqueue", "q", "x", "--max-lost-claims", "-1"), "must not be negative"),
    (("jobs", "enqueue", "q", "x", "--max-lost-claims", "100000"), "JOB_MAX_LOST_CLAIMS_MAX"),
    (("--endpoints", "{endpoints}", "jobs", "worker", "q", "--prefetch", "100000", "--", "true"),
     "WORKER_PREFETCH_JOBS_MAX"),
    (("--endpoints", "{endpoints}", "jobs", "worker", "q", "--prefetch", "-1", "--", "true"),
     "WORKER_PREFETCH_JOBS_MAX"),
])
def test_bad_input_exits_2_with_one_line(endpoints, args, says):
    # (the words after `jobs worker ... --` are its command: the endpoints go before)
    result = cli(endpoints, *(arg.format(endpoints=endpoints) for arg in args))
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
