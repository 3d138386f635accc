"""The job worker's settlements at their edges: a request kept to be sent
again while WORKER_SETTLES_IN_FLIGHT_MAX others are in flight, a Settle
whose outcome is unknown after the worker has stopped, and a job claimed
again while the thread of its timed-out run still runs.

Method: a `WorkerCore` driven as the shells drive it, with time a number the
test moves and answers it makes up (tests/test_job_worker_core.py's helpers).
"""

from __future__ import annotations

import pytest

from tandemkv import errors
from tandemkv.client._job_worker_core import CALL_RETRY_S, Done, Send, TimedOut, Wait
from tests.test_job_worker_core import answer, claim_now, make_job, settled_ids, with_lease
from tests.test_job_worker_settle_and_claim import settle_now


def test_a_kept_settle_that_is_due_while_two_are_in_flight_does_not_spin_the_loop():
    core = with_lease(concurrency=3)
    claim_now(core, 0.0, [make_job(1), make_job(2), make_job(3)])
    lost = settle_now(core, 1, 1.0)
    core.settled(lost, None, errors.Unavailable("no leader"), 1.01)  # kept, due at 1.01 + CALL_RETRY_S
    second = settle_now(core, 2, 1.1)
    third = core.handler_returned(3, b"ok", now_s=1.2)  # nothing else runs: at once, the second in flight
    assert settled_ids(second) == [2] and settled_ids(third) == [3] and core.book.in_flight == 2
    due_s = 1.01 + CALL_RETRY_S + 0.01
    wait = core.next_action(due_s)  # the resend is due but may not go until an answer comes
    assert isinstance(wait, Wait) and wait.seconds > 0, wait  # Wait(0) here, again and again, is a busy loop
    core.settled(second, answer(second, "completed"), None, due_s)  # the answer wakes the loop
    again = core.next_action(due_s)
    assert isinstance(again, Send) and again.operation.request == lost.operation.request


def test_a_settle_of_unknown_outcome_answered_after_the_worker_stopped_is_counted_lost():
    core = with_lease(concurrency=2, grace_s=1.0)
    claim_now(core, 0.0, [make_job(1), make_job(2)])
    core.stop(graceful=True, now_s=0.5)
    settle = core.handler_returned(1, b"ok", now_s=0.6)
    assert settle is None  # 2 runs: the outcome waits a moment for it
    settle = core.next_action(0.61)
    assert isinstance(settle, Send) and settled_ids(settle) == [1]
    actions = []
    while not isinstance(action := core.next_action(2.0), Done):  # the grace is over, the Settle in flight
        assert isinstance(action, Send) and len(actions) < 10, action
        actions.append(action.purpose)
        core.on_done(action, 9.0 if action.purpose == "renew" else True, None, 2.0)
    assert actions[-2:] == ["release", "beat"] and core.stats.released == 1
    core.settled(settle, None, errors.Unavailable("no leader"), 2.1)  # nothing will send it again now
    assert core.stats.lost == 1 and core.claims_in_flight == 0 and not core.book.busy


def test_a_timed_out_handler_still_running_when_its_job_is_claimed_again_does_not_settle_the_new_claim():
    core = with_lease(concurrency=2)
    claim_now(core, 0.0, [make_job(5, token=500, timeout_ms=1000)])
    timed_out = core.next_action(1.0)  # its thread runs on (a thread cannot be stopped)
    assert isinstance(timed_out, TimedOut) and timed_out.fail is not None
    core.settled(timed_out.fail, answer(timed_out.fail, "retryable"), None, 1.0)
    # After its backoff the job is available again, and this worker (a slot free) claims it anew.
    claim = core.next_action(2.0)
    assert isinstance(claim, Send) and claim.purpose == "claim" and claim.operation.request.limit == 1
    core.on_done(claim, [make_job(5, token=900, timeout_ms=1000)], None, 2.0)
    assert core.handler_started(5, 900) and not core.handler_started(5, 500)
    late = core.handler_returned(5, b"the first run's result", now_s=2.1, token=500)  # the first thread, at last
    assert late is None, "the first run's outcome would settle the second claim (token 900) while it still runs"
    assert core.running[5].job.token == 900 and core.claim_size(2.1) == 1  # the first run's slot is free again
    second = core.handler_returned(5, b"the second run's result", now_s=2.2, token=900)
    (settlement,) = second.operation.request.settlements
    assert settlement.token == 900 and settlement.result == b"the second run's result" and not core.running


def test_a_run_whose_lease_was_lost_keeps_its_slot_when_its_job_is_claimed_again_and_its_outcome_is_dropped():
    core = with_lease(concurrency=2)
    claim_now(core, 0.0, [make_job(5, token=500)])
    renew = core.next_action(3.0)
    core.on_done(renew, None, None, 3.0)  # the cluster says the lease is gone; the handler still runs
    grant = core.next_action(3.0)
    assert grant.purpose == "grant"
    core.on_done(grant, 88, None, 3.0)
    claim = core.next_action(3.0)
    assert claim.purpose == "claim" and claim.operation.request.limit == 1  # the old run keeps its slot
    core.on_done(claim, [make_job(5, token=900)], None, 3.0)  # the job came back to the queue: taken again
    assert core.claim_size(3.0) == 0 and core.stats.lost == 1  # two runs, two slots; the first claim ended
    assert core.handler_returned(5, b"old", now_s=3.1, token=500) is None
    assert settled_ids(core.handler_returned(5, b"new", now_s=3.2, token=900)) == [5]
