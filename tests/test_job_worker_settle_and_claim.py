"""The job worker's policy with settle-and-claim: a slot that frees settles
its job and claims the next ones in the same request, so it waits for one
commit per job; every claim in flight (the loop's, each settlement's)
reserves its slots and rate tokens when sent and gives back what it did not
get, so the worker never asks for more jobs than it has free slots (plus
`prefetch`, the jobs it may claim ahead, when asked to).

Method: a `WorkerCore` driven as the shells drive it, with time a number the
test moves and answers it makes up (tests/test_job_worker_core.py's helpers).
"""

from __future__ import annotations

import pytest

from tandemkv import errors
from tandemkv.client._job_worker_core import (CALL_RETRY_S, WORKER_CONCURRENCY_MAX, WORKER_PREFETCH_JOBS_MAX, Send,
                                              Wait, WorkerSettings)
from tandemkv.client._job_settlements import WORKER_SETTLE_GATHER_S
from tests.test_job_worker_core import LEASE, answer, claim_now, make_job, settled_ids, with_lease


def settle_now(core, job_id: int, now_s: float, value: bytes = b"ok") -> Send:
    """Job `job_id`'s handler returns at `now_s`; its Settle, sent at once or,
    as other handlers run, once it has waited WORKER_SETTLE_GATHER_S for theirs."""
    send = core.handler_returned(job_id, value, now_s=now_s)
    if send is None:
        send = core.next_action(now_s + WORKER_SETTLE_GATHER_S)
    assert isinstance(send, Send) and send.purpose == "settle", send
    return send


def test_a_freed_slot_settles_and_claims_its_next_job_in_one_request():
    core = with_lease(concurrency=2)
    claim_now(core, 0.0, [make_job(1), make_job(2)])
    settle = settle_now(core, 1, 1.0)
    request = settle.operation.request
    assert settle.operation.method == "Settle" and request.settlements[0].result == b"ok"
    assert request.claim_next.lease == LEASE and request.claim_next.limit == 1
    assert core.claim_size(1.0) == 0 and isinstance(core.next_action(1.0), Wait)  # reserved: no loop claim
    started = core.settled(settle, answer(settle, "completed", claimed=(make_job(3, token=600),)), None, 1.1)
    assert [job.id for job in started] == [3] and sorted(core.running) == [2, 3]
    assert core.claims_in_flight == 0 and core.stats.completed == 1 and core.stats.claimed == 3


def test_a_failing_handler_fails_its_job_and_claims_the_next_one():
    core = with_lease(concurrency=1)
    claim_now(core, 0.0, [make_job(1)])
    settle = core.handler_returned(1, error=ValueError("bad"), now_s=1.0)
    assert settle.operation.request.settlements[0].failed and settle.operation.request.claim_next.limit == 1
    assert core.settled(settle, answer(settle, "retryable"), None, 1.0) == []
    assert core.stats.failed == 1 and core.claims_in_flight == 0
    assert core.next_claim_s > 1.0  # the queue was empty: the next claim waits the idle pause


def test_a_refused_settlement_claims_nothing_and_gives_its_slot_and_tokens_back():
    core = with_lease(concurrency=1, rate_limit=1.0)
    claim_now(core, 0.0, [make_job(1)])
    core.bucket.give_back(1, 0.0)  # a token for the next claim
    settle = core.handler_returned(1, b"ok", now_s=0.0)
    assert settle.operation.request.claim_next.limit == 1 and core.bucket.whole(0.0) == 0
    core.settled(settle, None, errors.FailedPrecondition(f"lease {LEASE} of claim_next not found"), 0.0)
    assert core.stats.lost == 1 and core.claims_in_flight == 0 and core.bucket.whole(0.0) == 1
    assert core.claim_size(0.0) == 1


def test_a_settlement_of_unknown_outcome_is_sent_again_with_its_claim_and_keeps_its_reservation():
    core = with_lease(concurrency=1)
    claim_now(core, 0.0, [make_job(1)])
    settle = core.handler_returned(1, b"ok", now_s=0.0)
    core.settled(settle, None, errors.OutcomeUnknown("the leader changed"), 0.0)
    assert core.claims_in_flight == 1 and core.claim_size(0.0) == 0
    again = core.next_action(CALL_RETRY_S)
    assert isinstance(again, Send) and again.operation.request == settle.operation.request  # same request id
    started = core.on_done(again, answer(again, "completed", claimed=(make_job(2, token=700),)), None,
                           CALL_RETRY_S)
    assert [job.id for job in started] == [2] and core.claims_in_flight == 0 and core.stats.completed == 1


def test_a_settlement_kept_across_a_lost_lease_still_goes_and_its_refusal_releases_its_reservation():
    core = with_lease(concurrency=1)
    claim_now(core, 0.0, [make_job(1)])
    settle = core.handler_returned(1, b"ok", now_s=0.0)
    core.settled(settle, None, errors.Unavailable("no leader"), 0.0)
    core._lose_lease("test")  # the lease may live on at the cluster: the outcome is still worth sending
    again = core.next_action(CALL_RETRY_S)
    assert isinstance(again, Send) and again.operation.request == settle.operation.request
    core.settled(again, None, errors.FailedPrecondition(f"lease {LEASE} of claim_next not found"), CALL_RETRY_S)
    assert core.claims_in_flight == 0 and not core.book.busy and core.stats.lost == 1


def test_jobs_claimed_under_a_lease_given_up_meanwhile_are_not_started():
    core = with_lease(concurrency=1)
    claim_now(core, 0.0, [make_job(1)])
    settle = core.handler_returned(1, b"ok", now_s=0.0)
    core._lose_lease("test")
    assert core.settled(settle, answer(settle, "completed", claimed=(make_job(2),)), None, 0.0) == []
    assert core.running == {} and core.claims_in_flight == 0


def test_a_graceful_stop_waits_for_a_settlement_in_flight_before_it_revokes_the_lease():
    core = with_lease(concurrency=1, grace_s=30.0)
    claim_now(core, 0.0, [make_job(1)])
    settle = core.handler_returned(1, b"ok", now_s=0.0)
    core.stop(graceful=True, now_s=0.0)
    assert isinstance(core.next_action(0.0), Wait)  # revoking now would refuse the settlement
    core.settled(settle, answer(settle, "completed"), None, 0.1)
    release = core.next_action(0.1)
    assert isinstance(release, Send) and release.purpose == "release"


def test_a_stopping_worker_settles_without_claiming():
    core = with_lease(concurrency=2)
    claim_now(core, 0.0, [make_job(1), make_job(2)])
    core.stop(graceful=True, now_s=0.5)
    settle = settle_now(core, 1, 1.0)
    assert not settle.operation.request.HasField("claim_next")


def test_prefetch_claims_ahead_of_free_slots_within_its_bound():
    core = with_lease(concurrency=2, prefetch=3)
    assert core.claim_size(0.0) == 5  # two slots and three jobs ahead
    claim_now(core, 0.0, [make_job(n) for n in range(1, 6)])
    assert core.claim_size(0.0) == 0
    settle = settle_now(core, 1, 0.1)
    assert settle.operation.request.claim_next.limit == 1  # the worker holds four: one more to five


@pytest.mark.parametrize("settings, named", [
    ({"prefetch": WORKER_PREFETCH_JOBS_MAX + 1}, "WORKER_PREFETCH_JOBS_MAX"),
    ({"prefetch": -1}, "WORKER_PREFETCH_JOBS_MAX"),
    ({"concurrency": WORKER_CONCURRENCY_MAX, "prefetch": 1}, "concurrency \\+ prefetch"),
])
def test_a_prefetch_out_of_bounds_is_refused_naming_the_limit(settings, named):
    with pytest.raises(ValueError, match=named):
        WorkerSettings(b"q", **settings)


def test_a_settlement_claims_even_while_the_loop_waits_out_an_empty_queue():
    core = with_lease(concurrency=2)
    claim_now(core, 0.0, [make_job(1)])  # a short answer: the loop's next claim waits
    assert core.next_claim_s > 0.0 and core.claim_size(0.0) == 0
    settle = core.handler_returned(1, b"ok", now_s=0.0)
    assert settle.operation.request.claim_next.limit == 2  # costs no request of its own


def test_an_empty_queue_is_watched_by_stale_reads_and_claimed_from_once_they_show_a_job():
    from tandemkv.client._job_worker_core import IDLE_PEEK_S_MAX, IDLE_PEEK_S_MIN
    from tandemkv.client._jobs_ops import QueueStats

    core = with_lease(concurrency=2)
    claim_now(core, 0.0, [])
    peek = core.next_action(IDLE_PEEK_S_MIN)
    assert isinstance(peek, Send) and peek.purpose == "peek" and peek.operation.method == "Stats"
    assert peek.operation.request.consistency == 1  # STALE: no Raft write, no read barrier
    core.on_done(peek, [QueueStats(b"q", 0, 0, 0, 0, 0, 0, 0)], None, IDLE_PEEK_S_MIN)
    assert core.peek_at_s == IDLE_PEEK_S_MIN + 2 * IDLE_PEEK_S_MIN  # nothing: the next read waits longer
    core.next_claim_s = 10.0  # as after many empty claims: the loop's own claim is far off
    now_s = core.peek_at_s
    peek = core.next_action(now_s)
    assert isinstance(peek, Send) and peek.purpose == "peek"
    core.on_done(peek, [QueueStats(b"q", 3, 0, 0, 0, 0, 0, 0)], None, now_s)
    claim = core.next_action(now_s)
    assert isinstance(claim, Send) and claim.purpose == "claim" and claim.operation.request.limit == 2
    core.on_done(claim, [make_job(1), make_job(2)], None, now_s)
    assert core.peek_at_s == float("inf") and core.empty_claims == 0
    assert IDLE_PEEK_S_MAX <= 0.1  # new jobs are found within a tenth of a second


def test_a_queue_at_its_cluster_wide_limit_reads_as_empty_and_is_claimed_from_once_below_it():
    from tandemkv.client._job_worker_core import IDLE_PEEK_S_MIN
    from tandemkv.client._jobs_ops import QueueStats

    core = with_lease(concurrency=2)
    claim_now(core, 0.0, [])
    core.next_claim_s = 10.0  # the loop's own claim is far off: only a peek can bring one sooner
    now_s = IDLE_PEEK_S_MIN
    peek = core.next_action(now_s)
    assert isinstance(peek, Send) and peek.purpose == "peek"
    # 5 jobs wait, but 3 are claimed (by other workers) under a limit of 3: a claim would get nothing.
    core.on_done(peek, [QueueStats(b"q", 5, 0, 3, 0, 0, 0, 0, concurrency_max=3)], None, now_s)
    assert core.next_claim_s == 10.0 and core.peek_at_s == now_s + 2 * IDLE_PEEK_S_MIN
    now_s = core.peek_at_s
    peek = core.next_action(now_s)
    core.on_done(peek, [QueueStats(b"q", 5, 0, 2, 0, 0, 0, 0, concurrency_max=3)], None, now_s)
    claim = core.next_action(now_s)
    assert isinstance(claim, Send) and claim.purpose == "claim"


def test_outcomes_that_finish_while_settles_are_in_flight_go_together_with_the_claim_of_their_slots():
    core = with_lease(concurrency=7)
    claim_now(core, 0.0, [make_job(n, token=100 + n) for n in range(1, 8)])
    first = settle_now(core, 1, 0.1)
    second = settle_now(core, 2, 0.2)
    assert (settled_ids(first), settled_ids(second)) == ([1], [2])
    assert [core.handler_returned(n, b"ok", now_s=0.3) for n in (3, 4, 5)] == [None, None, None]
    assert isinstance(core.next_action(0.4), Wait)  # two in flight: the loop sends nothing either
    core.settled(first, answer(first, "completed"), None, 0.5)
    batch = core.next_settlement(0.5)  # 6 and 7 still run, but 3, 4, 5 waited long enough
    assert settled_ids(batch) == [3, 4, 5] and batch.operation.request.claim_next.limit == 4  # and 1's slot
    assert core.next_settlement(0.5) is None  # nothing waits now
    started = core.settled(batch, answer(batch, "completed", None, "completed",
                                         claimed=(make_job(8), make_job(9), make_job(10))), None, 0.6)
    assert [job.id for job in started] == [8, 9, 10] and core.stats.lost == 1 and core.stats.completed == 3


def test_a_settle_carries_at_most_job_settle_jobs_max_outcomes():
    from tandemkv import limits

    count = limits.JOB_SETTLE_JOBS_MAX + 5
    core = with_lease(concurrency=count)
    claim_now(core, 0.0, [make_job(n) for n in range(1, 257)])
    claim_now(core, 0.0, [make_job(n) for n in range(257, count + 1)])
    first, second = settle_now(core, 1, 0.0), settle_now(core, 2, 0.0)
    assert [core.handler_returned(n, b"", now_s=0.1) for n in range(3, count + 1)] == [None] * (count - 2)
    core.settled(first, answer(first, "completed"), None, 0.0)
    batch = core.next_settlement(0.0)
    assert len(settled_ids(batch)) == limits.JOB_SETTLE_JOBS_MAX
    core.settled(second, answer(second, "completed"), None, 0.0)
    assert len(settled_ids(core.next_settlement(0.0))) == count - 2 - limits.JOB_SETTLE_JOBS_MAX


def test_while_outcomes_wait_for_their_settle_the_loop_neither_claims_nor_spins():
    core = with_lease(concurrency=3)
    claim_now(core, 0.0, [make_job(1), make_job(2), make_job(3)])
    settle_now(core, 1, 0.0)
    settle_now(core, 2, 0.0)
    assert core.handler_returned(3, b"ok", now_s=0.1) is None
    wait = core.next_action(0.1)
    assert isinstance(wait, Wait) and wait.seconds > 0.1, wait  # no claim of 3's slot, and no busy loop


def test_with_nothing_in_flight_an_outcome_waits_a_moment_for_the_handlers_running_beside_it():
    core = with_lease(concurrency=3)
    claim_now(core, 0.0, [make_job(1), make_job(2), make_job(3)])
    assert all(core.handler_started(n) for n in (1, 2, 3))
    assert core.handler_returned(1, b"ok", now_s=1.0) is None  # 2 and 3 still run
    wait = core.next_action(1.0)
    assert isinstance(wait, Wait) and 0 < wait.seconds <= WORKER_SETTLE_GATHER_S * 1.001
    assert core.handler_returned(2, b"ok", now_s=1.0005) is None
    gathered = core.next_action(1.0 + WORKER_SETTLE_GATHER_S)  # 3 runs on: the two go without it
    assert isinstance(gathered, Send) and settled_ids(gathered) == [1, 2]
    assert gathered.operation.request.claim_next.limit == 2
    core.settled(gathered, answer(gathered, "completed", "completed"), None, 1.01)
    alone = core.handler_returned(3, b"ok", now_s=1.02)  # no other handler runs: at once
    assert settled_ids(alone) == [3]


def test_a_job_claimed_ahead_that_timed_out_while_it_waited_for_a_turn_does_not_run():
    core = with_lease(concurrency=1, prefetch=1)
    claim_now(core, 0.0, [make_job(1), make_job(2, timeout_ms=1000)])
    assert core.handler_started(1)
    timed_out = core.next_action(1.0)
    assert timed_out.job.id == 2
    assert not core.handler_started(2)


def test_a_settle_stays_within_a_command_whatever_the_results_weigh():
    from tandemkv import limits
    from tandemkv.server.strong import commands

    core = with_lease(concurrency=5)
    claim_now(core, 0.0, [make_job(n, token=10**12 + n) for n in range(1, 6)])
    biggest = b"r" * limits.JOB_ARGS_BYTES_MAX
    first = settle_now(core, 1, 0.0, biggest)
    second = settle_now(core, 2, 0.0, biggest)
    assert [core.handler_returned(n, biggest, now_s=0.1) for n in (3, 4, 5)] == [None, None, None]
    core.settled(first, answer(first, "completed"), None, 0.2)
    core.settled(second, answer(second, "completed"), None, 0.2)
    sends = [core.next_settlement(0.2), core.next_settlement(0.2)]
    assert [settled_ids(send) for send in sends] == [[3], [4]]  # one result of the largest size per request
    for send in sends:
        encoded = commands.encode_write(send.operation.request, send.operation.request.request_id, 0)
        assert len(encoded) <= limits.COMMAND_SIZE_BYTES_MAX


def test_a_graceful_stop_does_not_wait_for_a_timed_out_handler_whose_failure_is_recorded():
    core = with_lease(concurrency=2, grace_s=60.0)
    claim_now(core, 0.0, [make_job(1, timeout_ms=1000)])
    timed_out = core.next_action(1.0)
    assert timed_out.job.id == 1 and timed_out.fail is not None
    core.settled(timed_out.fail, answer(timed_out.fail, "retryable"), None, 1.1)
    core.stop(graceful=True, now_s=1.2)
    release = core.next_action(1.2)  # its thread still runs, but nothing of it is owed to the cluster
    assert isinstance(release, Send) and release.purpose == "release", release
    assert core.stats.failed == 1 and core.stats.released == 0
