"""A queue's cluster-wide concurrency limit against real `tandemkv serve`
processes: two SDK workers of concurrency 4 each, on a queue limited to
3, never have more than 3 of its jobs claimed at once, and every job
completes; `tandemkv jobs limit` past JOB_QUEUE_LIMITS_MAX queues exits 5
naming the limit; with auth on, only root may set a limit (a queue writer
could otherwise lift the limit meant to hold its workers).

Method: a 3-node `ServeCluster` for the module, its JOB_QUEUE_LIMITS_MAX
lowered to QUEUE_LIMITS_MAX so the refusal takes a few writes. While the
workers drain the jobs (each handler sleeps HANDLER_S, so claims overlap),
the test samples `client.jobs.stats(queue)` (linearizable) and records
the claimed counts; the gate's rule is checked on the pure auth store.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from tandemkv import limits
from tandemkv.client import Client
from tandemkv.errors import PermissionDenied
from tandemkv.server.api.auth_calls import AuthGate
from tandemkv.server.strong import auth
from tandemkv.v1 import jobs_pb2
from tests.support.cluster import ServeCluster
from tests.support.local_up import TANDEMKV

LEADER_TIMEOUT_S = 60.0
QUEUE_LIMITS_MAX = 4
JOBS = 40
CONCURRENCY_MAX = 3
WORKER_CONCURRENCY = 4
HANDLER_S = 0.05
# How long the jobs may take to drain (serially they take JOBS * HANDLER_S, 2 s).
DRAIN_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("job-queue-limit"), nodes=3,
                      limits={"JOB_QUEUE_LIMITS_MAX": QUEUE_LIMITS_MAX}) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


def test_two_workers_never_hold_more_jobs_than_the_queues_limit_and_every_job_completes(cluster):
    queue = "thumbnails"
    running, running_max, lock = [0], [0], threading.Lock()

    def handler(job):
        with lock:
            running[0] += 1
            running_max[0] = max(running_max[0], running[0])
        time.sleep(HANDLER_S)  # the job's work: long enough that claims overlap
        with lock:
            running[0] -= 1
        return b"done"

    with Client(cluster.endpoints) as client:
        assert client.jobs.set_queue_limit(queue, CONCURRENCY_MAX) == CONCURRENCY_MAX
        ids = client.jobs.enqueue_many(queue, [b"%d" % n for n in range(JOBS)])
        claimed_seen = []
        with client.jobs.worker(queue, handler, concurrency=WORKER_CONCURRENCY), \
                client.jobs.worker(queue, handler, concurrency=WORKER_CONCURRENCY):
            deadline_s = time.monotonic() + DRAIN_TIMEOUT_S
            while time.monotonic() < deadline_s:
                (stats,) = client.jobs.stats(queue)
                claimed_seen.append(stats.claimed)
                if stats.completed == JOBS:
                    break
        (stats,) = client.jobs.stats(queue)
        assert stats.completed == JOBS and stats.concurrency_max == CONCURRENCY_MAX
        assert all(client.jobs.get(job_id).state == "completed" for job_id in ids)
    assert max(claimed_seen) <= CONCURRENCY_MAX, claimed_seen
    assert max(claimed_seen) >= 2, claimed_seen  # the workers did run jobs side by side
    assert running_max[0] <= CONCURRENCY_MAX


def test_a_limit_past_job_queue_limits_max_queues_is_refused_naming_it(cluster):
    endpoints = ",".join(cluster.endpoints)
    with Client(cluster.endpoints) as client:
        already = len([q for q in client.jobs.stats() if q.concurrency_max])
        for n in range(QUEUE_LIMITS_MAX - already):
            client.jobs.set_queue_limit(f"full-{n}", 1)
    refused = subprocess.run([*TANDEMKV, "jobs", "limit", "one-more", "2", "--endpoints", endpoints],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 5, refused.stderr
    assert "JOB_QUEUE_LIMITS_MAX" in refused.stderr and "Traceback" not in refused.stderr
    changed = subprocess.run([*TANDEMKV, "jobs", "limit", "full-0", "0", "--endpoints", endpoints],
                             capture_output=True, text=True, timeout=120)
    assert changed.returncode == 0 and changed.stdout.strip() == "full-0: no limit"


def test_only_root_may_set_a_queue_limit_even_a_writer_of_the_queue_may_not():
    salt = b"s" * limits.AUTH_SALT_BYTES
    store = auth.AuthState()
    password_hash = auth.hash_password("pw", salt)
    for name in ("root", "worker"):
        auth.add_user(store, name, salt, password_hash)
    auth.grant_role(store, "root", auth.ROOT_ROLE)
    auth.add_role(store, "mailer")
    auth.grant_permission(store, "mailer", auth.make_permission("queue", b"emails", "write"))
    auth.grant_role(store, "worker", "mailer")
    auth.enable(store, b"k" * limits.AUTH_TOKEN_KEY_BYTES)
    gate = AuthGate(lambda: store, lambda: 1_000)
    request = jobs_pb2.JobQueueLimitRequest(queue=b"emails", concurrency_max=3)
    worker = (("authorization", f"Bearer {auth.issue_token(store, 'worker', 1_000)}"),)
    root = (("authorization", f"Bearer {auth.issue_token(store, 'root', 1_000)}"),)
    assert gate.check("/tandemkv.v1.Jobs/Enqueue", jobs_pb2.JobEnqueueRequest(queue=b"emails"), worker) == "worker"
    with pytest.raises(PermissionDenied, match="root role"):
        gate.check("/tandemkv.v1.Jobs/SetQueueLimit", request, worker)
    assert gate.check("/tandemkv.v1.Jobs/SetQueueLimit", request, root) == "root"
