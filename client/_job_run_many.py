"""`run_many`'s bookkeeping, shared by `Jobs.run_many` and
`AsyncJobs.run_many`: one job per item, then pages of the queue read in
id order until every item's job has finished, and the results in the
items' order or `RunManyFailed` naming the items that did not complete.
No I/O: the shells enqueue the items with `enqueue_many` (as few
EnqueueMany requests as the limits allow, one Raft entry each, the ids in
the items' order), hand the ids over (`enqueued_all`) and feed the pages
back.
"""

from __future__ import annotations

from tandemkv import limits
from tandemkv.client import _jobs_ops as ops
from tandemkv.client._jobs_ops import Job, JobPage
from tandemkv.client._operations import Operation
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.errors import TandemKVError

# Items one run_many call takes at most.
RUN_MANY_ITEMS_MAX = 10_000
# Whole-call timeout by default, and at most.
RUN_MANY_TIMEOUT_S_DEFAULT = 300.0
RUN_MANY_TIMEOUT_S_MAX = 24 * 3600.0
# Failures an item's job may have before it counts as failed, by default.
RUN_MANY_MAX_ATTEMPTS_DEFAULT = 3
# Between two reads of the queue: from the first pause, doubling while nothing finishes, up to the last.
RUN_MANY_POLL_S_MIN = 0.02
RUN_MANY_POLL_S_MAX = 0.5
# Failed or unfinished items named in the error's message (the rest are counted).
RUN_MANY_ERRORS_NAMED_MAX = 5

FINISHED = ("completed", "dead", "cancelled")


class RunManyFailed(TandemKVError):
    """Some items of a `run_many` did not complete. `failures` maps an item's
    index to its job's last error (dead or cancelled), `unfinished` lists
    the indexes still running at the timeout (their jobs were cancelled),
    `results` holds each completed item's result (None for the others)."""

    def __init__(self, message: str, failures: dict[int, str], unfinished: list[int],
                 results: list[bytes | None]):
        super().__init__(message)
        self.failures, self.unfinished, self.results = failures, unfinished, results


class RunMany:
    """The state of one call: items -> job ids -> results."""

    def __init__(self, queue: BytesLike, items: list[BytesLike], *, max_attempts: int, timeout_s: float,
                 job_timeout_s: float | None, priority: int):
        if len(items) > RUN_MANY_ITEMS_MAX:
            raise ValueError(f"run_many takes at most RUN_MANY_ITEMS_MAX={RUN_MANY_ITEMS_MAX} items, got "
                             f"{len(items)}; split them into several calls")
        if not 0 < timeout_s <= RUN_MANY_TIMEOUT_S_MAX:
            raise ValueError(f"timeout_s must be above 0 and at most RUN_MANY_TIMEOUT_S_MAX="
                             f"{RUN_MANY_TIMEOUT_S_MAX:g}, got {timeout_s}")
        self.queue = to_bytes(queue, "queue")
        self.args = [to_bytes(item, f"item {index}") for index, item in enumerate(items)]
        for index, args in enumerate(self.args):
            if len(args) > limits.JOB_ARGS_BYTES_MAX:
                raise ValueError(f"item {index} is {len(args)} bytes, over JOB_ARGS_BYTES_MAX="
                                 f"{limits.JOB_ARGS_BYTES_MAX}")
        self.timeout_s = timeout_s
        # What every item's job is enqueued with (enqueue_many's options).
        self.options = {"max_attempts": max_attempts, "timeout_s": job_timeout_s, "priority": priority}
        self.job_ids: list[int] = [0] * len(items)
        self.index_of: dict[int, int] = {}
        self.finished: dict[int, Job] = {}  # item index -> its finished job
        self.poll_s = RUN_MANY_POLL_S_MIN

    def enqueued_all(self, job_ids: list[int]) -> None:
        """The items' job ids, in the items' order."""
        assert len(job_ids) == len(self.job_ids), (len(job_ids), len(self.job_ids))
        for index, job_id in enumerate(job_ids):
            self.job_ids[index] = job_id
            self.index_of[job_id] = index

    @property
    def done(self) -> bool:
        return len(self.finished) == len(self.job_ids)

    def list_from(self) -> int:
        """Where a read of the queue starts: below the first unfinished job."""
        return min(self.job_ids[i] for i in range(len(self.job_ids)) if i not in self.finished) - 1

    def page_operation(self, after_id: int) -> Operation:
        return ops.list_jobs(self.queue, after_id=after_id)

    def take_page(self, page: JobPage) -> int | None:
        """Notes the finished jobs of a page; returns where the next page of
        this round starts, or None when the round is over."""
        for job in page.jobs:
            index = self.index_of.get(job.id)
            if index is not None and job.state in FINISHED and index not in self.finished:
                self.finished[index] = job
        last_id = max(self.job_ids)
        if not page.more or page.next_after_id >= last_id or self.done:
            return None
        return page.next_after_id

    def pause_s(self, progressed: bool) -> float:
        """The wait before the next round: short while jobs keep finishing."""
        self.poll_s = RUN_MANY_POLL_S_MIN if progressed else min(RUN_MANY_POLL_S_MAX, self.poll_s * 2)
        return self.poll_s

    def unfinished_ids(self) -> list[int]:
        return [job_id for index, job_id in enumerate(self.job_ids) if job_id and index not in self.finished]

    def outcome(self) -> list[bytes]:
        """The results in the items' order, or RunManyFailed."""
        results: list[bytes | None] = [None] * len(self.job_ids)
        failures: dict[int, str] = {}
        for index, job in self.finished.items():
            if job.state == "completed":
                results[index] = job.result
            else:
                failures[index] = f"{job.state}: {job.last_error}" if job.last_error else job.state
        unfinished = [index for index in range(len(self.job_ids)) if index not in self.finished]
        if not failures and not unfinished:
            return [result or b"" for result in results]
        named = [f"item {i} (job {self.job_ids[i]}): {failures[i]}" for i in sorted(failures)]
        named += [f"item {i} (job {self.job_ids[i]}): still unfinished after {self.timeout_s:g} s, cancelled"
                  for i in unfinished]
        more = len(named) - RUN_MANY_ERRORS_NAMED_MAX
        message = (f"{len(failures) + len(unfinished)} of {len(self.job_ids)} items did not complete: "
                   + "; ".join(named[:RUN_MANY_ERRORS_NAMED_MAX]) + (f"; and {more} more" if more > 0 else ""))
        raise RunManyFailed(message, failures, unfinished, results)
