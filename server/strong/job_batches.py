"""Many jobs in one command: EnqueueMany and Settle. Part of the pure state
machine (see state_machine.py for its rules; jobs.py holds the queue's
model, which these apply job by job).

Why they exist: each request a worker or producer sends costs the leader a
gRPC call, a Raft command and a share of an fsync; a worker whose jobs
finish while its last settlement is in flight sends them together, and a
producer with many jobs enqueues them together, so the leader's cost per
job falls with the batch.

Rules they keep:
- EnqueueMany applies its jobs in order as Enqueue would, all in one
  entry: ids increase in that order (jobs.add_job takes the next free id);
  a unique_key seen earlier in the same request makes a duplicate of that
  job. It cannot fail half way: every job was validated first.
- Settle fences each settlement alone, exactly as Complete and Fail do:
  a stale token, or a job that is not of the request's queue (a job of a
  queue the caller may not be allowed to touch is "not found" here, its
  state not shown), refuses that settlement with a reason and the others
  still apply. Its claim_next needs its lease, checked before any change:
  without it nothing is settled and nothing claimed.
"""

from __future__ import annotations

from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import kv_pb2, raft_pb2

from tandemkv.server.strong import jobs
from tandemkv.server.strong.context import ApplyContext, CommandFailed
from tandemkv.server.strong.job_moves import enter, leave
from tandemkv.server.strong.job_store import JobTables

# What one outcome adds to a Settle's result beyond its own bytes (field tag and length).
OUTCOME_FRAMING_BYTES = 8


def enqueue_many(context: ApplyContext, request: J.JobEnqueueManyRequest) -> J.JobEnqueueManyResponse:
    tables = JobTables(context.view)
    response = J.JobEnqueueManyResponse(header=kv_pb2.ResponseHeader(revision=context.index))
    for spec in request.jobs:
        one = J.JobEnqueueRequest()
        one.CopyFrom(spec)
        one.queue = request.queue
        job, duplicate = jobs.add_job(context, tables, one)
        response.jobs.add(id=job.id, duplicate=duplicate)
    return response


def _settle_one(context: ApplyContext, tables: JobTables, queue: bytes,
                settlement: J.JobSettlement) -> J.JobSettleOutcome:
    job = tables.get(settlement.id)
    if job is None or job.queue != queue:
        return J.JobSettleOutcome(id=settlement.id, refused=(
            f"job {settlement.id} not found in queue {queue!r} (never enqueued there, or finished and "
            "pruned): its outcome is not recorded"))
    try:
        job = jobs.fenced(tables, settlement.id, settlement.token)
    except CommandFailed as stale:
        return J.JobSettleOutcome(id=job.id, refused=stale.error.message, state=job.state)
    if settlement.failed:
        jobs.record_failure(context, tables, job, settlement.error)
    else:
        leave(tables, job)
        job.result = settlement.result
        enter(tables, job, J.JOB_COMPLETED, context.clock_ms)
    return J.JobSettleOutcome(id=job.id, settled=True, state=job.state)


def settle(context: ApplyContext, request: J.JobSettleRequest) -> J.JobSettleResponse:
    claim_next = request.claim_next if request.HasField("claim_next") else None
    if claim_next is not None and context.view.lease_get(claim_next.lease) is None:
        raise CommandFailed(raft_pb2.FAILED_PRECONDITION,
                            f"lease {claim_next.lease} of claim_next not found (expired or revoked): "
                            f"none of the {len(request.settlements)} settlements is recorded and nothing "
                            "is claimed; the lease's jobs went back to the queue: grant a new lease")
    tables = JobTables(context.view)
    response = J.JobSettleResponse(header=kv_pb2.ResponseHeader(revision=context.index))
    for settlement in request.settlements:
        outcome = _settle_one(context, tables, request.queue, settlement)
        context.budget.spend(outcome.ByteSize() + OUTCOME_FRAMING_BYTES, "the settlement outcomes")
        response.outcomes.append(outcome)
    if claim_next is not None:
        jobs.claim_into(context, tables, request.queue, claim_next.lease, claim_next.limit, response.claimed)
    return response


OPS = {
    J.JobEnqueueManyRequest: enqueue_many,
    J.JobSettleRequest: settle,
}
