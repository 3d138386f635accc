"""Settle and claim in one entry: a complete or fail carrying claim_next
settles the job and claims the next ones of its queue under the worker's
lease in the same command, so a worker's slot waits for one commit per job
instead of two. The guarantees of each half stay: the settlement is fenced
by its token (a stale one settles nothing and claims nothing), the claims
are a claim's (order, lease, token, bound), and a retried request answers
its first result without claiming again.

Method: commands applied at increasing indexes through the node's codec
(tests.support.applier) over the in-memory and LMDB views, read back
through the core's readers.
"""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument
from tandemkv.server.strong import job_reads
from tandemkv.v1 import jobs_pb2 as J
from tests.support.applier import Applier, make_view
from tests.test_jobs_core import advance, claim, enqueue, get, grant, stats


@pytest.fixture(params=["memory", "lmdb"])
def applier(request, tmp_path):
    with make_view(request.param, tmp_path) as view:
        yield Applier(view)


def complete_and_claim(applier: Applier, job: J.Job, lease: int, limit: int, **kw) -> J.JobResponse:
    return applier.write(J.JobCompleteRequest(id=job.id, token=job.token, result=b"done",
                                              claim_next=J.JobClaimNext(lease=lease, limit=limit)), **kw)


def test_a_complete_with_claim_next_settles_and_claims_the_next_jobs_in_one_entry(applier):
    first, *rest = [enqueue(applier, args=b"%d" % n).id for n in range(4)]
    enqueue(applier, queue=b"other")
    lease = grant(applier)
    (job,) = claim(applier, lease)
    assert job.id == first
    answer = complete_and_claim(applier, job, lease, limit=2)
    assert answer.job.id == first and answer.job.state == J.JOB_COMPLETED and answer.job.result == b"done"
    assert [j.id for j in answer.claimed] == rest[:2]
    assert all(j.state == J.JOB_CLAIMED and j.lease == lease and j.token == applier.index and j.args
               for j in answer.claimed)
    assert answer.claimed[0].token > job.token
    assert stats(applier).completed == 1 and stats(applier).claimed == 2 and stats(applier).available == 1
    assert stats(applier, b"other").available == 1  # only the settled job's queue


def test_a_fail_with_claim_next_records_the_failure_and_claims_the_next_job(applier):
    failing = enqueue(applier, max_attempts=3).id
    following = enqueue(applier).id
    lease = grant(applier)
    (job,) = claim(applier, lease)
    answer = applier.write(J.JobFailRequest(id=failing, token=job.token, error="boom",
                                            claim_next=J.JobClaimNext(lease=lease, limit=5)))
    assert answer.job.state == J.JOB_RETRYABLE and answer.job.failures == 1 and answer.job.last_error == "boom"
    assert [j.id for j in answer.claimed] == [following]  # the failed job waits out its backoff


def test_the_settlement_applies_even_when_no_job_is_claimable(applier):
    job_id = enqueue(applier).id
    lease = grant(applier)
    (job,) = claim(applier, lease)
    answer = complete_and_claim(applier, job, lease, limit=8)
    assert answer.job.state == J.JOB_COMPLETED and list(answer.claimed) == []
    assert get(applier, job_id).state == J.JOB_COMPLETED
    assert stats(applier).completed == 1 and stats(applier).claimed == 0


def test_a_stale_token_refuses_the_settlement_and_claims_nothing(applier):
    job_id = enqueue(applier).id
    waiting = enqueue(applier).id
    stale_lease = grant(applier, ttl_ms=1_000)
    (stale,) = claim(applier, stale_lease)
    advance(applier, 2_000)  # the worker stalled; its lease expired and the job went back
    lease = grant(applier)
    fresh = [j for j in claim(applier, lease, limit=1)]
    assert [j.id for j in fresh] == [job_id] and fresh[0].token > stale.token
    before = stats(applier)
    with pytest.raises(FailedPrecondition, match=f"current token {fresh[0].token}"):
        complete_and_claim(applier, stale, lease, limit=4)
    assert stats(applier) == before
    assert get(applier, waiting).state == J.JOB_AVAILABLE
    assert get(applier, job_id).state == J.JOB_CLAIMED and get(applier, job_id).token == fresh[0].token


def test_a_missing_claim_lease_refuses_the_settlement_and_claims_nothing(applier):
    job_id = enqueue(applier).id
    enqueue(applier)
    lease = grant(applier)
    (job,) = claim(applier, lease)
    before = stats(applier)
    with pytest.raises(FailedPrecondition, match="lease 999999 of claim_next not found"):
        complete_and_claim(applier, job, 999_999, limit=1)
    assert stats(applier) == before and get(applier, job_id).state == J.JOB_CLAIMED


def test_a_retried_settle_and_claim_answers_its_first_result_and_claims_no_more(applier):
    for _ in range(4):
        enqueue(applier)
    lease = grant(applier)
    (job,) = claim(applier, lease)
    first = complete_and_claim(applier, job, lease, limit=1, request_id=b"r" * limits.REQUEST_ID_BYTES)
    again = complete_and_claim(applier, job, lease, limit=1, request_id=b"r" * limits.REQUEST_ID_BYTES)
    assert again == first and len(first.claimed) == 1
    assert stats(applier).claimed == 1 and stats(applier).available == 2


def test_claim_next_takes_due_scheduled_jobs_and_stays_within_the_lease_room(applier):
    due = enqueue(applier, run_at_ms=applier.ts_ms + 1_000).id
    lease = grant(applier)
    blocker = enqueue(applier).id
    (job,) = claim(applier, lease)
    assert job.id == blocker and get(applier, due).state == J.JOB_SCHEDULED
    answer = applier.write(J.JobCompleteRequest(id=job.id, token=job.token,
                                                claim_next=J.JobClaimNext(lease=lease)),
                           ts_ms=applier.ts_ms + 2_000)
    assert [j.id for j in answer.claimed] == [due]  # limit 0 means one; the due job was promoted first


@pytest.mark.parametrize("claim_next, named", [
    (J.JobClaimNext(lease=0, limit=1), "claim_next.lease"),
    (J.JobClaimNext(lease=7, limit=limits.JOB_CLAIM_JOBS_MAX + 1), "JOB_CLAIM_JOBS_MAX"),
])
def test_a_bad_claim_next_is_refused_naming_the_field(applier, claim_next, named):
    with pytest.raises(InvalidArgument, match=named):
        applier.write(J.JobCompleteRequest(id=1, token=1, claim_next=claim_next))
    with pytest.raises(InvalidArgument, match=named):
        applier.write(J.JobFailRequest(id=1, token=1, error="x", claim_next=claim_next))


def test_the_sweep_prunes_the_oldest_finished_jobs_past_the_count_bound_and_keeps_the_rest(applier, monkeypatch):
    monkeypatch.setattr(limits, "JOB_RETAINED_FINISHED_MAX", 3)
    ids = [enqueue(applier).id for _ in range(6)]
    lease = grant(applier)
    for job in claim(applier, lease, limit=6):
        applier.write(J.JobCompleteRequest(id=job.id, token=job.token))
    enqueue(applier)  # one more entry: its sweep prunes what is over
    kept = [job_id for job_id in ids if job_reads.read_get(applier.view, J.JobGetRequest(id=job_id),
                                                             applier.index).found]
    assert kept == ids[-3:] and stats(applier).completed == 3
