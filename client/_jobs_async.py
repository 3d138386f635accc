"""`AsyncClient.jobs` (`AsyncJobs`): the job queue from the asyncio client;
the same operations (`_jobs_ops`) and semantics as `Client.jobs` (see
`_jobs.Jobs`), awaited."""

from __future__ import annotations

import builtins
import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tandemkv.client import _jobs_ops as ops
from tandemkv.client._job_worker_async import AsyncWorkerMethods
from tandemkv.client._job_enqueue_many import EnqueueMany
from tandemkv.client._jobs_ops import Job, JobCron, JobPage, QueueStats, SettleAnswer, WorkerBeat
from tandemkv.client._results import BytesLike
from tandemkv.errors import TandemKVError
from tandemkv.v1 import jobs_pb2 as J

if TYPE_CHECKING:
    from tandemkv.client._async import AsyncClient


class AsyncJobs(AsyncWorkerMethods):
    def __init__(self, client: AsyncClient):
        self._client = client

    async def enqueue(self, queue: BytesLike, args: BytesLike = b"", *, unique_key: BytesLike | None = None,
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
        return await self._client.run(ops.enqueue(queue, args, unique_key=unique_key, run_at=run_at,
                                            priority=priority, max_attempts=max_attempts,
                                            timeout_s=timeout_s, request_id=request_id,
                                            max_lost_claims=max_lost_claims))

    async def enqueue_many(self, queue: BytesLike, items: Sequence[BytesLike], *,
                           unique_keys: Sequence[BytesLike] | None = None,
                           run_at: float | datetime.datetime | None = None, priority: int = 0,
                           max_attempts: int = 0, timeout_s: float | None = None,
                           max_lost_claims: int = 0) -> list[int]:
        """A job of `queue` per item, their ids in the items' order; see `Jobs.enqueue_many`."""
        plan = EnqueueMany(queue, items, unique_keys=unique_keys, run_at=run_at, priority=priority,
                           max_attempts=max_attempts, timeout_s=timeout_s, max_lost_claims=max_lost_claims)
        for operation in plan.operations:
            try:
                plan.enqueued(await self._client.run(operation))
            except TandemKVError as error:
                plan.failed(error)
                raise
        return plan.ids

    async def claim(self, queue: BytesLike, lease: int, limit: int = 1) -> list[Job]:
        """Up to `limit` available jobs of `queue`, by priority, then run_at,
        then id, each now claimed under `lease` with its fencing `token`."""
        return await self._client.run(ops.claim(queue, lease, limit))

    async def complete(self, job_id: int, token: int, result: BytesLike = b"") -> Job:
        return await self._client.run(ops.complete(job_id, token, result))

    async def fail(self, job_id: int, token: int, error: str) -> Job:
        """Records a failure: the job is retryable after its backoff, or dead
        once it has failed max_attempts times."""
        return await self._client.run(ops.fail(job_id, token, error))

    # Builds one settlement for `settle`: settlement(job.id, job.token, result=b"...")
    # completes the job, settlement(job.id, job.token, error="...") fails it.
    settlement = staticmethod(ops.settlement)

    async def settle(self, queue: BytesLike, settlements: list[J.JobSettlement], *, lease: int | None = None,
                     limit: int = 0) -> SettleAnswer:
        """Completes or fails many claimed jobs of `queue` in one Raft entry
        (at most JOB_SETTLE_JOBS_MAX, each job once; build each with
        `settlement`). Each is fenced alone, as `complete` and `fail` are: a
        stale token refuses that one (its outcome says why) and the others
        still apply. With `lease`, the same entry then claims up to `limit`
        (1..JOB_CLAIM_JOBS_MAX, 0 meaning 1) jobs of `queue` under it; a
        lease that is gone raises FailedPrecondition and records nothing.
        Answers each settlement's outcome in order and the jobs claimed."""
        return await self._client.run(ops.settle(queue, settlements, lease or 0, limit))

    async def retry(self, job_id: int) -> Job:
        return await self._client.run(ops.by_id("Retry", job_id))

    async def cancel(self, job_id: int) -> Job:
        return await self._client.run(ops.by_id("Cancel", job_id))

    async def discard(self, job_id: int) -> Job:
        return await self._client.run(ops.by_id("Discard", job_id))

    async def get(self, job_id: int, *, stale: bool = False) -> Job | None:
        return await self._client.run(ops.get(job_id, stale))

    async def list(self, queue: BytesLike | None = None, *, state: str | None = None, after_id: int = 0,
             limit: int = 0, stale: bool = False) -> JobPage:
        return await self._client.run(ops.list_jobs(queue, state, after_id, limit, stale))

    async def stats(self, queue: BytesLike | None = None, *, stale: bool = False) -> builtins.list[QueueStats]:
        return await self._client.run(ops.stats(queue, stale))

    async def set_queue_limit(self, queue: BytesLike, concurrency_max: int) -> int:
        """Limits `queue` cluster-wide: at most `concurrency_max` of its jobs
        claimed at once, whatever the number of workers (their claims, and
        the claims their settlements carry, take no more than the room
        left); 0 removes the limit. Lowering it below the jobs claimed now
        releases none of them: the queue claims nothing until they fall
        below it. At most JOB_QUEUE_CONCURRENCY_MAX; at most
        JOB_QUEUE_LIMITS_MAX queues have a limit (FailedPrecondition past
        it). With auth on, for root only. Returns the limit now."""
        return await self._client.run(ops.set_queue_limit(queue, concurrency_max))

    async def cron_put(self, name: BytesLike, expression: str, queue: BytesLike, args: BytesLike = b"", *,
                       priority: int = 0, max_attempts: int = 0, timeout_s: float | None = None,
                       max_lost_claims: int = 0) -> JobCron:
        """Creates or replaces the recurring job `name`: at each minute the
        cron expression (UTC; five fields or @hourly, @daily, ...) matches,
        a job of `queue` with `args`, skipped while the previous run's job is
        unfinished."""
        return await self._client.run(ops.cron_put(name, expression, queue, args, priority=priority,
                                                   max_attempts=max_attempts, timeout_s=timeout_s,
                                                   max_lost_claims=max_lost_claims))

    async def cron_delete(self, name: BytesLike) -> bool:
        return await self._client.run(ops.cron_delete(name))

    async def cron_list(self, *, stale: bool = False) -> builtins.list[JobCron]:
        return await self._client.run(ops.cron_list(stale))

    # -- progress and heartbeats: the available plane (any node, never a Raft write) --
    async def progress(self, job_id: int, token: int, progress: int, note: str = "") -> str:
        """Reports how far the claim `token` of a job is (0-100, a note of up
        to JOB_PROGRESS_NOTE_BYTES_MAX bytes); `get` on any node shows it once
        gossip brings it there. FailedPrecondition when the claim has ended
        (stop working on the job). Returns the node that took it."""
        return await self._client.run(ops.progress(job_id, token, progress, note))

    async def heartbeat(self, queue: BytesLike, worker: str, running: int = 0, *, stopping: bool = False) -> str:
        """A worker's beat: `workers(queue)` on any node lists it until
        JOB_WORKER_STALE_MS after its last beat; `stopping=True` removes it
        now. Beat every few seconds (well within JOB_WORKER_STALE_MS)."""
        return await self._client.run(ops.heartbeat(queue, worker, running, stopping))

    async def workers(self, queue: BytesLike | None = None) -> builtins.list[WorkerBeat]:
        """The workers of `queue` (every queue: None) that beat recently, as
        the answering node has them."""
        return await self._client.run(ops.workers(queue))
