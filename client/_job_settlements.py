"""`SettleBook`: the job worker's finished jobs on their way to the cluster.

A worker's handlers finish one by one, but each settlement sent alone costs
the leader a gRPC call, a Raft command and a share of an fsync. So a
finished job's outcome waits here while WORKER_SETTLES_IN_FLIGHT_MAX Settle
requests are in flight, and the next request carries every outcome that
waited (up to JOB_SETTLE_JOBS_MAX): the batch grows with the load. With
nothing in flight, an outcome goes at once when no other handler runs, and
otherwise waits up to WORKER_SETTLE_GATHER_S for theirs: jobs claimed
together tend to finish together, and without the wait the first of them
would take a commit of its own and the rest the next (half the requests
carrying one outcome).

`SettleBook` is the bookkeeping; `SettleSteps` the worker core's decisions
about it (a part of `WorkerCore`, `_job_worker_policy`, which the shells
drive): no clock but the `now_s` passed in, no I/O. A request whose
outcome is unknown is kept to be sent again as the same request (the
cluster applies it once), apart from the waiting ones.
"""

from __future__ import annotations

import dataclasses
import math

from tandemkv import errors, limits
from tandemkv.client import _jobs_ops as ops
from tandemkv.client._job_worker_core import (CALL_RETRY_S, Running, Send, WorkerSettings, WorkerStats, encode_result,
                                              error_text, log)
from tandemkv.client._jobs_ops import Job
from tandemkv.client._retry import Retry
from tandemkv.v1 import jobs_pb2 as J

# Errors after which a claim or settlement may have applied: sent again as the same request.
UNKNOWN_OUTCOMES = (errors.OutcomeUnknown, errors.Unavailable)

# Settle requests one worker has in flight at most. Two: while one waits for
# its commit, the next fills with the outcomes finishing meanwhile and goes
# as soon as any is there, so a finished job waits less than one commit.
WORKER_SETTLES_IN_FLIGHT_MAX = 2
# How long an outcome waits, with no Settle in flight, for those of the other
# handlers running beside it (seconds): the most a job's settlement is held back.
WORKER_SETTLE_GATHER_S = 0.002
# Bytes of one Settle's settlements at most: a command less room for its queue, claim and ids
# (results of JOB_ARGS_BYTES_MAX, half a command, go one to a request).
SETTLE_REQUEST_BYTES_MAX = limits.COMMAND_SIZE_BYTES_MAX - limits.JOB_QUEUE_BYTES_MAX - 1024
# What one settlement adds to a request beyond its own bytes (field tag and length).
SETTLEMENT_FRAMING_BYTES = 8


class SettleBook:
    def __init__(self) -> None:
        self.waiting: list[J.JobSettlement] = []  # finished, not sent yet, in finishing order
        self.oldest_s = 0.0  # when the oldest waiting outcome was booked
        self.in_flight = 0  # Settle requests sent and not answered
        # Requests to send again as they were (outcome unknown), oldest first.
        self.resend: list[Send] = []

    def add(self, settlement: J.JobSettlement, now_s: float) -> None:
        if not self.waiting:
            self.oldest_s = now_s
        self.waiting.append(settlement)

    def ready(self, now_s: float, others_running: bool) -> bool:
        """Whether a new request should go now (see the module's docstring)."""
        if not self.waiting or self.in_flight >= WORKER_SETTLES_IN_FLIGHT_MAX:
            return False
        return (not others_running or len(self.waiting) >= limits.JOB_SETTLE_JOBS_MAX
                or now_s >= self.gather_until_s())

    def gather_until_s(self) -> float:
        """When the waiting outcomes go even though other handlers still run."""
        return self.oldest_s + WORKER_SETTLE_GATHER_S

    def take(self) -> list[J.JobSettlement]:
        """The settlements of the next request (in flight from now on): the
        oldest, up to JOB_SETTLE_JOBS_MAX and SETTLE_REQUEST_BYTES_MAX."""
        count, size_bytes = 0, 0
        for settlement in self.waiting[:limits.JOB_SETTLE_JOBS_MAX]:
            size_bytes += settlement.ByteSize() + SETTLEMENT_FRAMING_BYTES
            if count and size_bytes > SETTLE_REQUEST_BYTES_MAX:
                break
            count += 1
        batch = self.waiting[:count]
        del self.waiting[:count]
        self.in_flight += 1
        return batch

    def next_resend(self) -> Send:
        """The oldest kept request, going again: in flight once more."""
        self.in_flight += 1
        return self.resend.pop(0)

    def answered(self) -> None:
        """A request in flight was answered (or failed)."""
        self.in_flight -= 1
        assert self.in_flight >= 0, "every request is answered once"

    def keep(self, send: Send) -> None:
        """A request whose outcome is unknown: kept to be sent again as it was."""
        self.resend.append(send)

    @property
    def busy(self) -> bool:
        """Outcomes not recorded yet: waiting, in flight, or to send again."""
        return bool(self.waiting or self.in_flight or self.resend)

    def drop_unsent(self) -> list[int]:
        """Ends the waiting and the kept requests (a stop's grace is over):
        the ids of the jobs whose outcome will not be recorded."""
        dropped = [s.id for s in self.waiting]
        self.waiting.clear()
        for send in self.resend:
            dropped.extend(s.id for s in send.operation.request.settlements)
        self.resend.clear()
        return dropped


class SettleSteps:
    """How `WorkerCore` books a handler's outcome and settles it (mixed into
    it: the attributes below are the core's)."""

    book: SettleBook
    running: dict[int, Running]
    lingering: dict[tuple[int, int], Running]
    stats: WorkerStats
    settings: WorkerSettings
    lease_id: int
    settle_retry: Retry
    loop_retry: Retry
    settle_at_s: float
    done: bool

    def handler_returned(self, job_id: int, value: object = None, error: BaseException | None = None,
                         now_s: float | None = None, token: int | None = None) -> Send | None:
        """A handler ended with `value` or `error`: frees its slot and books
        the job's outcome; returns the Settle to send now, if one may go
        (else the outcome waits for the next: `next_settlement`). Given
        `now_s`, the Settle also claims the next jobs, as many as there are
        free slots and tokens then (the answer's jobs come back from
        `settled`). `token`: the claim's, as the shell ran it (an earlier
        run of a job claimed again may return after the new one started)."""
        running = self.lingering.pop((job_id, token), None)
        if running is None:
            running = self.running.pop(job_id)
        self.stats.running = len(self.running)
        if running.abandoned:
            log.info("job %d ended after it was %s; its outcome is dropped", job_id, running.abandoned)
            return None
        job = running.job
        settlement = None
        if error is None:
            try:
                settlement = ops.settlement(job.id, job.token, result=encode_result(value))
            except (TypeError, ValueError) as refused:
                error = refused
        if settlement is None:
            settlement = ops.settlement(job.id, job.token, error=error_text(error))
        self.book.add(settlement, now_s if now_s is not None else math.inf)
        return self.next_settlement(now_s)

    def handler_started(self, job_id: int, token: int | None = None) -> bool:
        """A handler thread or task got its turn for `job_id`: returns whether
        to run it (a job claimed ahead may have timed out while it waited):
        whether the run's outcome still counts."""
        return (job_id, token) not in self.lingering and not self.running[job_id].abandoned

    def _settle_ready(self, now_s: float | None) -> bool:
        # Jobs held and not abandoned run or are about to (a job claimed ahead
        # waits only while every turn is taken, so some handler runs then).
        others_running = any(not r.abandoned for r in self.running.values())
        return self.book.ready(math.inf if now_s is None else now_s, others_running)

    def next_settlement(self, now_s: float | None, retry: Retry | None = None) -> Send | None:
        """The next Settle, carrying every outcome that waits (and, given
        `now_s`, the claim of the free slots), if one may go now."""
        if not self._settle_ready(now_s):
            return None
        batch = self.book.take()
        size = self.claim_size(now_s, on_settlement=True) if now_s is not None else 0
        if size > 0:
            self._reserve(size, now_s)
        operation = ops.settle(self.settings.queue, batch, self.lease_id if size else 0, size)
        return Send(operation, retry or self.settle_retry, "settle")

    def settled(self, send: Send, answer: ops.SettleAnswer | None, error: errors.TandemKVError | None,
                now_s: float) -> list[Job]:
        """A Settle was answered (or refused, or lost in flight); returns the
        jobs it claimed, to start. The shell then asks `next_settlement`:
        outcomes may have waited meanwhile."""
        self.book.answered()
        request = send.operation.request
        if error is None:
            assert answer is not None
            for settlement, outcome in zip(request.settlements, answer.outcomes):
                if not outcome.settled:
                    self.stats.lost += 1
                    log.warning("job %d: its claim had ended, so this outcome is dropped: %s", outcome.id,
                                outcome.refused)
                elif settlement.failed:
                    self.stats.failed += 1
                else:
                    self.stats.completed += 1
            if not request.HasField("claim_next"):
                return []
            if request.claim_next.lease != self.lease_id:
                self._unreserve(send, 0, now_s)
                return []  # claimed under a lease given up meanwhile: its jobs went with it
            return self._took(send, answer.claimed, now_s)
        ids = ", ".join(str(settlement.id) for settlement in request.settlements)
        if isinstance(error, UNKNOWN_OUTCOMES) and not self.done:
            # Sent again as the same request (its claim too): the reservation stays.
            log.warning("jobs %s: recording their outcomes failed (trying again): %s", ids, error.message)
            if not self.book.resend:
                self.settle_at_s = now_s + CALL_RETRY_S
            self.book.keep(dataclasses.replace(send, retry=self.loop_retry))
        else:  # the lease of claim_next is gone (so are the claims), a refusal retrying cannot fix, or
            # the worker has stopped (its grace ended with this in flight): nothing would send it again
            self.stats.lost += len(request.settlements)
            self._unreserve(send, 0, now_s)
            log.warning("jobs %s: their outcomes are dropped: %s", ids, error.message)
        return []
