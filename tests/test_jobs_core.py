"""The job queue in the pure state machine: claim order, scheduling,
uniqueness, fencing, lease expiry, backoff bounds, dead after max_attempts
real failures, retention; over the in-memory view and the LMDB view alike.

Method: commands applied at increasing indexes through the node's codec
(tests.support.applier), read back through the core's readers; the log
clock moves with the time each command carries, the lease clock with
leader ticks.
"""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from tandemkv.server.strong import job_reads, jobs
from tandemkv.server.strong.view import MemoryView
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import lease_pb2
from tests.support.applier import Applier, make_view

VIEWS = ["memory", "lmdb"]


@pytest.fixture(params=VIEWS)
def applier(request, tmp_path):
    with make_view(request.param, tmp_path) as view:
        yield Applier(view)


def enqueue(applier: Applier, queue: bytes = b"q", args: bytes = b"a", ts_ms: int | None = None,
            **fields) -> J.JobEnqueueResponse:
    return applier.write(J.JobEnqueueRequest(queue=queue, args=args, **fields), ts_ms=ts_ms)


def grant(applier: Applier, ttl_ms: int = 5_000) -> int:
    return applier.write(lease_pb2.LeaseGrantRequest(ttl_ms=ttl_ms)).id


def claim(applier: Applier, lease: int, queue: bytes = b"q", limit: int = 1, **kw) -> list[J.Job]:
    return list(applier.write(J.JobClaimRequest(queue=queue, lease=lease, limit=limit), **kw).jobs)


def get(applier: Applier, job_id: int) -> J.Job:
    response = job_reads.read_get(applier.view, J.JobGetRequest(id=job_id), applier.index)
    assert response.found
    return response.job


def stats(applier: Applier, queue: bytes = b"q") -> J.JobQueueStats:
    return job_reads.read_stats(applier.view, J.JobStatsRequest(queue=queue), applier.index).queues[0]


def advance(applier: Applier, elapsed_ms: int) -> None:
    """Ticks of one leader move the lease clock by `elapsed_ms`."""
    applier.tick("leader", 0)
    while elapsed_ms > 0:
        step = min(elapsed_ms, limits.LEASE_TICK_ADVANCE_MS_MAX)
        applier.tick("leader", step)
        elapsed_ms -= step


def test_claim_takes_jobs_by_priority_then_run_at_then_id(applier):
    low = enqueue(applier, priority=5).id
    first = enqueue(applier, priority=0).id
    second = enqueue(applier, priority=0).id
    enqueue(applier, queue=b"other")
    lease = grant(applier)
    claimed = claim(applier, lease, limit=10)
    assert [job.id for job in claimed] == [first, second, low]
    assert all(job.state == J.JOB_CLAIMED and job.attempt == 1 and job.args == b"a" for job in claimed)
    assert all(job.token == applier.index and job.lease == lease for job in claimed)
    assert stats(applier).claimed == 3 and stats(applier).available == 0
    assert stats(applier, b"other").available == 1


def test_a_scheduled_job_is_claimable_only_once_the_log_clock_reaches_run_at(applier):
    job_id = enqueue(applier, run_at_ms=applier.ts_ms + 60_000).id
    assert get(applier, job_id).state == J.JOB_SCHEDULED
    lease = grant(applier)
    assert claim(applier, lease) == []
    applier.ts_ms += 60_000
    assert [job.id for job in claim(applier, lease)] == [job_id]


def test_a_due_job_is_promoted_by_any_entry_without_a_claim(applier):
    job_id = enqueue(applier, run_at_ms=applier.ts_ms + 1_000).id
    enqueue(applier, queue=b"elsewhere", ts_ms=applier.ts_ms + 1_000)
    assert get(applier, job_id).state == J.JOB_AVAILABLE
    assert stats(applier).available == 1 and stats(applier).scheduled == 0


def test_a_duplicate_unique_key_returns_the_first_job_until_it_finishes(applier):
    first = enqueue(applier, unique_key=b"u")
    again = enqueue(applier, unique_key=b"u", args=b"other")
    assert again.duplicate and again.id == first.id and stats(applier).available == 1
    assert not enqueue(applier, queue=b"q2", unique_key=b"u").duplicate  # unique within a queue
    lease = grant(applier)
    (job,) = claim(applier, lease)
    applier.write(J.JobCompleteRequest(id=job.id, token=job.token))
    later = enqueue(applier, unique_key=b"u")
    assert not later.duplicate and later.id != first.id


def test_a_late_workers_complete_is_refused_naming_the_current_token(applier):
    job_id = enqueue(applier).id
    first_lease = grant(applier, ttl_ms=1_000)
    (stale,) = claim(applier, first_lease)
    advance(applier, 2_000)  # the first worker stalls; its lease expires
    assert get(applier, job_id).state == J.JOB_AVAILABLE
    (fresh,) = claim(applier, grant(applier))
    assert fresh.token > stale.token and fresh.attempt == 2
    with pytest.raises(FailedPrecondition, match=f"current token {fresh.token}"):
        applier.write(J.JobCompleteRequest(id=job_id, token=stale.token))
    with pytest.raises(FailedPrecondition, match="stale"):
        applier.write(J.JobFailRequest(id=job_id, token=stale.token, error="late"))
    done = applier.write(J.JobCompleteRequest(id=job_id, token=fresh.token, result=b"ok")).job
    assert done.state == J.JOB_COMPLETED and done.token == fresh.token and done.failures == 0
    assert get(applier, job_id).result == b"ok"


def test_lease_expiry_returns_the_job_with_its_attempt_counted_and_no_failure(applier):
    job_id = enqueue(applier, max_attempts=1).id
    for attempt in (1, 2, 3):
        lease = grant(applier, ttl_ms=1_000)
        (job,) = claim(applier, lease)
        assert job.attempt == attempt
        applier.write(lease_pb2.LeaseRevokeRequest(id=lease))
        after = get(applier, job_id)
        assert after.state == J.JOB_AVAILABLE and after.failures == 0
    assert stats(applier).available == 1 and stats(applier).claimed == 0


def test_failures_back_off_then_the_job_is_dead_after_max_attempts(applier):
    job_id = enqueue(applier, max_attempts=3).id
    lease = grant(applier)
    for failure in (1, 2, 3):
        (job,) = claim(applier, lease)
        failed = applier.write(J.JobFailRequest(id=job_id, token=job.token, error=f"boom {failure}")).job
        if failure < 3:
            assert failed.state == J.JOB_RETRYABLE
            assert failed.run_at_ms == applier.ts_ms + jobs.backoff_ms(job_id, failure)
            assert claim(applier, lease) == []  # waiting out its backoff
            applier.ts_ms = failed.run_at_ms
    dead = get(applier, job_id)
    assert dead.state == J.JOB_DEAD and dead.failures == 3 and dead.last_error == "boom 3"
    assert stats(applier).dead == 1
    retried = applier.write(J.JobRetryRequest(id=job_id)).job
    assert retried.state == J.JOB_AVAILABLE and retried.max_attempts == 4


def test_a_claim_past_its_timeout_fails_on_the_lease_clock(applier):
    job_id = enqueue(applier, timeout_ms=1_000, max_attempts=5).id
    (job,) = claim(applier, grant(applier, ttl_ms=60_000))
    advance(applier, 1_000)
    assert get(applier, job_id).state == J.JOB_CLAIMED  # never early
    advance(applier, 1_000)
    timed_out = get(applier, job_id)
    assert timed_out.state == J.JOB_RETRYABLE and "timed out" in timed_out.last_error
    with pytest.raises(FailedPrecondition):
        applier.write(J.JobCompleteRequest(id=job_id, token=job.token))


def test_backoff_stays_within_its_bounds_and_replicas_agree():
    for job_id in range(1, 200):
        for failures in range(1, 40):
            delay = jobs.backoff_ms(job_id, failures)
            assert limits.JOB_BACKOFF_MIN_MS <= delay <= limits.JOB_BACKOFF_MAX_MS
            assert delay == jobs.backoff_ms(job_id, failures)
    assert jobs.backoff_ms(7, 1) == limits.JOB_BACKOFF_MIN_MS
    assert len({jobs.backoff_ms(job_id, 6) for job_id in range(1, 50)}) > 10  # jitter spreads them


def test_cancel_ends_a_claim_and_discard_moves_to_dead(applier):
    claimed_id = enqueue(applier).id
    (job,) = claim(applier, grant(applier))
    assert applier.write(J.JobCancelRequest(id=claimed_id)).job.state == J.JOB_CANCELLED
    with pytest.raises(FailedPrecondition):
        applier.write(J.JobCompleteRequest(id=claimed_id, token=job.token))
    with pytest.raises(FailedPrecondition, match="already cancelled"):
        applier.write(J.JobCancelRequest(id=claimed_id))
    waiting_id = enqueue(applier).id
    discarded = applier.write(J.JobDiscardRequest(id=waiting_id)).job
    assert discarded.state == J.JOB_DEAD and discarded.last_error.startswith("discarded")
    assert stats(applier).cancelled == 1 and stats(applier).dead == 1 and stats(applier).available == 0


def test_a_retried_claim_returns_the_same_jobs_and_claims_nothing_more(applier):
    for _ in range(3):
        enqueue(applier)
    lease = grant(applier)
    first = claim(applier, lease, request_id=b"r" * limits.REQUEST_ID_BYTES)
    again = claim(applier, lease, request_id=b"r" * limits.REQUEST_ID_BYTES)
    assert [job.id for job in first] == [job.id for job in again] and len(first) == 1
    assert stats(applier).claimed == 1 and stats(applier).available == 2


def test_finished_jobs_are_pruned_after_retention(applier):
    job_id = enqueue(applier).id
    (job,) = claim(applier, grant(applier))
    applier.write(J.JobCompleteRequest(id=job.id, token=job.token))
    enqueue(applier, queue=b"later", ts_ms=applier.ts_ms + limits.JOB_RETENTION_MS)
    assert not job_reads.read_get(applier.view, J.JobGetRequest(id=job_id), applier.index).found
    assert stats(applier).completed == 0


def test_list_filters_by_queue_and_state_and_pages(applier):
    ids = [enqueue(applier, queue=b"a" if k % 2 else b"b").id for k in range(6)]
    page = job_reads.read_list(applier.view, J.JobListRequest(queue=b"a", limit=2), applier.index)
    assert [job.id for job in page.jobs] == ids[1:4:2] and page.more
    rest = job_reads.read_list(applier.view, J.JobListRequest(queue=b"a", after_id=page.next_after_id),
                          applier.index)
    assert [job.id for job in rest.jobs] == [ids[5]] and not rest.more
    none = job_reads.read_list(applier.view, J.JobListRequest(state=J.JOB_DEAD), applier.index)
    assert list(none.jobs) == []
    past_all = job_reads.read_list(applier.view, J.JobListRequest(after_id=2**64 - 1), applier.index)
    assert list(past_all.jobs) == [] and not past_all.more


def test_a_job_at_every_limit_is_stored_claimed_and_finished(applier):
    queue = b"q" * limits.JOB_QUEUE_BYTES_MAX
    job_id = enqueue(applier, queue=queue, args=b"a" * limits.JOB_ARGS_BYTES_MAX,
                     unique_key=b"u" * limits.JOB_UNIQUE_KEY_BYTES_MAX, priority=limits.JOB_PRIORITY_MAX,
                     max_attempts=limits.JOB_MAX_ATTEMPTS_MAX, timeout_ms=limits.JOB_TIMEOUT_MS_MAX).id
    (job,) = claim(applier, grant(applier), queue=queue, limit=limits.JOB_CLAIM_JOBS_MAX)
    error = "e" * limits.JOB_ERROR_BYTES_MAX
    assert applier.write(J.JobFailRequest(id=job_id, token=job.token, error=error)).job.failures == 1
    assert applier.write(J.JobDiscardRequest(id=job_id)).job.state == J.JOB_DEAD


@pytest.mark.parametrize("request_fields, limit_name", [
    ({"queue": b"q", "unique_key": b"u" * (limits.JOB_UNIQUE_KEY_BYTES_MAX + 1)}, "JOB_UNIQUE_KEY_BYTES_MAX"),
    ({"queue": b""}, "JOB_QUEUE_BYTES_MAX"),
    ({"queue": b"x" * (limits.JOB_QUEUE_BYTES_MAX + 1)}, "JOB_QUEUE_BYTES_MAX"),
    ({"queue": b"q", "args": b"x" * (limits.JOB_ARGS_BYTES_MAX + 1)}, "JOB_ARGS_BYTES_MAX"),
    ({"queue": b"q", "priority": limits.JOB_PRIORITY_MAX + 1}, "JOB_PRIORITY_MAX"),
    ({"queue": b"q", "max_attempts": limits.JOB_MAX_ATTEMPTS_MAX + 1}, "JOB_MAX_ATTEMPTS_MAX"),
    ({"queue": b"q", "timeout_ms": limits.JOB_TIMEOUT_MS_MAX + 1}, "JOB_TIMEOUT_MS_MAX"),
])
def test_bad_enqueues_are_refused_naming_the_limit(applier, request_fields, limit_name):
    with pytest.raises(InvalidArgument, match=limit_name):
        applier.write(J.JobEnqueueRequest(**request_fields))


def test_a_claim_under_a_missing_lease_is_refused_and_changes_nothing(applier):
    enqueue(applier, run_at_ms=applier.ts_ms + 10)
    applier.ts_ms += 10
    with pytest.raises(FailedPrecondition, match="lease 999 not found"):
        claim(applier, 999)
    with pytest.raises(InvalidArgument, match="JOB_CLAIM_JOBS_MAX"):
        claim(applier, 1, limit=limits.JOB_CLAIM_JOBS_MAX + 1)


def test_at_the_space_quota_enqueues_are_refused_and_the_queue_still_drains():
    applier = Applier(MemoryView())
    lease = grant(applier)
    job_id = enqueue(applier).id
    applier.space_quota_bytes = applier.view.space_used()  # now at the quota
    with pytest.raises(ResourceExhausted):
        enqueue(applier)
    (job,) = claim(applier, lease)
    assert applier.write(J.JobCompleteRequest(id=job_id, token=job.token)).job.state == J.JOB_COMPLETED
