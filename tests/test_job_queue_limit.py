"""A cluster-wide concurrency limit per queue in the pure state machine:
claims across leases take no more than the limit leaves room for, and so
does a settlement's claim_next; lowering the limit below the jobs claimed
releases none of them and claims nothing until they fall below it; 0
removes it; Stats shows it (an empty queue's too); bad input is refused
naming the limit; a limit past JOB_QUEUE_LIMITS_MAX queues is refused
while changing one is not; a retried request answers its first result.

Method: commands applied at increasing indexes through the node's codec
(tests.support.applier) over the in-memory and LMDB views, read back
through the core's readers; validation through the edge's check.
"""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument
from tandemkv.server.strong import job_reads, validation
from tandemkv.server.strong.view import MemoryView
from tandemkv.v1 import jobs_pb2 as J
from tests.support.applier import Applier, make_view
from tests.test_job_batches import done, settle
from tests.test_jobs_core import claim, enqueue, grant, stats


@pytest.fixture(params=["memory", "lmdb"])
def applier(request, tmp_path):
    with make_view(request.param, tmp_path) as view:
        yield Applier(view)


def set_limit(applier: Applier, concurrency_max: int, queue: bytes = b"q",
              request_id: bytes = b"") -> J.JobQueueLimitResponse:
    return applier.write(J.JobQueueLimitRequest(queue=queue, concurrency_max=concurrency_max),
                         request_id=request_id)


def all_stats(applier: Applier) -> dict[bytes, J.JobQueueStats]:
    answer = job_reads.read_stats(applier.view, J.JobStatsRequest(), applier.index)
    return {queue_stats.queue: queue_stats for queue_stats in answer.queues}


def test_claims_under_different_leases_take_no_more_than_the_limit(applier):
    for _ in range(6):
        enqueue(applier)
    answer = set_limit(applier, 3)
    assert (answer.queue, answer.concurrency_max, answer.header.revision) == (b"q", 3, applier.index)
    first, second = grant(applier), grant(applier)
    assert len(claim(applier, first, limit=2)) == 2
    assert len(claim(applier, second, limit=4)) == 1  # the room left: 3 - 2
    assert claim(applier, second, limit=4) == []
    assert (stats(applier).claimed, stats(applier).available) == (3, 3)


def test_the_limit_bounds_one_queue_and_leaves_the_others_alone(applier):
    for queue in (b"q", b"other"):
        for _ in range(3):
            enqueue(applier, queue=queue)
    set_limit(applier, 1)
    lease = grant(applier)
    assert len(claim(applier, lease, limit=3)) == 1
    assert len(claim(applier, lease, queue=b"other", limit=3)) == 3


def test_a_settlements_claim_next_takes_only_the_room_its_settlement_freed(applier):
    for _ in range(6):
        enqueue(applier)
    set_limit(applier, 2)
    first, second = grant(applier), grant(applier)
    (mine,) = claim(applier, first)
    claim(applier, second)
    answer = settle(applier, done(mine), lease=first, limit=4)
    assert answer.outcomes[0].settled and len(answer.claimed) == 1
    (next_job,) = answer.claimed
    completed = applier.write(J.JobCompleteRequest(id=next_job.id, token=next_job.token,
                                                   claim_next=J.JobClaimNext(lease=first, limit=4)))
    assert completed.job.state == J.JOB_COMPLETED and len(completed.claimed) == 1
    assert stats(applier).claimed == 2


def test_lowering_the_limit_below_the_claimed_jobs_releases_none_and_claims_nothing_until_below(applier):
    for _ in range(6):
        enqueue(applier)
    lease = grant(applier)
    running = claim(applier, lease, limit=4)
    set_limit(applier, 2)
    assert stats(applier).claimed == 4  # running jobs are left to finish
    assert claim(applier, lease, limit=2) == []
    for job in running[:2]:
        applier.write(J.JobCompleteRequest(id=job.id, token=job.token))
    assert claim(applier, lease, limit=2) == []  # 2 claimed: at the limit, not below it
    applier.write(J.JobCompleteRequest(id=running[2].id, token=running[2].token))
    assert len(claim(applier, lease, limit=2)) == 1
    assert stats(applier).claimed == 2


def test_zero_removes_the_limit(applier):
    for _ in range(4):
        enqueue(applier)
    set_limit(applier, 1)
    lease = grant(applier)
    assert len(claim(applier, lease, limit=4)) == 1
    assert set_limit(applier, 0).concurrency_max == 0
    assert len(claim(applier, lease, limit=4)) == 3
    assert stats(applier).concurrency_max == 0 and b"q" in all_stats(applier)


def test_stats_shows_the_limit_also_of_a_queue_with_no_jobs(applier):
    enqueue(applier, queue=b"busy")
    set_limit(applier, 5, queue=b"busy")
    set_limit(applier, 7, queue=b"idle")
    assert stats(applier, b"busy").concurrency_max == 5 and stats(applier, b"busy").available == 1
    assert stats(applier, b"idle").concurrency_max == 7
    every = all_stats(applier)
    assert list(every) == [b"busy", b"idle"]
    assert (every[b"idle"].concurrency_max, every[b"idle"].available) == (7, 0)
    set_limit(applier, 0, queue=b"idle")
    assert list(all_stats(applier)) == [b"busy"]


@pytest.mark.parametrize("request_, named", [
    (J.JobQueueLimitRequest(queue=b"", concurrency_max=1), "JOB_QUEUE_BYTES_MAX"),
    (J.JobQueueLimitRequest(queue=b"q" * (limits.JOB_QUEUE_BYTES_MAX + 1), concurrency_max=1),
     "JOB_QUEUE_BYTES_MAX"),
    (J.JobQueueLimitRequest(queue=b"q", concurrency_max=limits.JOB_QUEUE_CONCURRENCY_MAX + 1),
     "JOB_QUEUE_CONCURRENCY_MAX"),
])
def test_bad_input_is_refused_naming_the_limit_and_changes_nothing(applier, request_, named):
    with pytest.raises(InvalidArgument) as refused:
        validation.check_request(request_)
    assert named in refused.value.message
    with pytest.raises(InvalidArgument, match=named):
        applier.write(request_)
    assert not all_stats(applier)


def test_the_largest_limit_is_taken(applier):
    assert set_limit(applier, limits.JOB_QUEUE_CONCURRENCY_MAX).concurrency_max == limits.JOB_QUEUE_CONCURRENCY_MAX
    assert stats(applier).concurrency_max == limits.JOB_QUEUE_CONCURRENCY_MAX


def test_a_new_limit_past_job_queue_limits_max_is_refused_and_changing_one_is_not():
    applier = Applier(MemoryView())
    for n in range(limits.JOB_QUEUE_LIMITS_MAX):
        set_limit(applier, 1, queue=b"q%d" % n)
    with pytest.raises(FailedPrecondition, match="JOB_QUEUE_LIMITS_MAX") as refused:
        set_limit(applier, 1, queue=b"one-more")
    assert "set it to 0" in refused.value.message
    assert stats(applier, b"one-more").concurrency_max == 0
    assert set_limit(applier, 9, queue=b"q0").concurrency_max == 9  # a change adds no queue
    set_limit(applier, 0, queue=b"q1")
    assert set_limit(applier, 2, queue=b"one-more").concurrency_max == 2


def test_a_retried_request_answers_its_first_result_and_applies_once(applier):
    first = set_limit(applier, 3, request_id=b"r" * 16)
    set_limit(applier, 5)
    again = set_limit(applier, 3, request_id=b"r" * 16)
    assert again == first and again.header.revision == first.header.revision
    assert stats(applier).concurrency_max == 5  # the retry did not apply again
