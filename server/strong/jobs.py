"""The job queue: durable jobs whose claims are leases. Part of the pure
state machine (see state_machine.py for its rules): deterministic; it reads
no clock but the two the log keeps: the log clock (the time commands carry,
the proposers' wall clocks) for run_at, backoff and retention, and the
lease clock (which only leader ticks advance, see coordination.py) for
claim timeouts, as leases age on it.

Its neighbours: job_store.py (the tables), job_moves.py (moving a job
between states, the backoff), job_checks.py (validation),
job_reads.py (get, list, stats), job_crons.py (recurring jobs, fired from
here), cron.py (the expression parser), job_queue_limits.py (the
cluster-wide limit per queue, which every claim here obeys).

Rules it keeps:
- A job's id is the Raft index of its enqueue, or the next free id above
  it when crons added jobs in an entry before: ids are unique and
  increase. A claim's fencing token is the Raft index of the claim, so a
  job's tokens strictly increase across workers and failovers.
- An enqueue with a unique_key, while a job of the same queue with that key
  is not finished, returns that job (duplicate) and adds nothing.
- A claim takes up to `limit` available jobs of a queue, by priority (0
  first), then run_at, then id, and attaches each to the worker's lease.
  When the lease ends (expiry or revoke), each job it still holds becomes
  available again with its attempt counted: no job is lost with a worker.
- Every claim goes through claim_into (Claim, and the claim_next of
  Complete, Fail and Settle), which takes no more than a queue's
  cluster-wide limit leaves room for (limit minus the jobs claimed now,
  never negative); lowering the limit releases no claimed job.
- Complete and fail are fenced: they apply only while the job is claimed
  under the token they carry; a stale token gets FAILED_PRECONDITION naming
  the job's state and current token, and changes nothing.
- A complete or fail may carry claim_next (lease, limit): after settling,
  it claims up to `limit` jobs of the settled job's queue under that lease
  in the same entry, as a claim would; a refusal (stale token, missing
  lease) settles nothing and claims nothing.
- A failure (a fail call, or a claim that outran its timeout_ms on the
  lease clock) counts against max_attempts: below it the job is retryable
  at now + backoff (doubling from JOB_BACKOFF_MIN_MS to JOB_BACKOFF_MAX_MS,
  with a jitter derived from the job id and failure count, so every replica
  agrees); at it the job is dead with its last error. A lost lease is not a
  failure: it is counted apart (lost_claims), and only at max_lost_claims
  lost claims (default JOB_MAX_LOST_CLAIMS_DEFAULT) is the job dead, with
  an error saying so; failures alone make it dead only at max_attempts.
- Scheduled and retryable jobs become available once the log clock passes
  their run_at: at every applied entry (the per-entry sweep) and at every
  claim of their queue, so a worker's claim always sees what is due.
- Finished jobs (completed, dead, cancelled) are kept JOB_RETENTION_MS on
  the log clock and at most JOB_RETAINED_FINISHED_MAX of them; the sweep
  prunes the oldest first, at most JOB_SWEEP_PER_ENTRY_MAX jobs an entry.
"""

from __future__ import annotations

from tandemkv import limits
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import kv_pb2, raft_pb2

from tandemkv.server.strong import coordination, job_crons, job_queue_limits, job_reads
from tandemkv.server.strong.context import ApplyContext, CommandFailed
from tandemkv.server.strong.job_checks import CHECKS  # noqa: F401 - validation.py reads it here
from tandemkv.server.strong.job_moves import (FINISHED_STATES, UNFINISHED, backoff_ms, enter,  # noqa: F401
                                              leave, move, state_name)
from tandemkv.server.strong.job_store import DEADLINES, FINISHED, JOB_ITEM, WAITING, JobTables

def _header(context: ApplyContext) -> kv_pb2.ResponseHeader:
    return kv_pb2.ResponseHeader(revision=context.index)


def summary(job: J.Job) -> J.Job:
    """The job without its args (the caller has them), to keep results small."""
    copy = J.Job()
    copy.CopyFrom(job)
    copy.ClearField("args")
    return copy


def _require(tables: JobTables, job_id: int) -> J.Job:
    job = tables.get(job_id)
    if job is None:
        raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                            f"job {job_id} not found (never enqueued, or finished and pruned after "
                            f"JOB_RETENTION_MS={limits.JOB_RETENTION_MS})")
    return job


# -- apply --
def add_job(context: ApplyContext, tables: JobTables, request: J.JobEnqueueRequest
            ) -> tuple[J.Job, bool]:
    """(job, duplicate): a new job as the request asks, or the unfinished
    job of the queue that holds its unique_key (then nothing is added)."""
    if request.unique_key:
        first_id = tables.unique_get(request.queue, request.unique_key)
        if first_id is not None:
            return _require(tables, first_id), True
    clock_ms = context.clock_ms
    job = J.Job(id=tables.new_id(context.index), queue=request.queue, args=request.args,
                priority=request.priority, run_at_ms=max(request.run_at_ms, clock_ms),
                max_attempts=request.max_attempts or limits.JOB_MAX_ATTEMPTS_DEFAULT,
                unique_key=request.unique_key, timeout_ms=request.timeout_ms, inserted_ms=clock_ms,
                max_lost_claims=request.max_lost_claims or limits.JOB_MAX_LOST_CLAIMS_DEFAULT)
    if request.unique_key:
        tables.unique_put(request.queue, request.unique_key, job.id)
    enter(tables, job, J.JOB_SCHEDULED if request.run_at_ms > clock_ms else J.JOB_AVAILABLE, clock_ms)
    return job, False


def enqueue(context: ApplyContext, request: J.JobEnqueueRequest) -> J.JobEnqueueResponse:
    job, duplicate = add_job(context, JobTables(context.view), request)
    return J.JobEnqueueResponse(header=_header(context), id=job.id, duplicate=duplicate,
                                job=summary(job))


def claim(context: ApplyContext, request: J.JobClaimRequest) -> J.JobClaimResponse:
    coordination.require_attachable(context.view, request.lease)  # before any change: a refusal changes nothing
    response = J.JobClaimResponse(header=_header(context))
    claim_into(context, JobTables(context.view), request.queue, request.lease, request.limit, response.jobs)
    return response


def claim_into(context: ApplyContext, tables: JobTables, queue: bytes, lease: int, limit: int,
                claimed) -> None:
    """Claims up to `limit` (0: one) available jobs of `queue` under `lease`
    (which the caller made sure exists) and appends them to `claimed`."""
    view = context.view
    job_crons.fire(context, tables, add_job, limits.JOB_SWEEP_PER_ENTRY_MAX)
    _promote(context, tables, limits.JOB_CLAIM_JOBS_MAX)
    room = limits.LEASE_ATTACHMENTS_MAX - len(view.lease_items(lease))
    limit = job_queue_limits.claim_room(tables, queue, min(limit or 1, room))
    # A deadline set from the lease clock, which lags real time by up to a
    # tick interval here, plus one interval: a claim never times out early.
    started_ms = coordination.lease_clock(view) + limits.LEASE_TICK_INTERVAL_MS
    for job_id in tables.available_first(queue, limit):
        job = tables.get(job_id)
        assert job is not None and job.state == J.JOB_AVAILABLE, "the available index follows the jobs"
        size_bytes = job.ByteSize() + 16
        if claimed and size_bytes > context.budget.left_bytes:
            break  # the result is full; the rest wait for the next claim
        context.budget.spend(size_bytes, "the claimed jobs")
        leave(tables, job)
        job.attempt += 1
        job.lease, job.token = lease, context.index
        job.deadline_ms = started_ms + job.timeout_ms if job.timeout_ms else 0
        enter(tables, job, J.JOB_CLAIMED, context.clock_ms)
        claimed.append(job)


def fenced(tables: JobTables, job_id: int, token: int) -> J.Job:
    job = _require(tables, job_id)
    if job.state != J.JOB_CLAIMED or job.token != token:
        holder = f"claimed under token {job.token}" if job.state == J.JOB_CLAIMED else state_name(job.state)
        raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                            f"job {job_id} is {holder} (current token {job.token}); token {token} "
                            "is stale: that claim ended (its lease expired, it timed out, or it "
                            "was cancelled), so its outcome is not recorded")
    return job


def _require_claim_lease(context: ApplyContext, request: J.JobCompleteRequest | J.JobFailRequest) -> None:
    """A settlement that claims the next jobs needs their lease; checked
    before any change, so a refusal settles nothing and claims nothing."""
    if request.HasField("claim_next") and context.view.lease_get(request.claim_next.lease) is None:
        raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                            f"lease {request.claim_next.lease} of claim_next not found (expired or revoked): "
                            f"job {request.id} is not settled and nothing is claimed; grant a new lease")


def _settled(context: ApplyContext, tables: JobTables, job: J.Job,
             request: J.JobCompleteRequest | J.JobFailRequest) -> J.JobResponse:
    """The answer to a settlement of `job`, with the next jobs of its queue
    claimed in the same entry when the request asks (claim_next)."""
    response = J.JobResponse(header=_header(context), job=summary(job))
    if request.HasField("claim_next"):
        # The settled job (its result within JOB_ARGS_BYTES_MAX) shares the result with the claims.
        context.budget.spend(response.job.ByteSize(), "the settled job")
        claim_into(context, tables, job.queue, request.claim_next.lease, request.claim_next.limit,
                    response.claimed)
    return response


def complete(context: ApplyContext, request: J.JobCompleteRequest) -> J.JobResponse:
    tables = JobTables(context.view)
    job = fenced(tables, request.id, request.token)
    _require_claim_lease(context, request)
    leave(tables, job)
    job.result = request.result
    enter(tables, job, J.JOB_COMPLETED, context.clock_ms)
    return _settled(context, tables, job, request)


def record_failure(context: ApplyContext, tables: JobTables, job: J.Job, error: str) -> None:
    """A real failure of a claimed job: retryable after its backoff, or dead."""
    leave(tables, job)
    job.failures += 1
    job.last_error = error
    if job.failures >= job.max_attempts:
        enter(tables, job, J.JOB_DEAD, context.clock_ms)
        return
    job.run_at_ms = context.clock_ms + backoff_ms(job.id, job.failures)
    enter(tables, job, J.JOB_RETRYABLE, context.clock_ms)


def fail(context: ApplyContext, request: J.JobFailRequest) -> J.JobResponse:
    tables = JobTables(context.view)
    job = fenced(tables, request.id, request.token)
    _require_claim_lease(context, request)
    record_failure(context, tables, job, request.error)
    return _settled(context, tables, job, request)


def retry(context: ApplyContext, request: J.JobRetryRequest) -> J.JobResponse:
    tables = JobTables(context.view)
    job = _require(tables, request.id)
    if job.state == J.JOB_CLAIMED:
        raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                            f"job {job.id} is claimed (token {job.token}); its worker completes or "
                            "fails it, or cancel it first")
    if job.state in FINISHED_STATES and job.unique_key:
        holder = tables.unique_get(job.queue, job.unique_key)
        if holder is not None and holder != job.id:
            raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                                f"job {holder} holds job {job.id}'s unique_key and is not finished; "
                                "retry that one, or wait until it finishes")
    if job.state != J.JOB_AVAILABLE:
        leave(tables, job)
        if job.unique_key and job.state in FINISHED_STATES:
            tables.unique_put(job.queue, job.unique_key, job.id)
        job.finished_ms = 0
        job.max_attempts = max(job.max_attempts, job.failures + 1)
        job.lost_claims = 0  # a retry by request starts the lost-claim count afresh
        job.run_at_ms = context.clock_ms
        enter(tables, job, J.JOB_AVAILABLE, context.clock_ms)
    return J.JobResponse(header=_header(context), job=summary(job))


def _finish_by_request(context: ApplyContext, job_id: int, state: int, verb: str) -> J.JobResponse:
    tables = JobTables(context.view)
    job = _require(tables, job_id)
    if job.state in FINISHED_STATES:
        raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                            f"job {job_id} is already {state_name(job.state)}; only an unfinished "
                            f"job can be {verb} (retry runs a finished one again)")
    leave(tables, job)
    if state == J.JOB_DEAD:
        job.last_error = ("discarded by request; last error: " + job.last_error
                          if job.last_error else "discarded by request")[:limits.JOB_ERROR_BYTES_MAX]
    enter(tables, job, state, context.clock_ms)
    return J.JobResponse(header=_header(context), job=summary(job))


def cancel(context: ApplyContext, request: J.JobCancelRequest) -> J.JobResponse:
    return _finish_by_request(context, request.id, J.JOB_CANCELLED, "cancelled")


def discard(context: ApplyContext, request: J.JobDiscardRequest) -> J.JobResponse:
    return _finish_by_request(context, request.id, J.JOB_DEAD, "discarded")


def lease_ended(context: ApplyContext, name: bytes, lease_id: int) -> None:
    """A lease holding a claim of this job ended: a lost claim. The job is
    available again (its attempt stays counted), unless it moved on
    meanwhile; at its max_lost_claims-th lost claim it is dead instead (a
    job that crashes or stalls every worker must not loop forever)."""
    tables = JobTables(context.view)
    job = tables.get(int.from_bytes(name, "big"))
    if job is None or job.state != J.JOB_CLAIMED or job.lease != lease_id:
        return
    leave(tables, job)
    job.lost_claims += 1
    bound = job.max_lost_claims or limits.JOB_MAX_LOST_CLAIMS_DEFAULT
    if job.lost_claims < bound:
        enter(tables, job, J.JOB_AVAILABLE, context.clock_ms)
        return
    job.last_error = (f"lost its claim {job.lost_claims} times (max_lost_claims={bound}): its worker "
                      "crashed or stalled past its lease each time"
                      + (f"; last error: {job.last_error}" if job.last_error else ""))[:limits.JOB_ERROR_BYTES_MAX]
    enter(tables, job, J.JOB_DEAD, context.clock_ms)


# -- the per-entry sweep --
def _promote(context: ApplyContext, tables: JobTables, count_max: int) -> int:
    due = tables.timed_due(WAITING, context.clock_ms, count_max)
    for job_id in due:
        job = tables.get(job_id)
        assert job is not None and job.state in (J.JOB_SCHEDULED, J.JOB_RETRYABLE), "waiting follows jobs"
        move(tables, job, J.JOB_AVAILABLE, context.clock_ms)
    return len(due)


def sweep(context: ApplyContext) -> None:
    """Run once per applied entry, within JOB_SWEEP_PER_ENTRY_MAX jobs:
    promotes due jobs, fails claims past their timeout, prunes finished
    jobs past retention."""
    tables = JobTables(context.view)
    left = limits.JOB_SWEEP_PER_ENTRY_MAX - job_crons.fire(context, tables, add_job,
                                                           limits.JOB_SWEEP_PER_ENTRY_MAX)
    left -= _promote(context, tables, max(0, left))
    if left > 0:
        lease_now_ms = coordination.lease_clock(context.view)
        for job_id in tables.timed_due(DEADLINES, lease_now_ms, left):
            job = tables.get(job_id)
            assert job is not None and job.state == J.JOB_CLAIMED, "deadlines follow claims"
            record_failure(context, tables, job, f"timed out: ran past its timeout_ms={job.timeout_ms}")
            left -= 1
    if left > 0:
        # Only what is pruned is read (this runs at every entry): the oldest
        # past the count bound, then any past retention.
        over = tables.finished_count() - limits.JOB_RETAINED_FINISHED_MAX
        if over > 0:
            left -= _prune(tables, tables.timed_due(FINISHED, None, min(left, over)))
        if left > 0:
            _prune(tables, tables.timed_due(FINISHED, context.clock_ms - limits.JOB_RETENTION_MS, left))


def _prune(tables: JobTables, job_ids: list[int]) -> int:
    for job_id in job_ids:
        job = tables.get(job_id)
        assert job is not None and job.state in FINISHED_STATES, "finished follows jobs"
        leave(tables, job)
        tables.delete(job.id)
    return len(job_ids)


OPS = {
    **job_crons.OPS,
    **job_queue_limits.OPS,
    J.JobEnqueueRequest: enqueue,
    J.JobClaimRequest: claim,
    J.JobCompleteRequest: complete,
    J.JobFailRequest: fail,
    J.JobRetryRequest: retry,
    J.JobCancelRequest: cancel,
    J.JobDiscardRequest: discard,
}
READERS = {**job_reads.READERS, **job_crons.READERS}

# Ending a lease releases its jobs (coordination.drop_lease calls this).
coordination.LEASE_ITEM_RELEASERS[JOB_ITEM] = lease_ended
