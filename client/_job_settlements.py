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

Pure bookkeeping, driven by `WorkerCore` (`_job_worker_policy`): no clock,
no I/O. A request whose outcome is unknown is kept to be sent again as the
same request (the cluster applies it once), apart from the waiting ones.
"""

from __future__ import annotations

from tandemkv import limits
from tandemkv.client._job_worker_core import Send
from tandemkv.v1 import jobs_pb2 as J

# Settle requests one worker has in flight at most. Two: while one waits for
# its commit, the next fills with the outcomes finishing meanwhile and goes
# as soon as any is there, so a finished job waits less than one commit.
WORKER_SETTLES_IN_FLIGHT_MAX = 2
# How long an outcome waits, with no Settle in flight, for those of the other
# handlers running beside it (seconds): the most a job's settlement is held back.
WORKER_SETTLE_GATHER_S = 0.002


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
        """The settlements of the next request (in flight from now on)."""
        batch = self.waiting[:limits.JOB_SETTLE_JOBS_MAX]
        del self.waiting[:len(batch)]
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
