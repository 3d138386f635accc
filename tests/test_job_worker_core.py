"""The job worker's policy (client/_job_worker_policy.py, _job_worker_core.py)
with hand-built inputs and no cluster: how many jobs a claim asks for, when
the lease is renewed or counted lost, what a handler's return, exception or
timeout becomes, what a refused or lost settlement does, how a stop ends,
the token bucket, and run_many's bookkeeping.

Method: a `WorkerCore` is driven the way the shells drive it, with time as a
number the test moves and answers the test makes up (`Job`s built by hand).
"""

from __future__ import annotations

import math

import pytest

from tandemkv import errors, limits
from tandemkv.client._job_run_many import RUN_MANY_ITEMS_MAX, RunMany, RunManyFailed
from tandemkv.client._job_worker_core import (
    CALL_RETRY_S, IDLE_POLL_S_MAX, IDLE_POLL_S_MIN, KEEPALIVE_PER_TTL, KEEPALIVE_RETRY_S, Done, Send, TimedOut,
    TokenBucket, Wait, WorkerSettings, encode_result, error_text,
)
from tandemkv.client._job_worker_policy import WorkerCore
from tandemkv.client._jobs_ops import Job, JobPage, SettleAnswer, SettleOutcome
from tandemkv.client._retry import Retry

TTL_S = 9.0
LEASE = 77


def make_job(job_id: int, token: int = 500, timeout_ms: int = 0, args: bytes = b"", state: str = "claimed",
             result: bytes = b"", last_error: str = "") -> Job:
    return Job(job_id, b"q", args, state, 0, 0, 1, 3, 0, last_error, b"", timeout_ms, LEASE, token, result, 0, 0)


def make_core(now_s: float = 0.0, **settings) -> WorkerCore:
    settings = {"concurrency": 4, "lease_ttl_s": TTL_S, **settings}
    return WorkerCore(WorkerSettings(b"q", **settings), Retry(), now_s)


def with_lease(now_s: float = 0.0, **settings) -> WorkerCore:
    """A core that has granted its lease and sent its first heartbeat."""
    core = make_core(now_s, **settings)
    grant = core.next_action(now_s)
    assert isinstance(grant, Send) and grant.purpose == "grant"
    core.on_done(grant, LEASE, None, now_s)
    beat = core.next_action(now_s)
    assert isinstance(beat, Send) and beat.purpose == "beat"
    core.on_done(beat, "n1", None, now_s)
    return core


def claim_now(core: WorkerCore, now_s: float, jobs: list[Job]) -> Send:
    action = core.next_action(now_s)
    assert isinstance(action, Send) and action.purpose == "claim", action
    core.on_done(action, jobs, None, now_s)
    return action


def answer(send: Send, *states: str | None, claimed: tuple[Job, ...] = ()) -> SettleAnswer:
    """The cluster's answer to the Settle `send`: each settlement recorded with
    its state from `states` in order (None: refused as stale), and `claimed`."""
    settlements = send.operation.request.settlements
    assert len(states) == len(settlements), (states, settlements)
    return SettleAnswer([SettleOutcome(s.id, state is not None, "" if state else f"job {s.id}: token is stale",
                                       state or "claimed") for s, state in zip(settlements, states)],
                        list(claimed))


def settled_ids(send: Send) -> list[int]:
    return [settlement.id for settlement in send.operation.request.settlements]


# -- claim sizing ---------------------------------------------------------------
def test_a_claim_asks_for_the_free_slots_and_no_more():
    core = with_lease()
    first = claim_now(core, 0.0, [make_job(1), make_job(2), make_job(3), make_job(4)])
    assert first.operation.request.limit == 4 and first.operation.request.lease == LEASE
    assert core.claim_size(0.0) == 0 and isinstance(core.next_action(0.0), Wait)
    core.handler_returned(2, b"ok")
    assert core.claim_size(0.0) == 1
    assert claim_now(core, 0.0, [make_job(5)]).operation.request.limit == 1


def test_a_claim_never_asks_for_more_than_job_claim_jobs_max():
    core = with_lease(concurrency=1000)
    assert core.claim_size(0.0) == limits.JOB_CLAIM_JOBS_MAX


def test_an_empty_queue_is_polled_less_often_up_to_the_idle_maximum():
    core = with_lease()
    now_s, pauses = 0.0, []
    for _ in range(8):
        claim_now(core, now_s, [])
        pauses.append(core.next_claim_s - now_s)
        now_s = core.next_claim_s
    assert pauses[0] == pytest.approx(IDLE_POLL_S_MIN) and pauses[1] == pytest.approx(2 * IDLE_POLL_S_MIN)
    assert pauses[-1] == pytest.approx(IDLE_POLL_S_MAX) and pauses == sorted(pauses)
    claim_now(core, now_s, [make_job(1), make_job(2), make_job(3), make_job(4)])
    assert core.next_claim_s == now_s  # a full answer: claim again as soon as a slot frees


def test_the_rate_limit_bounds_each_claim_by_whole_tokens():
    core = with_lease(concurrency=8, rate_limit=2.0)
    assert core.claim_size(0.0) == 2  # the bucket holds RATE_BURST_S (1 s) of tokens
    claim_now(core, 0.0, [make_job(1), make_job(2)])
    assert core.claim_size(0.0) == 0
    wait = core.next_action(0.0)
    assert isinstance(wait, Wait) and wait.seconds == pytest.approx(0.5)
    assert core.claim_size(0.5) == 1


def test_token_bucket_refills_at_its_rate_up_to_its_capacity():
    bucket = TokenBucket(rate_per_s=4.0, capacity=4.0, now_s=0.0)
    assert bucket.whole(0.0) == 4
    bucket.take(4, 0.0)
    assert bucket.whole(0.0) == 0 and bucket.wait_s(0.0) == pytest.approx(0.25)
    assert bucket.whole(0.5) == 2
    assert bucket.whole(100.0) == 4
    bucket.take(6, 100.0)  # a claim sent again may overspend: the debt delays what follows
    assert bucket.whole(100.0) == 0 and bucket.wait_s(100.0) == pytest.approx(0.75)


# -- the lease: renewals and loss --------------------------------------------------
def test_the_lease_is_renewed_every_third_of_its_ttl_while_handlers_run():
    core = with_lease()
    claim_now(core, 0.0, [make_job(1)])
    interval_s = TTL_S / KEEPALIVE_PER_TTL
    wait = core.next_action(0.0)
    assert isinstance(wait, Wait) and wait.seconds <= interval_s
    renew = core.next_action(interval_s)
    assert isinstance(renew, Send) and renew.purpose == "renew" and renew.operation.request.id == LEASE
    core.on_done(renew, TTL_S, None, interval_s)
    assert core.renew_at_s == 2 * interval_s
    # Every call of the loop ends within half a renewal interval.
    assert core.loop_retry.deadline_s == pytest.approx(interval_s / 2)


def test_a_failed_renewal_is_tried_again_soon_and_the_lease_is_lost_after_a_whole_ttl():
    core = with_lease()
    now_s = TTL_S / KEEPALIVE_PER_TTL
    renew = core.next_action(now_s)
    core.on_done(renew, None, errors.Unavailable("no leader"), now_s)
    assert core.renew_at_s == now_s + KEEPALIVE_RETRY_S and core.lease_id == LEASE
    action = core.next_action(TTL_S)
    assert core.lease_id == 0
    assert isinstance(action, Send) and action.purpose == "grant"


def test_a_lease_the_cluster_says_is_gone_is_replaced_and_a_claim_for_it_is_ignored():
    core = with_lease()
    claim = core.next_action(0.0)
    renew_time_s = TTL_S / KEEPALIVE_PER_TTL
    core.renew_at_s = 0.0
    renew = core.next_action(0.0)
    core.on_done(renew, None, None, renew_time_s)  # found=False
    assert core.lease_id == 0
    assert core.on_done(claim, [make_job(1)], None, renew_time_s) == []  # its jobs went with the lease
    assert core.running == {}


def test_a_claim_refused_for_its_lease_loses_the_lease():
    core = with_lease()
    claim = core.next_action(0.0)
    core.on_done(claim, None, errors.FailedPrecondition("lease 77 not found (expired or revoked)"), 0.0)
    assert core.lease_id == 0 and core.pending_claim is None


def test_a_claim_of_unknown_outcome_is_sent_again_as_the_same_request():
    core = with_lease()
    claim = core.next_action(0.0)
    core.on_done(claim, None, errors.OutcomeUnknown("the leader changed"), 0.0)
    assert isinstance(core.next_action(0.0), Wait)
    again = core.next_action(CALL_RETRY_S)
    assert again is claim and again.operation.request_id == claim.operation.request_id
    core.on_done(again, [make_job(1)], None, CALL_RETRY_S)
    assert list(core.running) == [1] and core.pending_claim is None


# -- handlers' outcomes ------------------------------------------------------------------
def test_a_return_completes_the_job_under_its_claims_token_and_an_exception_fails_it_with_its_text():
    core = with_lease()
    claim_now(core, 0.0, [make_job(1, token=11), make_job(2, token=12), make_job(3, token=13)])
    first = core.handler_returned(1, "done")
    (done,) = first.operation.request.settlements
    assert first.operation.method == "Settle" and first.operation.request.queue == b"q"
    assert (done.id, done.token, done.result, done.failed) == (1, 11, b"done", False)
    second = core.handler_returned(2, error=ValueError("bad input"))
    (failed,) = second.operation.request.settlements
    assert failed.failed and failed.token == 12 and failed.error == "ValueError: bad input"
    assert core.handler_returned(3, 42) is None  # two Settles in flight: it waits for the next
    core.settled(first, answer(first, "completed"), None, 0.0)
    third = core.next_settlement(0.0)
    (wrong,) = third.operation.request.settlements
    assert wrong.failed and "returned int" in wrong.error
    core.settled(second, answer(second, "retryable"), None, 0.0)
    core.settled(third, answer(third, "retryable"), None, 0.0)
    assert (core.stats.completed, core.stats.failed) == (1, 2) and not core.book.busy


def test_results_and_errors_are_bounded_by_their_limits():
    with pytest.raises(ValueError, match="JOB_ARGS_BYTES_MAX"):
        encode_result(b"x" * (limits.JOB_ARGS_BYTES_MAX + 1))
    long = "é" * limits.JOB_ERROR_BYTES_MAX
    assert len(error_text(long).encode()) <= limits.JOB_ERROR_BYTES_MAX
    assert error_text("a" * 10 + "z" * limits.JOB_ERROR_BYTES_MAX, tail=True).endswith("z")


def test_a_refused_settlement_is_dropped_and_a_lost_one_is_sent_again_as_the_same_request():
    core = with_lease()
    claim_now(core, 0.0, [make_job(1), make_job(2)])
    refused = core.handler_returned(1, b"")
    core.settled(refused, answer(refused, None), None, 0.0)
    assert core.stats.lost == 1 and not core.book.busy
    lost = core.handler_returned(2, b"")
    core.settled(lost, None, errors.OutcomeUnknown("deadline"), 0.0)
    again = core.next_action(CALL_RETRY_S)
    assert isinstance(again, Send) and again.purpose == "settle"
    assert again.operation.request_id == lost.operation.request_id
    core.settled(again, answer(again, "completed"), None, CALL_RETRY_S)
    assert core.stats.completed == 1 and not core.book.busy


def test_a_job_past_its_timeout_is_failed_and_its_late_outcome_dropped_while_its_slot_stays_taken():
    core = with_lease(concurrency=1)
    claim_now(core, 0.0, [make_job(1, timeout_ms=2000)])
    wait = core.next_action(0.0)
    assert isinstance(wait, Wait) and wait.seconds <= 2.0
    timed_out = core.next_action(2.0)
    assert isinstance(timed_out, TimedOut) and timed_out.job.id == 1
    (failure,) = timed_out.fail.operation.request.settlements
    assert timed_out.fail.operation.method == "Settle" and failure.failed and "timeout of 2 s" in failure.error
    assert core.claim_size(2.0) == 0  # the handler still runs (a thread cannot be stopped)
    assert core.handler_returned(1, b"late") is None
    assert core.claim_size(2.0) == 1


# -- stopping -------------------------------------------------------------------------
def test_a_graceful_stop_claims_nothing_waits_for_running_handlers_then_revokes_the_lease():
    core = with_lease(grace_s=5.0)
    claim_now(core, 0.0, [make_job(1)])
    core.stop(graceful=True, now_s=1.0)
    assert core.claim_size(1.0) == 0 and isinstance(core.next_action(1.0), Wait)
    settle = core.handler_returned(1, b"ok")
    core.settled(settle, answer(settle, "completed"), None, 2.0)
    release = core.next_action(2.0)
    assert isinstance(release, Send) and release.purpose == "release" and release.operation.request.id == LEASE
    core.on_done(release, True, None, 2.0)
    last_beat = core.next_action(2.0)
    assert last_beat.purpose == "beat" and last_beat.operation.request.stopping
    assert isinstance(core.next_action(2.0), Done)
    assert core.stats.released == 0 and core.stats.completed == 1


def test_a_stop_with_a_claim_of_unknown_outcome_revokes_the_lease_at_once_instead_of_waiting_out_the_grace():
    core = with_lease(grace_s=30.0)
    claim = core.next_action(0.0)
    assert isinstance(claim, Send) and claim.purpose == "claim"
    core.on_done(claim, None, errors.Unavailable("the leader changed"), 0.0)  # outcome unknown: kept to resend
    core.stop(graceful=True, now_s=0.1)
    release = core.next_action(0.1)
    assert isinstance(release, Send) and release.purpose == "release", release
    assert core.claims_in_flight == 0 and core.pending_claim is None


def test_a_resent_claim_refused_for_a_lost_lease_releases_its_slots_once_and_the_worker_goes_on():
    core = with_lease()
    claim = core.next_action(0.0)
    core.on_done(claim, None, errors.Unavailable("the leader changed"), 0.0)
    again = core.next_action(CALL_RETRY_S)
    assert again is claim, "an unknown outcome is sent again as the same request"
    core.on_done(again, None, errors.FailedPrecondition(f"lease {LEASE} not found"), CALL_RETRY_S)
    assert core.claims_in_flight == 0 and core.lease_id == 0
    grant = core.next_action(CALL_RETRY_S + 1.0)
    assert isinstance(grant, Send) and grant.purpose == "grant", "a new lease, then claims again"


def test_the_lease_is_renewed_while_a_graceful_stop_waits_for_handlers():
    core = with_lease(grace_s=60.0)
    claim_now(core, 0.0, [make_job(1)])
    core.stop(graceful=True, now_s=1.0)
    now_s = 0.0
    for _ in range(6):  # two TTLs of waiting for the handler
        now_s = core.renew_at_s
        renew = core.next_action(now_s)
        assert isinstance(renew, Send) and renew.purpose == "renew", renew
        core.on_done(renew, TTL_S, None, now_s)
    assert core.lease_id == LEASE and core.running
    settlement = core.handler_returned(1, b"ok")
    assert isinstance(core.next_action(now_s), Send)  # the beat that was due; the release waits for the settlement
    core.settled(settlement, answer(settlement, "completed"), None, now_s)
    assert finish(core, now_s) == ["release", "beat"]  # the last beat says stopping  # a beat was due; the last one says stopping


def finish(core: WorkerCore, now_s: float) -> list[str]:
    """Answers every Send of a stopping core until it is done: their purposes."""
    purposes = []
    while not isinstance(action := core.next_action(now_s), Done):
        assert isinstance(action, Send) and len(purposes) < 10, action
        purposes.append(action.purpose)
        core.on_done(action, TTL_S if action.purpose == "renew" else True, None, now_s)
    return purposes


def test_a_stop_whose_grace_ends_releases_what_still_runs_and_drops_its_outcome():
    core = with_lease(grace_s=5.0)
    claim_now(core, 0.0, [make_job(1), make_job(2)])
    core.stop(graceful=True, now_s=1.0)
    core.handler_returned(1, b"ok")
    wait = core.next_action(1.0)
    assert isinstance(wait, Wait) and wait.seconds <= 5.0
    assert finish(core, 6.0) == ["renew", "beat", "release", "beat"]  # renewed up to the release
    assert core.stats.released == 1 and core.handler_returned(2, b"too late") is None


def test_a_stop_that_is_not_graceful_releases_at_once():
    core = with_lease()
    claim_now(core, 0.0, [make_job(1)])
    core.stop(graceful=False, now_s=0.5)
    assert core.next_action(0.5).purpose == "release" and core.stats.released == 1


def test_settings_out_of_bounds_are_refused_naming_the_limit():
    with pytest.raises(ValueError, match="WORKER_CONCURRENCY_MAX"):
        WorkerSettings(b"q", concurrency=0)
    with pytest.raises(ValueError, match="LEASE_TTL_MS_MIN"):
        WorkerSettings(b"q", lease_ttl_s=0.1)
    with pytest.raises(ValueError, match="rate_limit"):
        WorkerSettings(b"q", rate_limit=0)
    with pytest.raises(ValueError, match="JOB_QUEUE_BYTES_MAX"):
        WorkerSettings(b"")


# -- run_many's bookkeeping -------------------------------------------------------------
def test_run_many_returns_results_in_the_items_order_and_names_the_failed_items():
    book = RunMany("q", ["a", "b", "c"], max_attempts=1, timeout_s=10, job_timeout_s=None, priority=0)
    book.enqueued_all([30, 10, 20])
    assert book.list_from() == 9
    page = JobPage([make_job(10, state="completed", result=b"B"), make_job(20, state="claimed")], True, 20)
    assert book.take_page(page) == 20
    assert book.take_page(JobPage([make_job(30, state="completed", result=b"A")], False, 30)) is None
    assert not book.done and book.list_from() == 19
    book.take_page(JobPage([make_job(20, state="completed", result=b"C")], False, 20))
    assert book.done and book.outcome() == [b"A", b"B", b"C"]

    failing = RunMany("q", ["a", "b"], max_attempts=1, timeout_s=10, job_timeout_s=None, priority=0)
    failing.enqueued_all([1, 2])
    failing.take_page(JobPage([make_job(1, state="completed"), make_job(2, state="dead", last_error="E: x")],
                              False, 2))
    with pytest.raises(RunManyFailed, match=r"1 of 2 items did not complete: item 1 \(job 2\): dead: E: x") as raised:
        failing.outcome()
    assert raised.value.failures == {1: "dead: E: x"} and raised.value.results == [b"", None]


def test_run_many_refuses_too_many_items_and_oversized_ones():
    with pytest.raises(ValueError, match="RUN_MANY_ITEMS_MAX"):
        RunMany("q", [b""] * (RUN_MANY_ITEMS_MAX + 1), max_attempts=1, timeout_s=1, job_timeout_s=None, priority=0)
    with pytest.raises(ValueError, match="item 1 is .* JOB_ARGS_BYTES_MAX"):
        RunMany("q", [b"", b"x" * (limits.JOB_ARGS_BYTES_MAX + 1)], max_attempts=1, timeout_s=1,
                job_timeout_s=None, priority=0)
    assert math.isfinite(RunMany("q", [], max_attempts=1, timeout_s=1, job_timeout_s=None, priority=0).timeout_s)
