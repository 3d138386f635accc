"""A cluster-wide concurrency limit per job queue: at most N of the queue's
jobs claimed at once, whatever the number of workers (Oban Pro's
global_limit). Part of the pure state machine (see state_machine.py for
its rules); jobs.py asks `claim_room` at its one place that claims,
`claim_into`, so Claim and the claim_next of Complete, Fail and Settle are
all bounded alike.

Rules it keeps:
- A queue with a limit claims at most `limit - claimed` more jobs (never
  a negative number): the claimed count is the queue's own (job_store's
  per-queue counts), kept as jobs move, so the check reads one record.
- Lowering a limit below the jobs claimed now releases none of them: they
  run to their end (a claim is a lease, and taking it back would run the
  job twice). The queue claims nothing until they fall below the limit.
- 0 removes the limit. At most JOB_QUEUE_LIMITS_MAX queues have one; a new
  limit past that is refused (FAILED_PRECONDITION naming the limit), while
  changing or removing an existing one never is.
- The limit lives in its own table (job_store's L), not in the queue's
  counts record, which goes when its counts reach zero: a limit set on an
  empty queue stays, and Stats shows it.
"""

from __future__ import annotations

from tandemkv import limits
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import kv_pb2, raft_pb2

from tandemkv.server.strong.context import ApplyContext, CommandFailed
from tandemkv.server.strong.job_store import JobTables
from tandemkv.server.strong.view import StoreView


def claim_room(tables: JobTables, queue: bytes, wanted: int) -> int:
    """How many of `wanted` jobs the queue's limit lets a claim take now."""
    concurrency_max = tables.limit_get(queue)
    if not concurrency_max:
        return wanted
    return max(0, min(wanted, concurrency_max - tables.stats(queue).claimed))


def set_limit(context: ApplyContext, request: J.JobQueueLimitRequest) -> J.JobQueueLimitResponse:
    tables = JobTables(context.view)
    if request.concurrency_max and not tables.limit_get(request.queue):
        count = len(tables.limit_scan(limits.JOB_QUEUE_LIMITS_MAX))
        if count >= limits.JOB_QUEUE_LIMITS_MAX:
            raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                                f"{count} queues have a concurrency limit, JOB_QUEUE_LIMITS_MAX="
                                f"{limits.JOB_QUEUE_LIMITS_MAX}: remove one (set it to 0) before "
                                f"limiting queue {request.queue!r}")
    tables.limit_put(request.queue, request.concurrency_max)
    return J.JobQueueLimitResponse(header=kv_pb2.ResponseHeader(revision=context.index), queue=request.queue,
                                   concurrency_max=request.concurrency_max)


def stats_with_limits(view: StoreView, queue: bytes, count_max: int) -> list[J.JobQueueStats]:
    """The counts of `queue` (every queue when empty, at most `count_max`,
    in queue order), each with its limit; a queue with a limit and no jobs
    is listed too, its counts zero."""
    tables = JobTables(view)
    if queue:
        stats = tables.stats(queue)
        stats.concurrency_max = tables.limit_get(queue)
        return [stats]
    merged = {stats.queue: stats for stats in tables.stats_scan(count_max)}
    for limited, concurrency_max in tables.limit_scan(count_max):
        merged.setdefault(limited, J.JobQueueStats(queue=limited)).concurrency_max = concurrency_max
    return [merged[name] for name in sorted(merged)[:count_max]]


OPS = {J.JobQueueLimitRequest: set_limit}
