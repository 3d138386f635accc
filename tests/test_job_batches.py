"""Many jobs in one command: EnqueueMany adds its jobs in order in one entry
(a unique_key seen earlier in the request makes a duplicate), all or none;
Settle fences each settlement alone (a stale token or another queue's job
refuses that one, the rest apply), claims the next jobs after them in the
same entry, and without its claim_next lease changes nothing. A retried
request (same request id) answers its first result.

Method: commands applied at increasing indexes through the node's codec
(tests.support.applier) over the in-memory and LMDB views, read back
through the core's readers; validation through the edge's check.
"""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument
from tandemkv.server.strong import job_reads, validation
from tandemkv.v1 import jobs_pb2 as J
from tests.support.applier import Applier, make_view
from tests.test_jobs_core import claim, enqueue, get, grant, stats


@pytest.fixture(params=["memory", "lmdb"])
def applier(request, tmp_path):
    with make_view(request.param, tmp_path) as view:
        yield Applier(view)


def enqueue_many(applier: Applier, *jobs: J.JobEnqueueRequest, queue: bytes = b"q",
                 request_id: bytes = b"") -> J.JobEnqueueManyResponse:
    return applier.write(J.JobEnqueueManyRequest(queue=queue, jobs=jobs), request_id=request_id)


def done(job: J.Job, result: bytes = b"ok") -> J.JobSettlement:
    return J.JobSettlement(id=job.id, token=job.token, result=result)


def failed(job: J.Job, error: str = "boom") -> J.JobSettlement:
    return J.JobSettlement(id=job.id, token=job.token, failed=True, error=error)


def settle(applier: Applier, *settlements: J.JobSettlement, queue: bytes = b"q", lease: int = 0, limit: int = 0,
           request_id: bytes = b"") -> J.JobSettleResponse:
    request = J.JobSettleRequest(queue=queue, settlements=settlements)
    if lease:
        request.claim_next.lease, request.claim_next.limit = lease, limit
    return applier.write(request, request_id=request_id)


def test_enqueue_many_adds_the_jobs_in_order_in_one_entry_with_increasing_ids(applier):
    answer = enqueue_many(applier, *(J.JobEnqueueRequest(args=b"%d" % n, priority=n % 2) for n in range(5)))
    ids = [job.id for job in answer.jobs]
    assert ids == sorted(ids) and len(set(ids)) == 5 and ids[0] == applier.index
    assert answer.header.revision == applier.index and not any(job.duplicate for job in answer.jobs)
    assert [get(applier, job_id).args for job_id in ids] == [b"0", b"1", b"2", b"3", b"4"]
    assert stats(applier).available == 5
    lease = grant(applier)
    assert [job.id for job in claim(applier, lease, limit=5)] == [ids[0], ids[2], ids[4], ids[1], ids[3]]


def test_a_unique_key_seen_earlier_in_the_request_or_before_makes_a_duplicate(applier):
    before = enqueue(applier, unique_key=b"a").id
    answer = enqueue_many(applier, J.JobEnqueueRequest(unique_key=b"a"), J.JobEnqueueRequest(unique_key=b"b"),
                          J.JobEnqueueRequest(unique_key=b"b"))
    assert [(job.id == before, job.duplicate) for job in answer.jobs[:1]] == [(True, True)]
    assert answer.jobs[2].id == answer.jobs[1].id and answer.jobs[2].duplicate and not answer.jobs[1].duplicate
    assert stats(applier).available == 2


def test_a_retried_enqueue_many_answers_its_first_result_and_adds_nothing(applier):
    first = enqueue_many(applier, J.JobEnqueueRequest(), J.JobEnqueueRequest(), request_id=b"r" * 16)
    again = enqueue_many(applier, J.JobEnqueueRequest(), J.JobEnqueueRequest(), request_id=b"r" * 16)
    assert [job.id for job in again.jobs] == [job.id for job in first.jobs]
    assert stats(applier).available == 2


@pytest.mark.parametrize("request_, named", [
    (J.JobEnqueueManyRequest(queue=b"q"), "JOB_ENQUEUE_MANY_JOBS_MAX"),
    (J.JobEnqueueManyRequest(queue=b"q", jobs=[J.JobEnqueueRequest()] * (limits.JOB_ENQUEUE_MANY_JOBS_MAX + 1)),
     "JOB_ENQUEUE_MANY_JOBS_MAX"),
    (J.JobEnqueueManyRequest(queue=b"", jobs=[J.JobEnqueueRequest()]), "JOB_QUEUE_BYTES_MAX"),
    (J.JobEnqueueManyRequest(queue=b"q", jobs=[J.JobEnqueueRequest(queue=b"other")]), "leave both empty"),
    (J.JobEnqueueManyRequest(queue=b"q", jobs=[J.JobEnqueueRequest(), J.JobEnqueueRequest(
        priority=limits.JOB_PRIORITY_MAX + 1)]), "jobs[1]: priority"),
])
def test_enqueue_many_refuses_bad_input_naming_what_to_fix_and_adds_nothing(applier, request_, named):
    with pytest.raises(InvalidArgument) as refused:
        validation.check_request(request_)
    assert named in refused.value.message
    with pytest.raises(InvalidArgument):
        applier.write(request_)
    assert not job_reads.read_stats(applier.view, J.JobStatsRequest(), applier.index).queues


def test_settle_records_each_outcome_and_claims_the_next_jobs_in_the_same_entry(applier):
    ids = [enqueue(applier, args=b"%d" % n, max_attempts=3).id for n in range(5)]
    lease = grant(applier)
    first, second, third = claim(applier, lease, limit=3)
    answer = settle(applier, done(first), failed(second), done(third, b""), lease=lease, limit=2)
    assert [(o.id, o.settled, o.state) for o in answer.outcomes] == [
        (ids[0], True, J.JOB_COMPLETED), (ids[1], True, J.JOB_RETRYABLE), (ids[2], True, J.JOB_COMPLETED)]
    assert get(applier, ids[0]).result == b"ok" and get(applier, ids[1]).last_error == "boom"
    assert [job.id for job in answer.claimed] == ids[3:]
    assert all(job.token == applier.index and job.lease == lease and job.args for job in answer.claimed)
    assert stats(applier).completed == 2 and stats(applier).claimed == 2


def test_a_stale_token_or_another_queues_job_refuses_that_settlement_alone(applier):
    ours = [enqueue(applier).id for _ in range(2)]
    theirs = enqueue(applier, queue=b"other").id
    lease = grant(applier)
    stale, fresh = claim(applier, lease, limit=2)
    (foreign,) = claim(applier, lease, queue=b"other")
    cancelled = applier.write(J.JobCancelRequest(id=stale.id)).job
    answer = settle(applier, done(stale), done(fresh), done(foreign))
    by_id = {o.id: o for o in answer.outcomes}
    assert by_id[fresh.id].settled and by_id[fresh.id].state == J.JOB_COMPLETED
    assert not by_id[stale.id].settled and "stale" in by_id[stale.id].refused
    assert by_id[stale.id].state == cancelled.state == J.JOB_CANCELLED
    assert not by_id[theirs].settled and "not found in queue b'q'" in by_id[theirs].refused
    assert by_id[theirs].state == J.JOB_STATE_UNSPECIFIED  # another queue's job: its state is not shown
    assert get(applier, foreign.id).state == J.JOB_CLAIMED
    assert sorted(ours) == sorted([stale.id, fresh.id])


def test_a_settle_whose_claim_next_lease_is_gone_changes_nothing(applier):
    enqueue(applier)
    enqueue(applier)
    lease = grant(applier)
    (job,) = claim(applier, lease)
    with pytest.raises(FailedPrecondition) as refused:
        settle(applier, done(job), lease=lease + 1_000, limit=1)
    assert "none of the 1 settlements is recorded" in refused.value.message
    assert get(applier, job.id).state == J.JOB_CLAIMED and stats(applier).available == 1


def test_a_retried_settle_answers_its_first_result_without_claiming_again(applier):
    for _ in range(3):
        enqueue(applier)
    lease = grant(applier)
    (job,) = claim(applier, lease)
    first = settle(applier, done(job), lease=lease, limit=1, request_id=b"s" * 16)
    again = settle(applier, done(job), lease=lease, limit=1, request_id=b"s" * 16)
    assert again == first and len(first.claimed) == 1
    assert stats(applier).claimed == 1 and stats(applier).available == 1


@pytest.mark.parametrize("request_, named", [
    (J.JobSettleRequest(queue=b"q"), "settlements is empty"),
    (J.JobSettleRequest(queue=b"q", settlements=[J.JobSettlement(id=1, token=1)] * 2), "settled twice"),
    (J.JobSettleRequest(queue=b"q", settlements=[J.JobSettlement(id=n + 1, token=1)
                                                 for n in range(limits.JOB_SETTLE_JOBS_MAX + 1)]),
     "JOB_SETTLE_JOBS_MAX"),
    (J.JobSettleRequest(queue=b"q", settlements=[J.JobSettlement(id=1, token=0)]), "fencing token"),
    (J.JobSettleRequest(queue=b"q", settlements=[J.JobSettlement(id=1, token=1, error="x")]), "set failed"),
    (J.JobSettleRequest(queue=b"q", settlements=[J.JobSettlement(id=1, token=1, failed=True, result=b"x")]),
     "not a result"),
    (J.JobSettleRequest(queue=b"q", settlements=[J.JobSettlement(
        id=1, token=1, failed=True, error="e" * (limits.JOB_ERROR_BYTES_MAX + 1))]), "JOB_ERROR_BYTES_MAX"),
    (J.JobSettleRequest(queue=b"q", claim_next=J.JobClaimNext(lease=1, limit=limits.JOB_CLAIM_JOBS_MAX + 1)),
     "JOB_CLAIM_JOBS_MAX"),
])
def test_settle_refuses_bad_input_naming_what_to_fix(applier, request_, named):
    with pytest.raises(InvalidArgument) as refused:
        validation.check_request(request_)
    assert named in refused.value.message
    with pytest.raises(InvalidArgument):
        applier.write(request_)


def test_a_settle_with_only_claim_next_claims_like_a_claim(applier):
    job_id = enqueue(applier).id
    lease = grant(applier)
    answer = settle(applier, lease=lease, limit=4)
    assert [job.id for job in answer.claimed] == [job_id] and not answer.outcomes
