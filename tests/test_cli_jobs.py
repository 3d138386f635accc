"""`tandemkv jobs ...` through subprocesses against a real one-node
cluster: output, JSON, exit codes, and bad input refused with one line
naming what to fix (no traceback).

Method: a `ServeCluster` of one node shared by the module; jobs are claimed
through the SDK (a claim is a worker's call, not the CLI's).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tandemkv import limits
from tandemkv.client import Client
from tests.support.cluster import ServeCluster
from tests.support.local_up import TANDEMKV

LEADER_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("cli-jobs"), nodes=1) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield ",".join(cluster.endpoints)


def cli(endpoints: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TANDEMKV, *args, "--endpoints", endpoints], capture_output=True, text=True,
                          timeout=120)


def test_enqueue_show_list_stats_and_cancel(endpoints):
    enqueued = cli(endpoints, "jobs", "enqueue", "mail", "hello", "--unique-key", "k1", "--priority", "3")
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = int(enqueued.stdout)
    again = cli(endpoints, "jobs", "enqueue", "mail", "other", "--unique-key", "k1")
    assert int(again.stdout) == job_id
    shown = json.loads(cli(endpoints, "jobs", "show", str(job_id), "--output", "json").stdout)
    assert (shown["args"], shown["state"], shown["priority"]) == ("hello", "available", 3)
    listed = cli(endpoints, "jobs", "list", "--queue", "mail", "--state", "available")
    assert listed.returncode == 0 and str(job_id) in listed.stdout
    stats = json.loads(cli(endpoints, "jobs", "stats", "mail", "--output", "json").stdout)
    assert stats["queues"][0]["available"] == 1
    cancelled = cli(endpoints, "jobs", "cancel", str(job_id))
    assert cancelled.returncode == 0 and "state: cancelled" in cancelled.stdout
    twice = cli(endpoints, "jobs", "cancel", str(job_id))
    assert twice.returncode == 5 and "already cancelled" in twice.stderr
    assert cli(endpoints, "jobs", "retry", str(job_id)).returncode == 0


def test_a_retry_of_a_claimed_job_is_refused_and_a_dead_one_runs_again(endpoints):
    job_id = int(cli(endpoints, "jobs", "enqueue", "fragile", "x", "--max-attempts", "1").stdout)
    with Client(endpoints.split(",")) as client, client.lease(ttl_s=10) as lease:
        (job,) = client.jobs.claim("fragile", lease.id)
        refused = cli(endpoints, "jobs", "retry", str(job_id))
        assert refused.returncode == 5 and "is claimed" in refused.stderr
        client.jobs.fail(job.id, job.token, "boom")
    dead = cli(endpoints, "jobs", "list", "--queue", "fragile", "--state", "dead")
    assert str(job_id) in dead.stdout and "boom" in dead.stdout
    retried = json.loads(cli(endpoints, "jobs", "retry", str(job_id), "--output", "json").stdout)
    assert retried["state"] == "available" and retried["max_attempts"] == 2


@pytest.mark.parametrize("args, code, says", [
    (("jobs", "show", "999999"), 1, "job 999999 not found"),
    (("jobs", "show", "0"), 2, "positive"),
    (("jobs", "enqueue", "q", "x", "--priority", "99"), 2, "JOB_PRIORITY_MAX"),
    (("jobs", "enqueue", "q", "x", "--priority", "-1"), 2, "must not be negative"),
    (("jobs", "enqueue", "q" * 300, "x"), 2, "JOB_QUEUE_BYTES_MAX"),
    (("jobs", "enqueue", "q", "x", "--max-attempts", "100000"), 2, "JOB_MAX_ATTEMPTS_MAX"),
    (("jobs", "list", "--state", "bogus"), 2, "invalid choice"),
    (("jobs", "cancel", "424242"), 5, "not found"),
])
def test_bad_input_exits_with_its_code_and_one_line(endpoints, args, code, says):
    result = cli(endpoints, *args)
    assert result.returncode == code, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr


def test_cron_put_list_and_delete(endpoints):
    put = cli(endpoints, "jobs", "cron", "put", "nightly", "0 3 * * *", "reports", "full")
    assert put.returncode == 0, put.stderr
    assert put.stdout.startswith("nightly\t0 3 * * *\treports\tnext ") and "T03:00Z" in put.stdout
    listed = json.loads(cli(endpoints, "jobs", "cron", "list", "--output", "json").stdout)
    assert [(c["name"], c["args"]) for c in listed["crons"]] == [("nightly", "full")]
    assert cli(endpoints, "jobs", "cron", "delete", "nightly").returncode == 0
    gone = cli(endpoints, "jobs", "cron", "delete", "nightly")
    assert gone.returncode == 1 and "not found" in gone.stderr
    bad = cli(endpoints, "jobs", "cron", "put", "broken", "0 25 * * *", "reports")
    assert bad.returncode == 2 and "hour field" in bad.stderr and "Traceback" not in bad.stderr


def test_limit_sets_and_removes_a_queues_cluster_wide_limit_and_stats_shows_it(endpoints):
    assert cli(endpoints, "jobs", "enqueue", "thumbs", "a").returncode == 0
    limited = cli(endpoints, "jobs", "limit", "thumbs", "3")
    assert limited.returncode == 0, limited.stderr
    assert limited.stdout.strip() == "thumbs: at most 3 jobs claimed at once"
    table = cli(endpoints, "jobs", "stats", "thumbs")
    header, row = table.stdout.splitlines()
    assert header.split()[-1] == "LIMIT" and row.split()[0] == "thumbs" and row.split()[-1] == "3"
    stats = json.loads(cli(endpoints, "jobs", "stats", "thumbs", "--output", "json").stdout)
    assert (stats["queues"][0]["concurrency_max"], stats["queues"][0]["available"]) == (3, 1)
    removed = json.loads(cli(endpoints, "jobs", "limit", "thumbs", "0", "--output", "json").stdout)
    assert removed == {"queue": "thumbs", "concurrency_max": 0}
    assert cli(endpoints, "jobs", "stats", "thumbs").stdout.splitlines()[1].split()[-1] == "-"


@pytest.mark.parametrize("args, says", [
    (("jobs", "limit", "thumbs", str(limits.JOB_QUEUE_CONCURRENCY_MAX + 1)), "JOB_QUEUE_CONCURRENCY_MAX"),
    (("jobs", "limit", "thumbs", "-1"), "must not be negative"),
    (("jobs", "limit", "", "3"), "JOB_QUEUE_BYTES_MAX"),
])
def test_a_bad_limit_exits_2_with_one_line_naming_what_to_fix(endpoints, args, says):
    result = cli(endpoints, *args)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
