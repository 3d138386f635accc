"""Recurring jobs: a cron expression (UTC) that enqueues a job of a queue
at each minute it matches. Part of the pure state machine (see
state_machine.py for its rules); its clock is the log clock.

Rules it keeps:
- A cron's next run is the first matching minute after the log clock when
  it was put, or after its last run; it is kept in an index of due times,
  so firing finds its work without a scan.
- Due runs are enqueued by the first entry applied at or after their time
  (the per-entry sweep) and by every claim, at most JOB_SWEEP_PER_ENTRY_MAX
  an entry; a leader proposes a lease tick when a run is due by its clock
  (server/node/coordination.py). A run missed while nothing was applied
  is not caught up: one run is enqueued, and the next is the first match
  after now.
- Each run is a job with unique_key "cron:" + name: while the previous
  run's job is unfinished, a run enqueues nothing (no pile-up behind a slow
  or failing job).
"""

from __future__ import annotations

from typing import Callable

from tandemkv import limits
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import kv_pb2, raft_pb2

from tandemkv.server.strong import cron
from tandemkv.server.strong.context import ApplyContext, CommandFailed
from tandemkv.server.strong.job_store import JobTables
from tandemkv.server.strong.view import StoreView

CRON_UNIQUE_PREFIX = b"cron:"

# add_job(context, tables, request) -> (the job, or the unfinished one that
# holds its unique key; whether it was that one): jobs.py's, handed in to
# keep imports one-way.
AddJob = Callable[[ApplyContext, JobTables, J.JobEnqueueRequest], tuple[J.Job, bool]]


def _header(context: ApplyContext) -> kv_pb2.ResponseHeader:
    return kv_pb2.ResponseHeader(revision=context.index)


def put(context: ApplyContext, request: J.JobCronPutRequest) -> J.JobCronResponse:
    tables = JobTables(context.view)
    new = J.JobCron()
    new.CopyFrom(request.cron)
    before = tables.cron_get(new.name)
    if before is None and len(tables.cron_scan(limits.JOB_CRONS_MAX)) >= limits.JOB_CRONS_MAX:
        raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                            f"there are JOB_CRONS_MAX={limits.JOB_CRONS_MAX} recurring jobs; "
                            "delete one first")
    next_run_ms = cron.next_run_ms(cron.parse(new.expression), context.clock_ms)
    if next_run_ms is None:
        raise CommandFailed(raft_pb2.INVALID_ARGUMENT,
                            f"cron expression {new.expression!r} matches no minute in the next "
                            f"{cron.SEARCH_DAYS_MAX} days (a date that does not exist?)")
    if before is not None:
        tables.cron_run_remove(before.next_run_ms, before.name)
        new.last_job_id = before.last_job_id
    new.next_run_ms = next_run_ms
    tables.cron_put(new)
    tables.cron_run_add(next_run_ms, new.name)
    return J.JobCronResponse(header=_header(context), cron=new)


def delete(context: ApplyContext, request: J.JobCronDeleteRequest) -> J.JobCronDeleteResponse:
    tables = JobTables(context.view)
    before = tables.cron_get(request.name)
    if before is not None:
        tables.cron_run_remove(before.next_run_ms, before.name)
        tables.cron_delete(before.name)
    return J.JobCronDeleteResponse(header=_header(context), deleted=before is not None)


def fire(context: ApplyContext, tables: JobTables, add_job: AddJob, count_max: int) -> int:
    """Enqueues the due runs, earliest first, at most count_max; returns
    how many crons ran."""
    due = tables.cron_runs_due(context.clock_ms, count_max)
    for name in due:
        job_cron = tables.cron_get(name)
        assert job_cron is not None, "cron runs follow the crons"
        tables.cron_run_remove(job_cron.next_run_ms, name)
        job, _ = add_job(context, tables, J.JobEnqueueRequest(
            queue=job_cron.queue, args=job_cron.args, priority=job_cron.priority,
            max_attempts=job_cron.max_attempts, timeout_ms=job_cron.timeout_ms,
            max_lost_claims=job_cron.max_lost_claims, unique_key=CRON_UNIQUE_PREFIX + name))
        job_cron.last_job_id = job.id
        next_run_ms = cron.next_run_ms(cron.parse(job_cron.expression), context.clock_ms)
        if next_run_ms is None:
            tables.cron_delete(name)  # no minute left to match: it is done
            continue
        job_cron.next_run_ms = next_run_ms
        tables.cron_put(job_cron)
        tables.cron_run_add(next_run_ms, name)
    return len(due)


def read_list(view: StoreView, request: J.JobCronListRequest, revision: int) -> J.JobCronListResponse:
    response = J.JobCronListResponse(header=kv_pb2.ResponseHeader(revision=revision))
    response.crons.extend(JobTables(view).cron_scan(limits.JOB_CRONS_MAX))
    return response


OPS = {J.JobCronPutRequest: put, J.JobCronDeleteRequest: delete}
READERS = {J.JobCronListRequest: read_list}
