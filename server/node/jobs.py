"""The job queue's half of the `Node` API, `node.jobs`: enqueue, claim,
complete, fail, retry, cancel, discard, set_queue_limit through Raft; get,
list and stats as reads. Each write is a write like any other
(`node.propose`): linearizable, exactly once by request id; each read a
read like any other (`node.query`, linearizable by default). The model
(claims bound to leases, fencing tokens, backoff, dead jobs) is the pure
core's (tandemkv.server.strong.jobs); this file only builds requests.

Every Raft write and read has an `_async` twin that holds no thread while
it waits. Progress and worker heartbeats (`progress`, `heartbeat`,
`workers`) are the available plane's, on `node.jobs.board`
(server/node/job_board.py): local writes, gossiped, never a Raft write; a
write that ends a claim removes the job's progress here, and `get` carries
the current claim's last progress.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tandemkv.errors import TandemKVError
from tandemkv.server.node.job_board import NodeJobBoard
from tandemkv.server.strong import validation
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import kv_pb2

if TYPE_CHECKING:
    from tandemkv.server.node.node import Node


def enqueue_request(queue: bytes, args: bytes = b"", *, unique_key: bytes = b"", run_at_ms: int = 0,
                    priority: int = 0, max_attempts: int = 0, timeout_ms: int = 0, max_lost_claims: int = 0,
                    request_id: bytes | None = None) -> J.JobEnqueueRequest:
    return J.JobEnqueueRequest(queue=queue, args=args, unique_key=unique_key, run_at_ms=run_at_ms,
                               priority=priority, max_attempts=max_attempts, timeout_ms=timeout_ms,
                               max_lost_claims=max_lost_claims, request_id=request_id or b"")


def _writes(queue_or_id, kind: str, **fields):
    """The write request of one of the by-id or by-queue operations."""
    builders = {
        "claim": lambda: J.JobClaimRequest(queue=queue_or_id, **fields),
        "complete": lambda: J.JobCompleteRequest(id=queue_or_id, **fields),
        "fail": lambda: J.JobFailRequest(id=queue_or_id, **fields),
        "retry": lambda: J.JobRetryRequest(id=queue_or_id, **fields),
        "cancel": lambda: J.JobCancelRequest(id=queue_or_id, **fields),
        "discard": lambda: J.JobDiscardRequest(id=queue_or_id, **fields),
    }
    return builders[kind]()


def _claim_next(lease: int, limit: int) -> dict:
    """The claim_next field of a complete or fail: claim up to `limit` jobs of
    the settled job's queue under `lease` in the same entry (no lease: none)."""
    return {"claim_next": J.JobClaimNext(lease=lease, limit=limit)} if lease else {}


def _consistency(stale: bool) -> int:
    return kv_pb2.STALE if stale else kv_pb2.LINEARIZABLE


class NodeJobs:
    """`node.jobs`: the job queue of one embedded node."""

    def __init__(self, node: "Node"):
        self._node = node
        self.board = NodeJobBoard(node)

    def _ended(self, response: J.JobResponse) -> J.JobResponse:
        """A write that ended a claim: its job's progress goes now."""
        self.board.forget(response.job.id)
        return response

    async def _ended_async(self, response: J.JobResponse) -> J.JobResponse:
        self.forget_soon([response.job.id])
        return response

    def forget_soon(self, job_ids: list[int]) -> None:
        """From the event loop: the progress of claims that ended through this
        node goes soon, off the loop (`board.forget_soon`: the removal waits
        on this node's disk), without the caller waiting for it."""
        loop = asyncio.get_running_loop()
        self.board.forget_soon(job_ids, lambda drain: loop.run_in_executor(None, drain))

    # -- writes --
    def enqueue(self, queue: bytes, args: bytes = b"", *, timeout_s: float | None = None,
                **options) -> J.JobEnqueueResponse:
        """Enqueues a job; returns its id (or, for a unique_key that an
        unfinished job of the queue holds, that job's, with duplicate=True)."""
        return self._node.propose(enqueue_request(queue, args, **options), timeout_s=timeout_s)

    async def enqueue_async(self, queue: bytes, args: bytes = b"", *, timeout_s: float | None = None,
                            **options) -> J.JobEnqueueResponse:
        return await self._node.propose_async(enqueue_request(queue, args, **options),
                                              timeout_s=timeout_s)

    def enqueue_many(self, queue: bytes, jobs: list[J.JobEnqueueRequest], *, request_id: bytes = b"",
                     timeout_s: float | None = None) -> J.JobEnqueueManyResponse:
        """Enqueues `jobs` (each built by `enqueue_request` with an empty
        queue, or just `J.JobEnqueueRequest(args=...)`) to `queue` in one
        entry; the answer's `jobs` hold their ids in order (at most
        JOB_ENQUEUE_MANY_JOBS_MAX)."""
        request = J.JobEnqueueManyRequest(queue=queue, jobs=jobs, request_id=request_id)
        return self._node.propose(request, timeout_s=timeout_s)

    def settle(self, queue: bytes, settlements: list[J.JobSettlement], *, request_id: bytes = b"",
               timeout_s: float | None = None, claim_lease: int = 0, claim_limit: int = 0) -> J.JobSettleResponse:
        """Completes or fails many claimed jobs of `queue` in one entry (each
        fenced alone: the answer's `outcomes` say which were recorded);
        `claim_lease`, `claim_limit` as for `complete`."""
        request = J.JobSettleRequest(queue=queue, settlements=settlements, request_id=request_id,
                                     **_claim_next(claim_lease, claim_limit))
        response = self._node.propose(request, timeout_s=timeout_s)
        self.board.forget_many([outcome.id for outcome in response.outcomes if outcome.settled])
        return response

    def claim(self, queue: bytes, lease: int, limit: int = 1, *, request_id: bytes = b"",
              timeout_s: float | None = None) -> J.JobClaimResponse:
        """Claims up to `limit` available jobs under `lease`; each job carries
        the fencing token its complete or fail must give."""
        request = _writes(queue, "claim", lease=lease, limit=limit, request_id=request_id)
        return self._node.propose(request, timeout_s=timeout_s)

    async def claim_async(self, queue: bytes, lease: int, limit: int = 1, *, request_id: bytes = b"",
                          timeout_s: float | None = None) -> J.JobClaimResponse:
        request = _writes(queue, "claim", lease=lease, limit=limit, request_id=request_id)
        return await self._node.propose_async(request, timeout_s=timeout_s)

    def complete(self, job_id: int, token: int, result: bytes = b"", *, request_id: bytes = b"",
                 timeout_s: float | None = None, claim_lease: int = 0, claim_limit: int = 0) -> J.JobResponse:
        """Completes the claim `token` of a job; with `claim_lease`, also claims
        up to `claim_limit` (0: one) jobs of its queue under that lease in the
        same entry (the answer's `claimed`)."""
        request = _writes(job_id, "complete", token=token, result=result, request_id=request_id,
                          **_claim_next(claim_lease, claim_limit))
        return self._ended(self._node.propose(request, timeout_s=timeout_s))

    async def complete_async(self, job_id: int, token: int, result: bytes = b"", *,
                             request_id: bytes = b"", timeout_s: float | None = None, claim_lease: int = 0,
                             claim_limit: int = 0) -> J.JobResponse:
        request = _writes(job_id, "complete", token=token, result=result, request_id=request_id,
                          **_claim_next(claim_lease, claim_limit))
        return await self._ended_async(await self._node.propose_async(request, timeout_s=timeout_s))

    def fail(self, job_id: int, token: int, error: str, *, request_id: bytes = b"",
             timeout_s: float | None = None, claim_lease: int = 0, claim_limit: int = 0) -> J.JobResponse:
        """Fails the claim `token` of a job; `claim_lease`, `claim_limit` as
        for `complete`."""
        request = _writes(job_id, "fail", token=token, error=error, request_id=request_id,
                          **_claim_next(claim_lease, claim_limit))
        return self._ended(self._node.propose(request, timeout_s=timeout_s))

    async def fail_async(self, job_id: int, token: int, error: str, *, request_id: bytes = b"",
                         timeout_s: float | None = None, claim_lease: int = 0,
                         claim_limit: int = 0) -> J.JobResponse:
        request = _writes(job_id, "fail", token=token, error=error, request_id=request_id,
                          **_claim_next(claim_lease, claim_limit))
        return await self._ended_async(await self._node.propose_async(request, timeout_s=timeout_s))

    def retry(self, job_id: int, *, timeout_s: float | None = None) -> J.JobResponse:
        return self._ended(self._node.propose(_writes(job_id, "retry"), timeout_s=timeout_s))

    def cancel(self, job_id: int, *, timeout_s: float | None = None) -> J.JobResponse:
        return self._ended(self._node.propose(_writes(job_id, "cancel"), timeout_s=timeout_s))

    def discard(self, job_id: int, *, timeout_s: float | None = None) -> J.JobResponse:
        return self._ended(self._node.propose(_writes(job_id, "discard"), timeout_s=timeout_s))

    # -- reads --
    def get(self, job_id: int, *, stale: bool = False, timeout_s: float | None = None) -> J.JobGetResponse:
        request = J.JobGetRequest(id=job_id, consistency=_consistency(stale))
        return self.with_progress(self._node.query(request, timeout_s=timeout_s))

    def with_progress(self, response: J.JobGetResponse) -> J.JobGetResponse:
        """The answer of a Get, with the current claim's last progress as
        this node's available plane has it."""
        if not response.found or self._node.available is None:
            return response
        try:
            progress = self.board.progress_of(response.job)
        except TandemKVError:  # the plane is stopping: the job, without its progress
            return response
        if progress is not None:
            response.progress.CopyFrom(progress)
        return response

    def list(self, queue: bytes = b"", state: int = 0, *, after_id: int = 0, limit: int = 0,
             stale: bool = False, timeout_s: float | None = None) -> J.JobListResponse:
        request = J.JobListRequest(queue=queue, state=state, after_id=after_id, limit=limit,
                                   consistency=_consistency(stale))
        return self._node.query(request, timeout_s=timeout_s)

    def stats(self, queue: bytes = b"", *, stale: bool = False,
              timeout_s: float | None = None) -> J.JobStatsResponse:
        request = J.JobStatsRequest(queue=queue, consistency=_consistency(stale))
        return self._node.query(request, timeout_s=timeout_s)

    def set_queue_limit(self, queue: bytes, concurrency_max: int, *, request_id: bytes = b"",
                        timeout_s: float | None = None) -> J.JobQueueLimitResponse:
        """Sets the cluster-wide limit on `queue`'s jobs claimed at once
        (0 removes it): claims take no more than the limit leaves room for;
        lowering it releases no claimed job."""
        request = J.JobQueueLimitRequest(queue=queue, concurrency_max=concurrency_max, request_id=request_id)
        return self._node.propose(request, timeout_s=timeout_s)

    # -- recurring jobs --
    def cron_put(self, name: bytes, expression: str, queue: bytes, args: bytes = b"", *, priority: int = 0,
                 max_attempts: int = 0, timeout_ms: int = 0, max_lost_claims: int = 0,
                 timeout_s: float | None = None) -> J.JobCronResponse:
        """Creates or replaces the recurring job `name`: a job of `queue` at
        each minute the cron expression (UTC) matches."""
        job_cron = J.JobCron(name=name, expression=expression, queue=queue, args=args, priority=priority,
                             max_attempts=max_attempts, timeout_ms=timeout_ms, max_lost_claims=max_lost_claims)
        return self._node.propose(J.JobCronPutRequest(cron=job_cron), timeout_s=timeout_s)

    def cron_delete(self, name: bytes, *, timeout_s: float | None = None) -> J.JobCronDeleteResponse:
        return self._node.propose(J.JobCronDeleteRequest(name=name), timeout_s=timeout_s)

    def cron_list(self, *, stale: bool = False, timeout_s: float | None = None) -> J.JobCronListResponse:
        return self._node.query(J.JobCronListRequest(consistency=_consistency(stale)), timeout_s=timeout_s)

    # -- progress and heartbeats (the available plane: no Raft write) --
    def progress(self, job_id: int, token: int, progress: int, note: str = "", *,
                 timeout_s: float | None = None) -> J.JobProgressResponse:
        """Records the progress (0-100) of the claim `token` of a job."""
        request = J.JobProgressRequest(id=job_id, token=token, progress=progress, note=note)
        validation.check_request(request)
        return self.board.progress(request, timeout_s=timeout_s)

    def heartbeat(self, queue: bytes, worker: str, running: int = 0, *, stopping: bool = False,
                  timeout_s: float | None = None) -> J.JobHeartbeatResponse:
        """A worker's beat: listed by `workers` until JOB_WORKER_STALE_MS
        after it (`stopping`: removed now)."""
        request = J.JobHeartbeatRequest(queue=queue, worker=worker, running=running, stopping=stopping)
        validation.check_request(request)
        return self.board.heartbeat(request, timeout_s=timeout_s)

    def workers(self, queue: bytes = b"", *, timeout_s: float | None = None) -> J.JobWorkersResponse:
        """The workers of `queue` (every queue when empty) that beat within
        JOB_WORKER_STALE_MS, as this node has them."""
        request = J.JobWorkersRequest(queue=queue)
        validation.check_request(request)
        return self.board.workers(request, timeout_s=timeout_s)
