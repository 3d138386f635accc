"""The job board's pure rules (server/available/job_board.py): a progress
entry leaves once its job finishes, goes back to its queue, is claimed
under another token, is gone, or goes stale; it is shown only for the
job's current claim; a report under an ended claim's token is refused,
one under a token this replica has not seen yet is taken; workers leave
JOB_WORKER_STALE_MS after their last beat; the keys fit KEYED_KEY_BYTES_MAX
at the longest queue and worker id; the requests are checked at the edge.

Also the lost-claim story end to end in the pure state machine: a job
whose worker loses its claim has its progress entry leave by these rules.
"""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import InvalidArgument
from tandemkv.server.available import job_board as rules
from tandemkv.server.strong import validation
from tandemkv.server.strong.view import MemoryView
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import lease_pb2
from tests.support.applier import Applier
from tests.test_jobs_core import claim, enqueue, get, grant

NOW_MS = 1_700_000_000_000


def entry(token: int = 7, at_ms: int = NOW_MS) -> J.JobProgress:
    return J.JobProgress(id=1, token=token, progress=40, note="n", at_ms=at_ms, node="n1")


def job(state: int, token: int = 7) -> J.Job:
    return J.Job(id=1, state=state, token=token)


@pytest.mark.parametrize("state", [J.JOB_COMPLETED, J.JOB_DEAD, J.JOB_CANCELLED])
def test_progress_of_a_finished_job_leaves(state):
    assert rules.progress_leaves(entry(), job(state), NOW_MS)
    assert rules.progress_shown(entry(), job(state), NOW_MS) is None


def test_progress_of_an_ended_claim_leaves_and_of_the_current_one_stays():
    assert not rules.progress_leaves(entry(), job(J.JOB_CLAIMED), NOW_MS)
    assert rules.progress_shown(entry(), job(J.JOB_CLAIMED), NOW_MS) == entry()
    assert rules.progress_leaves(entry(), job(J.JOB_AVAILABLE), NOW_MS)  # lost its lease
    assert rules.progress_leaves(entry(), job(J.JOB_RETRYABLE), NOW_MS)  # failed
    assert rules.progress_leaves(entry(token=7), job(J.JOB_CLAIMED, token=9), NOW_MS)  # claimed again
    assert rules.progress_leaves(entry(), None, NOW_MS)  # pruned


def test_a_replica_that_has_not_applied_the_claim_keeps_its_progress():
    assert not rules.progress_leaves(entry(token=9), job(J.JOB_COMPLETED, token=5), NOW_MS)  # retried, claimed
    assert not rules.progress_leaves(entry(token=9), None, NOW_MS, applied_index=8)
    assert rules.progress_leaves(entry(token=9), None, NOW_MS, applied_index=9)  # applied: pruned since
    assert rules.progress_shown(entry(token=9), job(J.JOB_CLAIMED, token=5), NOW_MS) is None


def test_progress_goes_stale():
    old = entry(at_ms=NOW_MS - limits.JOB_PROGRESS_STALE_MS - 1)
    assert rules.progress_leaves(old, job(J.JOB_CLAIMED), NOW_MS)
    assert not rules.progress_leaves(entry(at_ms=NOW_MS - limits.JOB_PROGRESS_STALE_MS), job(J.JOB_CLAIMED),
                                     NOW_MS)


def test_a_report_under_an_ended_claim_is_refused_and_under_an_unseen_one_taken():
    assert rules.stale_token_reason(job(J.JOB_CLAIMED, token=7), 7) is None
    assert rules.stale_token_reason(job(J.JOB_CLAIMED, token=7), 9) is None  # this replica lags
    assert rules.stale_token_reason(None, 9) is None
    assert "stale" in rules.stale_token_reason(job(J.JOB_CLAIMED, token=9), 7)
    assert "completed" in rules.stale_token_reason(job(J.JOB_COMPLETED, token=7), 7)


def test_workers_leave_after_the_stale_bound_and_list_by_queue_then_id():
    beats = [J.JobWorker(queue=b"b", worker="w2", running=3, beat_ms=NOW_MS),
             J.JobWorker(queue=b"a", worker="w9", running=1, beat_ms=NOW_MS - 10),
             J.JobWorker(queue=b"b", worker="w1", running=2, beat_ms=NOW_MS - limits.JOB_WORKER_STALE_MS),
             J.JobWorker(queue=b"b", worker="old", running=5, beat_ms=NOW_MS - limits.JOB_WORKER_STALE_MS - 1)]
    assert [(w.queue, w.worker) for w in rules.live_workers(beats, b"", NOW_MS)] == [
        (b"a", "w9"), (b"b", "w1"), (b"b", "w2")]
    assert [w.worker for w in rules.live_workers(beats, b"b", NOW_MS)] == ["w1", "w2"]
    assert rules.workers_per_queue(beats, NOW_MS) == {b"a": (1, 1), b"b": (2, 5)}


def test_keys_fit_a_keyed_table_at_the_longest_names():
    key = rules.worker_key(b"q" * limits.JOB_QUEUE_BYTES_MAX, "w" * limits.JOB_WORKER_ID_BYTES_MAX)
    assert len(key) <= limits.KEYED_KEY_BYTES_MAX
    assert rules.worker_key(b"q", "w").startswith(rules.queue_key_prefix(b"q"))
    assert rules.progress_key(5) != rules.progress_key(6)


@pytest.mark.parametrize("request_, limit", [
    (J.JobProgressRequest(id=1, token=1, progress=101), "over 100"),
    (J.JobProgressRequest(id=1, token=0, progress=1), "token"),
    (J.JobProgressRequest(id=0, token=1), "job id"),
    (J.JobProgressRequest(id=1, token=1, note="x" * (limits.JOB_PROGRESS_NOTE_BYTES_MAX + 1)),
     "JOB_PROGRESS_NOTE_BYTES_MAX"),
    (J.JobHeartbeatRequest(queue=b"q", worker=""), "JOB_WORKER_ID_BYTES_MAX"),
    (J.JobHeartbeatRequest(queue=b"q", worker="a\nb"), "printable"),
    (J.JobHeartbeatRequest(queue=b"", worker="w"), "JOB_QUEUE_BYTES_MAX"),
    (J.JobWorkersRequest(queue=b"q" * (limits.JOB_QUEUE_BYTES_MAX + 1)), "JOB_QUEUE_BYTES_MAX"),
])
def test_bad_requests_are_refused_naming_what_to_fix(request_, limit):
    with pytest.raises(InvalidArgument, match=limit):
        validation.check_request(request_)


def test_a_lost_claim_in_the_state_machine_makes_its_progress_leave():
    applier = Applier(MemoryView())
    job_id = enqueue(applier).id
    lease = grant(applier)
    (claimed,) = claim(applier, lease)
    report = J.JobProgress(id=job_id, token=claimed.token, progress=50, at_ms=NOW_MS)
    assert rules.progress_shown(report, get(applier, job_id), NOW_MS) == report
    applier.write(lease_pb2.LeaseRevokeRequest(id=lease))
    assert rules.progress_leaves(report, get(applier, job_id), NOW_MS)
    (again,) = claim(applier, grant(applier))
    assert rules.progress_shown(report, get(applier, job_id), NOW_MS) is None
    applier.write(J.JobCompleteRequest(id=job_id, token=again.token))
    assert rules.progress_leaves(J.JobProgress(id=job_id, token=again.token, at_ms=NOW_MS),
                                 get(applier, job_id), NOW_MS)
