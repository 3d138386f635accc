"""`client.jobs` (`Jobs`): the durable job queue from the blocking client.
Every call is one operation of `_jobs_ops` (shared with `AsyncJobs`), run
with the client's routing and retries; writes carry a request id, so a
retried call applies once.

Claims are leases: a worker grants a lease (`client.lease(ttl_s)` keeps it
alive), claims jobs under it, and completes or fails each with the job's
`token`. If the worker dies, its lease expires and its jobs become
available again; a late `complete` with an old token raises
`FailedPrecondition` naming the current token.

Example::

    job_id = client.jobs.enqueue("emails", b'{"to": "a@example.com"}', unique_key="welcome:a")
    with client.lease(ttl_s=10) as lease:
        for job in client.jobs.claim("emails", lease.id, limit=8):
            try:
                send(job.args)
                client.jobs.complete(job.id, job.token)
            except Exception as error:
                client.jobs.fail(job.id, job.token, repr(error))
"""

from __future__ import annotations

import builtins
import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tandemkv.client import _jobs_ops as ops
from tandemkv.client._job_worker import WorkerMethods
from tandemkv.client._job_enqueue_many import EnqueueMany
from tandemkv.client._jobs_ops import Job, JobCron, JobPage, QueueStats, SettleAnswer, WorkerBeat
from tandemkv.client._results import BytesLike
from tandemkv.errors import TandemKVError
from tandemkv.v1 import jobs_pb2 as J

if TYPE_CHECKING:
    from tandemkv.client._sync import Client


class Jobs(WorkerMethods):
    def __init__(self, client: Client):
        self._client = client

    def enqueue(self, queue: BytesLike, args: BytesLike = b"", *, unique_key: BytesLike | None = None,
                run_at: float | datetime.datetime | None = None, priority: int = 0, max_attempts: int = 0,
                timeout_s: float | None = None, request_id: bytes | None = None,
                max_lost_claims: int = 0) -> int:
        """Enqueues a job and returns its id; with `unique_key`, while a job of
        the queue with that key is unfinished, returns that job's id instead.
        `run_at`: epoch seconds or an aware datetime (None: now); `priority`
        0 (first) .. JOB_PRIORITY_MAX; `max_attempts`: failures before it is
        dead (0: JOB_MAX_ATTEMPTS_DEFAULT); `timeout_s`: how long one claim
        may run before it counts as a failure; `max_lost_claims`: claims it
        may lose with their lease (its worker crashed or stalled) before it
        is dead (0: JOB_MAX_LOST_CLAIMS_DEFAULT)."""
        return self._client.run(ops.enqueue(queue, args, unique_key=unique_key, run_at=run_at,
                                            priority=priority, max_attempts=max_attempts,
                                            timeout_s=timeout_s, request_id=request_id,
                                            max_lost_claims=max_lost_claims))

    def enqueue_many(self, queue: BytesLike, items: Sequence[BytesLike], *,
                     unique_keys: Sequence[BytesLike] | None = None, run_at: float | datetime.datetime | None = None,
                     priority: int = 0, max_attempts: int = 0, timeout_s: float | None = None,
                     max_lost_claims: int = 0) -> list[int]:
        """Enqueues a job of `queue` per item (its args), returning their ids
        in the items' order; each option as for `enqueue`, for every job
        (`unique_keys`: one per item, or None). The items go in as few
        EnqueueMany requests as JOB_ENQUEUE_MANY_JOBS_MAX jobs and
        COMMAND_SIZE_BYTES_MAX bytes a request allow, one after another, so
        the ids increase in the items' order (a duplicate of a unique key
        answers the earlier job's id). Each request is all-or-none; if one
        fails after others were answered, their jobs stay enqueued and the
        error it raises carries `enqueued_ids` (the ids of the first items)
        and a note naming the items enqueued, not sent, and in doubt
        (OutcomeUnknown). An item too large is InvalidArgument before
        anything is sent. No items: []."""
        plan = EnqueueMany(queue, items, unique_keys=unique_keys, run_at=run_at, priority=priority,
                           max_attempts=max_attempts, timeout_s=timeout_s, max_lost_claims=max_lost_claims)
        for operation in plan.operations:
            try:
                plan.enqueued(self._client.run(operation))
            except TandemKVError as error:
                plan.failed(error)
                raise
        return plan.ids

    def claim(self, queue: BytesLike, lease: int, limit: int = 1) -> list[Job]:
        """Up to `limit` available jobs of `queue`, by priority, then run_at,
        then id, each now claimed under `lease` with its fencing `token`."""
        return self._client.run(ops.claim(queue, lease, limit))

    def complete(self, job_id: int, token: int, result: BytesLike = b"") -> Job:
        return self._client.run(ops.complete(job_id, token, result))

    def fail(self, job_id: int, token: int, error: str) -> Job:
        """Records a failure: the job is retryable after its backoff, or dead
        once it has failed max_attempts times."""
        return self._client.run(ops.fail(job_id, token, error))

    # Builds one settlement for `settle`: settlement(job.id, job.token, result=b"...")
    # completes the job, settlement(job.id, job.token, error="...") fails it.
    settlement = staticmethod(ops.settlement)

    def settle(self, queue: BytesLike, settlements: list[J.JobSettlement], *, lease: int | None = None,
               limit: int = 0) -> SettleAnswer:
        """Completes or fails many claimed jobs of `queue` in one Raft entry
        (at most JOB_SETTLE_JOBS_MAX, each job once; build each with
        `settlement`). Each is fenced alone, as `complete` and `fail` are: a
        stale token refuses that one (its outcome says why) and the others
        still apply. With `lease`, the same entry then claims up to `limit`
        (1..JOB_CLAIM_JOBS_MAX, 0 meaning 1) jobs of `queue` under it; a
        lease that is gone raises FailedPrecondition and records nothing.
        Answers each settlement's outcome in order and the jobs claimed."""
        return self._client.run(ops.settle(queue, settlements, lease or 0, limit))

    def retry(self, job_id: int) -> Job:
        return self._client.run(ops.by_id("Retry", job_id))

    def cancel(self, job_id: int) -> Job:
        return self._client.run(ops.by_id("Cancel", job_id))

    def discard(self, job_id: int) -> Job:
        return self._client.run(ops.by_id("Discard", job_id))

    def get(self, job_id: int, *, stale: bool = False) -> Job | None:
        return self._client.run(ops.get(job_id, stale))

    def list(self, queue: BytesLike | None = None, *, state: str | None = None, after_id: int = 0,
             limit: int = 0, stale: bool = False) -> JobPage:
        return self._client.run(ops.list_jobs(queue, state, after_id, limit, stale))

    def stats(self, queue: BytesLike | None = None, *, stale: bool = False) -> builtins.list[QueueStats]:
        return self._client.run(ops.stats(queue, stale))

    def set_queue_limit(self, queue: BytesLike, concurrency_max: int) -> int:
        """Limits `queue` cluster-wide: at most `concurrency_max` of its jobs
        claimed at once, whatever the number of workers (their claims, and
        the claims their settlements carry, take no more than the room
        left); 0 removes the limit. Lowering it below the jobs claimed now
        releases none of them: the queue claims nothing until they fall
        below it. At most JOB_QUEUE_CONCURRENCY_MAX; at most
        JOB_QUEUE_LIMITS_MAX queues have a limit (FailedPrecondition past
        it). With auth on, for root only. Returns the limit now."""
        return self._client.run(ops.set_queue_limit(queue, concurrency_max))

    def cron_put(self, name: BytesLike, expression: str, queue: BytesLike, args: BytesLike = b"", *,
                 priority: int = 0, max_attempts: int = 0, timeout_s: float | None = None,
                 max_lost_claims: int = 0) -> JobCron:
        """Creates or replaces the recurring job `name`: at each minute the
        cron expression (UTC; five fields or @hourly, @daily, ...) matches,
        a job of `queue` with `args`, skipped while the previous run's job is
        unfinished."""
        return self._client.run(ops.cron_put(name, expression, queue, args, priority=priority,
                                             max_attempts=max_attempts, timeout_s=timeout_s,
                                             max_lost_claims=max_lost_claims))

    def cron_delete(self, name: BytesLike) -> bool:
        return self._client.run(ops.cron_delete(name))

    def cron_list(self, *, stale: bool = False) -> builtins.list[JobCron]:
        return self._client.run(ops.cron_list(stale))

    # -- progress and heartbeats: the available plane (any node, never a Raft write) --
    def progress(self, job_id: int, token: int, progress: int, note: str = "") -> str:
        """Reports how far the claim `token` of a job is (0-100, a note of up
        to JOB_PROGRESS_NOTE_BYTES_MAX bytes); `get` on any node shows it once
        gossip brings it there. FailedPrecondition when the claim has ended
        (stop working on the job). Returns the node that took it."""
        return self._client.run(ops.progress(job_id, token, progress, note))

    def heartbeat(self, queue: BytesLike, worker: str, running: int = 0, *, stopping: bool = False) -> str:
        """A worker's beat: `workers(queue)` on any node lists it until
        JOB_WORKER_STALE_MS after its last beat; `stopping=True` removes it
        now. Beat every few seconds (well within JOB_WORKER_STALE_MS)."""
        return self._client.run(ops.heartbeat(queue, worker, running, stopping))

    def workers(self, queue: BytesLike | None = None) -> builtins.list[WorkerBeat]:
        """The workers of `queue` (every queue: None) that beat recently, as
        the answering node has them."""
        return self._client.run(ops.workers(queue))
