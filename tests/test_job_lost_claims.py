"""The bound on lost claims in the pure state machine: a job whose claim
is lost (its lease expires or is revoked while it runs) again and again is
dead at its max_lost_claims-th lost claim, with an error saying so; lost
claims never count as failures, failures never as lost claims; the bound
is settable at enqueue (and on a recurring job, for its runs), defaults to
JOB_MAX_LOST_CLAIMS_DEFAULT and is checked against JOB_MAX_LOST_CLAIMS_MAX; a retry by request starts the
count afresh; a retried enqueue still applies once.

Method: commands applied at increasing indexes through the node's codec
(tests.support.applier) over the in-memory and the LMDB view, as in
test_jobs_core.py.
"""

from __future__ import annotations

import os

import pytest

from tandemkv import limits
from tandemkv.errors import InvalidArgument
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import lease_pb2
from tests.support.applier import Applier, make_view
from tests.test_job_crons import ms, put_cron, queued
from tests.test_jobs_core import advance, claim, enqueue, get, grant, stats


@pytest.fixture(params=["memory", "lmdb"])
def applier(request, tmp_path):
    with make_view(request.param, tmp_path) as view:
        yield Applier(view)


def lose_claim(applier: Applier, how: str) -> J.Job:
    """Claims the queue's job under a fresh lease and loses the claim."""
    lease = grant(applier, ttl_ms=1_000)
    (job,) = claim(applier, lease)
    if how == "revoke":
        applier.write(lease_pb2.LeaseRevokeRequest(id=lease))
    else:
        advance(applier, 2_000)  # the worker stalls past its lease
    return get(applier, job.id)


@pytest.mark.parametrize("how", ["revoke", "expire"])
def test_a_job_that_loses_its_claim_max_lost_claims_times_is_dead_saying_why(applier, how):
    job_id = enqueue(applier, max_lost_claims=3).id
    for lost in (1, 2):
        job = lose_claim(applier, how)
        assert job.state == J.JOB_AVAILABLE and job.lost_claims == lost and job.failures == 0
    dead = lose_claim(applier, how)
    assert dead.id == job_id and dead.state == J.JOB_DEAD
    assert dead.lost_claims == 3 and dead.failures == 0 and dead.attempt == 3
    assert "lost its claim 3 times" in dead.last_error and "crashed or stalled" in dead.last_error
    counts = stats(applier)
    assert counts.dead == 1 and counts.available == 0 and counts.claimed == 0


def test_the_default_bound_is_named_in_limits(applier):
    job_id = enqueue(applier).id
    assert get(applier, job_id).max_lost_claims == limits.JOB_MAX_LOST_CLAIMS_DEFAULT
    for _ in range(limits.JOB_MAX_LOST_CLAIMS_DEFAULT - 1):
        assert lose_claim(applier, "revoke").state == J.JOB_AVAILABLE
    assert lose_claim(applier, "revoke").state == J.JOB_DEAD


def test_failures_and_lost_claims_are_counted_apart(applier):
    job_id = enqueue(applier, max_attempts=2, max_lost_claims=2).id
    lease = grant(applier)
    (job,) = claim(applier, lease)
    failed = applier.write(J.JobFailRequest(id=job_id, token=job.token, error="boom")).job
    assert failed.state == J.JOB_RETRYABLE and failed.failures == 1 and failed.lost_claims == 0
    applier.write(J.JobRetryRequest(id=job_id))  # run it now rather than after its backoff
    job = lose_claim(applier, "revoke")
    assert job.state == J.JOB_AVAILABLE and job.failures == 1 and job.lost_claims == 1
    dead = lose_claim(applier, "revoke")
    assert dead.state == J.JOB_DEAD and dead.failures == 1 and "last error: boom" in dead.last_error


def test_a_retry_by_request_starts_the_lost_claim_count_afresh(applier):
    job_id = enqueue(applier, max_lost_claims=1).id
    assert lose_claim(applier, "revoke").state == J.JOB_DEAD
    again = applier.write(J.JobRetryRequest(id=job_id)).job
    assert again.state == J.JOB_AVAILABLE and again.lost_claims == 0
    lease = grant(applier)
    (job,) = claim(applier, lease)
    done = applier.write(J.JobCompleteRequest(id=job_id, token=job.token)).job
    assert done.state == J.JOB_COMPLETED and done.lost_claims == 0


def test_a_completed_claim_is_not_lost_when_its_lease_ends_later(applier):
    job_id = enqueue(applier, max_lost_claims=1).id
    lease = grant(applier)
    (job,) = claim(applier, lease)
    applier.write(J.JobCompleteRequest(id=job_id, token=job.token))
    applier.write(lease_pb2.LeaseRevokeRequest(id=lease))
    after = get(applier, job_id)
    assert after.state == J.JOB_COMPLETED and after.lost_claims == 0


def test_a_retried_enqueue_with_a_bound_applies_once(applier):
    request_id = os.urandom(limits.REQUEST_ID_BYTES)
    request = J.JobEnqueueRequest(queue=b"q", args=b"a", max_lost_claims=4)
    first = applier.write(request, request_id=request_id)
    again = applier.write(request, request_id=request_id)
    assert again.id == first.id and stats(applier).available == 1
    assert get(applier, first.id).max_lost_claims == 4


def test_a_bound_over_the_limit_is_refused_naming_it(applier):
    with pytest.raises(InvalidArgument, match="JOB_MAX_LOST_CLAIMS_MAX"):
        enqueue(applier, max_lost_claims=limits.JOB_MAX_LOST_CLAIMS_MAX + 1)


def test_a_recurring_jobs_runs_take_its_bound(applier):
    applier.ts_ms = ms(2026, 1, 1, 10, 0)
    assert put_cron(applier, max_lost_claims=2).max_lost_claims == 2
    applier.write(lease_pb2.LeaseGrantRequest(ttl_ms=60_000), ts_ms=ms(2026, 1, 1, 10, 5))  # the run is due
    (run,) = queued(applier)
    assert run.max_lost_claims == 2
    with pytest.raises(InvalidArgument, match="JOB_MAX_LOST_CLAIMS_MAX"):
        put_cron(applier, name=b"too-many", max_lost_claims=limits.JOB_MAX_LOST_CLAIMS_MAX + 1)
