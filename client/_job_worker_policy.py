"""`WorkerCore`: the job worker's decisions, one object both shells drive
(the rules are in `_job_worker_core`'s docstring). Pure: time comes in as
`now_s`, answers come in through `on_done` and `handler_returned`, and
what to do next goes out as an action (`Wait`, `Send`, `TimedOut`,
`Done`) from `next_action`. The shells call it from one loop; the sync
shell's handler threads call `handler_returned` and `settled` under its
lock.

A slot that frees settles its job and claims the next ones in the same
request (a Settle: one Raft entry), so it waits for one commit per job, not
two (settle, then claim); the outcomes of jobs that finish while Settle
requests are in flight wait in the `SettleBook` (`_job_settlements`) and
go together in the next one, with the claim for every slot freed. Claims
may therefore be in flight from several places at once (the loop's claim,
each Settle's): each reserves its slots and rate tokens when it is sent
(`claims_in_flight`), and gives back what it did not get when answered, so
the worker never asks for more jobs than it has free slots and tokens.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tandemkv import errors, limits
from tandemkv.client import _coordination_ops as cops
from tandemkv.client import _jobs_ops as ops
from tandemkv.client._job_settlements import UNKNOWN_OUTCOMES, WORKER_SETTLES_IN_FLIGHT_MAX, SettleBook, SettleSteps
from tandemkv.client._job_worker_core import (
    CALL_RETRY_S, IDLE_PEEK_S_MAX, IDLE_PEEK_S_MIN, IDLE_POLL_S_MAX, WORKER_BEAT_S, IDLE_POLL_S_MIN, KEEPALIVE_PER_TTL, KEEPALIVE_RETRY_S, LOOP_WAIT_S_MAX,
    RATE_BURST_S, Done, Running, Send, TimedOut, TokenBucket, Wait, WorkerSettings, WorkerStats,
    log,
)
from tandemkv.client._jobs_ops import Job
from tandemkv.client._retry import Retry



class WorkerCore(SettleSteps):
    def __init__(self, settings: WorkerSettings, retry: Retry, now_s: float):
        self.settings = settings
        ttl_s = settings.lease_ttl_s
        # Every call of the loop ends within half a renewal interval, so a
        # slow claim never delays the lease's renewal past its TTL.
        budget_s = min(retry.deadline_s, ttl_s / (2 * KEEPALIVE_PER_TTL))
        self.loop_retry = dataclasses.replace(retry, deadline_s=budget_s,
                                              attempt_timeout_s=min(retry.attempt_timeout_s, budget_s))
        self.settle_retry = retry
        rate = settings.rate_limit
        self.bucket = None if rate is None else TokenBucket(rate, max(1.0, rate * RATE_BURST_S), now_s)
        self.lease_id = 0
        self.lease_ok_s = now_s  # the last grant or renewal that succeeded
        self.grant_at_s = now_s
        self.renew_at_s = math.inf
        self.running: dict[int, Running] = {}
        # Earlier runs of jobs claimed again (timed out, or their lease lost)
        # that still run, by (job id, token): each keeps its slot until it returns.
        self.lingering: dict[tuple[int, int], Running] = {}
        self.book = SettleBook()  # finished jobs' outcomes, waiting, in flight, or to send again
        self.settle_at_s = math.inf  # when a request kept to send again goes
        self.pending_claim: Send | None = None  # a claim to send again as the same request
        # Jobs asked for by claims sent and not answered yet (the loop's, and
        # those riding on settlements): their slots and tokens are reserved.
        self.claims_in_flight = 0
        self.next_claim_s = now_s
        self.empty_claims = 0
        # While the queue is empty: when to read its counts next, and the pause after that.
        self.peek_at_s = math.inf
        self.peek_pause_s = IDLE_PEEK_S_MIN
        self.beat_at_s = now_s
        self.stopping = False
        self.stop_deadline_s = math.inf
        self.done = False
        self.stats = WorkerStats()

    # -- decisions -----------------------------------------------------------
    def claim_size(self, now_s: float, on_settlement: bool = False) -> int:
        """How many jobs a claim sent now should ask for (0: none now). A
        claim riding on a settlement costs no request of its own, so the
        idle pause after an empty claim does not hold it back."""
        if self.stopping or not self.lease_id or (now_s < self.next_claim_s and not on_settlement):
            return 0
        free = self._free()
        tokens = self.bucket.whole(now_s) if self.bucket is not None else free
        return max(0, min(free, tokens, limits.JOB_CLAIM_JOBS_MAX))

    def _free(self) -> int:
        """Jobs the worker could take now: its capacity less those it holds and those asked for."""
        return self.settings.capacity - len(self.running) - len(self.lingering) - self.claims_in_flight

    def next_action(self, now_s: float) -> Wait | Send | TimedOut | Done:
        if self.done:
            return Done()
        ttl_s = self.settings.lease_ttl_s
        if self.lease_id and now_s - self.lease_ok_s >= ttl_s:
            self._lose_lease(f"no renewal succeeded for a whole TTL ({ttl_s:g} s)")
        for running in self.running.values():
            if not running.abandoned and now_s >= running.deadline_s:
                running.abandoned = "timed out"
                seconds = running.job.timeout_ms / 1000
                error = f"timed out: the handler ran past the job's timeout of {seconds:g} s"
                self.book.add(ops.settlement(running.job.id, running.job.token, error=error), now_s)
                return TimedOut(running.job, self.next_settlement(now_s, self.loop_retry))
        if self._settle_ready(now_s):  # outcomes no handler's thread took along
            return self.next_settlement(now_s, self.loop_retry)
        if self.book.resend and now_s >= self.settle_at_s and self.book.in_flight < WORKER_SETTLES_IN_FLIGHT_MAX:
            self.settle_at_s = now_s + CALL_RETRY_S
            return self.book.next_resend()
        if self.lease_id and now_s >= self.renew_at_s:  # while stopping too: handlers still run under it
            return Send(cops.lease_keepalive(self.lease_id), self.loop_retry, "renew")
        if self.lease_id and now_s >= self.beat_at_s:
            return self._beat(now_s)
        if self.stopping:
            return self._stop_step(now_s)
        if not self.lease_id:
            if now_s >= self.grant_at_s:
                return Send(cops.lease_grant(ttl_s), self.loop_retry, "grant")
        elif self.pending_claim is not None and now_s >= self.next_claim_s:
            return self.pending_claim
        elif not self.book.waiting and (size := self.claim_size(now_s)) > 0:
            # (Slots freed by outcomes that wait are claimed by their Settle, with no request of its own.)
            self._reserve(size, now_s)
            return Send(ops.claim(self.settings.queue, self.lease_id, size), self.loop_retry, "claim")
        elif now_s >= self.peek_at_s and self._free() > 0 and not self.book.waiting:
            self.peek_at_s = math.inf  # the next is set by the answer
            return Send(ops.stats(self.settings.queue, stale=True), self.loop_retry, "peek")
        return Wait(self._wait_s(now_s))

    def _stop_step(self, now_s: float) -> Wait | Send | Done:
        """Claims nothing more; once nothing runs (or the grace is over),
        revokes the lease, releasing whatever it still holds."""
        if self.pending_claim is not None:
            # Not sent again: whatever it may have claimed goes back to the
            # queue with the lease, revoked below.
            self._unreserve(self.pending_claim, 0, now_s)
            self.pending_claim = None
        # A settlement in flight is waited for too: revoking the lease under it
        # would refuse it and hand its job, done already, to another worker. A
        # handler whose job timed out is not: its failure is recorded already,
        # and its thread, which cannot be stopped, may run for a long time.
        running = any(not r.abandoned for r in self.running.values())
        if (running or self.book.busy or self.claims_in_flight) and now_s < self.stop_deadline_s:
            return Wait(self._wait_s(now_s))
        for send in self.book.resend:
            self._unreserve(send, 0, now_s)
        for job_id in self.book.drop_unsent():
            log.warning("job %d: its outcome was not recorded before the stop's grace ended", job_id)
            self.stats.lost += 1
        for running in self.running.values():
            if not running.abandoned:
                running.abandoned = "released at stop"
                self.stats.released += 1
                log.warning("job %d still ran when the worker stopped: released to other workers",
                            running.job.id)
        if self.lease_id:
            lease_id, self.lease_id = self.lease_id, 0
            return Send(cops.lease_revoke(lease_id), self.loop_retry, "release")
        if self.beat_at_s < math.inf:  # the last beat takes the worker off the list
            self.beat_at_s = math.inf
            return Send(ops.heartbeat(self.settings.queue, self.settings.name, 0, stopping=True),
                        self.loop_retry, "beat")
        self.done = True
        return Done()

    def _beat(self, now_s: float) -> Send:
        self.beat_at_s = now_s + WORKER_BEAT_S
        return Send(ops.heartbeat(self.settings.queue, self.settings.name, len(self.running)),
                    self.loop_retry, "beat")

    def _wait_s(self, now_s: float) -> float:
        # A kept request goes at settle_at_s only below the in-flight bound;
        # at the bound, the answer that frees a place wakes the loop.
        resend_may_go = self.book.resend and self.book.in_flight < WORKER_SETTLES_IN_FLIGHT_MAX
        resend_s = self.settle_at_s if resend_may_go else math.inf
        wakes = [now_s + LOOP_WAIT_S_MAX, resend_s]
        if self.book.waiting and self.book.in_flight < WORKER_SETTLES_IN_FLIGHT_MAX:
            wakes.append(self.book.gather_until_s())
        if self.lease_id:
            wakes += [self.renew_at_s, self.lease_ok_s + self.settings.lease_ttl_s, self.beat_at_s]
        wakes += [r.deadline_s for r in self.running.values() if not r.abandoned]
        if self.stopping:
            wakes.append(self.stop_deadline_s)
        elif not self.lease_id:
            wakes.append(self.grant_at_s)
        elif self._free() > 0 and not self.book.waiting:  # (waiting outcomes' Settle claims their slots)
            wake_s = min(self.next_claim_s, self.peek_at_s)
            if self.bucket is not None:
                wake_s = max(wake_s, now_s + self.bucket.wait_s(now_s))
            wakes.append(wake_s)
        return max(0.0, min(wakes) - now_s)

    # -- what happened ---------------------------------------------------------
    def on_done(self, send: Send, answer: Any, error: errors.TandemKVError | None, now_s: float) -> list[Job]:
        """The answer (or error) of a `Send`; returns the jobs to start."""
        if send.purpose == "grant":
            if error is not None:
                log.warning("could not grant the worker's lease (trying again): %s", error.message)
                self.grant_at_s = now_s + CALL_RETRY_S
            else:
                self.lease_id, self.lease_ok_s = answer, now_s
                self.renew_at_s = now_s + self.settings.lease_ttl_s / KEEPALIVE_PER_TTL
        elif send.purpose == "renew":
            self._renewed(answer, error, now_s)
        elif send.purpose == "claim":
            return self._claimed(send, answer, error, now_s)
        elif send.purpose == "settle":
            return self.settled(send, answer, error, now_s)
        elif send.purpose == "peek":
            self._peeked(answer, error, now_s)
        elif send.purpose == "beat" and error is not None:
            log.info("a heartbeat of the worker failed (the next one comes in %g s): %s", WORKER_BEAT_S,
                     error.message)
        elif send.purpose == "release" and error is not None:
            log.warning("could not revoke the worker's lease (its jobs return when it expires): %s",
                        error.message)
        return []

    def _renewed(self, ttl_s: float | None, error: errors.TandemKVError | None, now_s: float) -> None:
        if error is not None:
            self.renew_at_s = now_s + KEEPALIVE_RETRY_S  # lost once a whole TTL passes without success
        elif ttl_s is None:
            self._lose_lease("the cluster says it is gone (expired or revoked)")
        else:
            self.lease_ok_s = now_s
            self.renew_at_s = now_s + self.settings.lease_ttl_s / KEEPALIVE_PER_TTL

    def _claimed(self, send: Send, jobs: list[Job] | None, error: errors.TandemKVError | None,
                 now_s: float) -> list[Job]:
        if send.operation.request.lease != self.lease_id:
            self._unreserve(send, 0, now_s)
            return []  # an answer about a lease given up meanwhile: its jobs went with it
        if isinstance(error, errors.FailedPrecondition):
            self._unreserve(send, 0, now_s)
            if self.pending_claim is send:  # released just now: not again by _lose_lease
                self.pending_claim = None
            self._lose_lease(error.message)
            return []
        if error is not None:
            log.warning("claim from queue %r failed (trying again): %s", self.settings.queue, error.message)
            self.pending_claim = send if isinstance(error, UNKNOWN_OUTCOMES) else None
            if self.pending_claim is None:
                self._unreserve(send, 0, now_s)
            self.next_claim_s = now_s + CALL_RETRY_S
            return []
        assert jobs is not None
        self.pending_claim = None
        return self._took(send, jobs, now_s)

    def _took(self, send: Send, jobs: list[Job], now_s: float) -> list[Job]:
        """The jobs a claim (alone or on a settlement) brought: they run now."""
        asked = send.asked
        assert len(jobs) <= asked
        self._unreserve(send, len(jobs), now_s)
        for job in jobs:
            if (earlier := self.running.get(job.id)) is not None:
                # Its earlier run goes on (timed out, or its lease lost): kept
                # apart, its slot taken and its outcome dropped when it returns.
                if not earlier.abandoned:  # its lease was lost: its claim ended with it
                    earlier.abandoned = "claimed again"
                    self.stats.lost += 1
                self.lingering[(job.id, earlier.job.token)] = earlier
            deadline_s = now_s + job.timeout_ms / 1000 if job.timeout_ms else math.inf
            self.running[job.id] = Running(job, deadline_s)
        self.stats.claimed += len(jobs)
        self.stats.running = len(self.running)
        # A short answer means the queue is drained for now: the loop's next
        # claim waits a little, longer after each answer with nothing, while
        # stale reads of the counts watch for new jobs (`_peeked`).
        self.empty_claims = self.empty_claims + 1 if not jobs else 0
        if len(jobs) >= asked:
            pause_s = 0.0
        elif jobs:
            pause_s = IDLE_POLL_S_MIN
        else:
            pause_s = min(IDLE_POLL_S_MAX, IDLE_POLL_S_MIN * 2 ** (self.empty_claims - 1))
        self.next_claim_s = now_s + pause_s
        if jobs:
            self.peek_at_s, self.peek_pause_s = math.inf, IDLE_PEEK_S_MIN
        elif self.peek_at_s == math.inf:
            self.peek_at_s = now_s + self.peek_pause_s
        return jobs

    def _peeked(self, queues: list | None, error: errors.TandemKVError | None, now_s: float) -> None:
        """The counts of the queue, read while it was empty: a job available
        is claimed now; none, and the next read waits longer. A queue at its
        cluster-wide limit counts as empty: a claim would get nothing, and
        each claim is a Raft write."""
        available = 0 if error is not None else sum(
            q.available for q in queues if q.queue == self.settings.queue
            and not (q.concurrency_max and q.claimed >= q.concurrency_max))
        if available > 0:
            self.next_claim_s = now_s
            self.peek_pause_s = IDLE_PEEK_S_MIN
            return
        self.peek_pause_s = IDLE_PEEK_S_MAX if error is not None else min(IDLE_PEEK_S_MAX, 2 * self.peek_pause_s)
        self.peek_at_s = now_s + self.peek_pause_s

    def _reserve(self, size: int, now_s: float) -> None:
        """A claim of `size` jobs is being sent: its slots and tokens are taken now."""
        self.claims_in_flight += size
        if self.bucket is not None:
            self.bucket.take(size, now_s)

    def _unreserve(self, send: Send, got: int, now_s: float) -> None:
        """The claim of `send` is answered (or given up): its slots are
        released, and the tokens of the jobs it did not bring given back."""
        asked = send.asked
        self.claims_in_flight -= asked
        assert self.claims_in_flight >= 0, "every reservation is released once"
        if self.bucket is not None and asked > got:
            self.bucket.give_back(asked - got, now_s)

    def _lose_lease(self, why: str) -> None:
        log.warning("the worker's lease %d is lost (%s); its jobs go back to the queue", self.lease_id, why)
        if self.pending_claim is not None:
            self._unreserve(self.pending_claim, 0, self.lease_ok_s)
        # Outcomes on their way still go: each is refused if its claim ended
        # with the lease, and recorded if the lease lived on after all.
        self.lease_id, self.renew_at_s, self.pending_claim = 0, math.inf, None

    def stop(self, graceful: bool, now_s: float) -> None:
        """Claims nothing more; `graceful`: running handlers get `grace_s`."""
        if not self.stopping:
            self.stopping = True
            self.stop_deadline_s = now_s + (self.settings.grace_s if graceful else 0.0)
        elif not graceful:
            self.stop_deadline_s = min(self.stop_deadline_s, now_s)

