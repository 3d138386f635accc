"""The job queue as `Operation`s (see `_operations`) and its result types,
shared by `Client.jobs` (`_jobs.Jobs`) and `AsyncClient.jobs`
(`_jobs_async.AsyncJobs`): what each call sends and how its answer
decodes; the shells only run them."""

from __future__ import annotations

import dataclasses
import datetime

from tandemkv.client._operations import Operation, new_request_id
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import kv_pb2

# The state names the SDK and the CLI use, and their wire values.
STATES = {"available": J.JOB_AVAILABLE, "scheduled": J.JOB_SCHEDULED, "claimed": J.JOB_CLAIMED,
          "completed": J.JOB_COMPLETED, "retryable": J.JOB_RETRYABLE, "dead": J.JOB_DEAD,
          "cancelled": J.JOB_CANCELLED}
_STATE_NAMES = {value: name for name, value in STATES.items()}


@dataclasses.dataclass(frozen=True)
class JobProgress:
    """The last progress a claim reported (0-100, a note), as the answering
    node's available plane has it: `token` the claim's, `at_ms` the wall
    clock of `node`, the node that took the report."""

    progress: int
    note: str
    token: int
    at_ms: int
    node: str

    @classmethod
    def from_proto(cls, progress: J.JobProgress) -> JobProgress:
        return cls(progress.progress, progress.note, progress.token, progress.at_ms, progress.node)


@dataclasses.dataclass(frozen=True)
class WorkerBeat:
    """A worker's last heartbeat: `running` jobs, `beat_ms` on the wall
    clock of `node`, the node that took it."""

    queue: bytes
    worker: str
    running: int
    beat_ms: int
    node: str

    @classmethod
    def from_proto(cls, worker: J.JobWorker) -> WorkerBeat:
        return cls(worker.queue, worker.worker, worker.running, worker.beat_ms, worker.node)


@dataclasses.dataclass(frozen=True)
class Job:
    """One job as the cluster holds it. `token` is the fencing token of its
    latest claim (give it to complete or fail); `lease` the lease holding
    that claim. Times are epoch ms on the cluster's log clock."""

    id: int
    queue: bytes
    args: bytes
    state: str
    priority: int
    run_at_ms: int
    attempt: int
    max_attempts: int
    failures: int
    last_error: str
    unique_key: bytes
    timeout_ms: int
    lease: int
    token: int
    result: bytes
    inserted_ms: int
    finished_ms: int
    # Claims lost with their lease (the worker crashed or stalled), and how many make it dead.
    lost_claims: int = 0
    max_lost_claims: int = 0
    # From get: the current claim's last progress, if it reported any.
    progress: JobProgress | None = None

    @classmethod
    def from_proto(cls, job: J.Job, progress: J.JobProgress | None = None) -> Job:
        return cls(job.id, job.queue, job.args, _STATE_NAMES.get(job.state, "unknown"), job.priority,
                   job.run_at_ms, job.attempt, job.max_attempts, job.failures, job.last_error,
                   job.unique_key, job.timeout_ms, job.lease, job.token, job.result, job.inserted_ms,
                   job.finished_ms, job.lost_claims, job.max_lost_claims,
                   None if progress is None else JobProgress.from_proto(progress))


@dataclasses.dataclass(frozen=True)
class JobPage:
    """Jobs in id order; `more`: ask again with `after_id=next_after_id`."""

    jobs: list[Job]
    more: bool
    next_after_id: int


@dataclasses.dataclass(frozen=True)
class QueueStats:
    queue: bytes
    available: int
    scheduled: int
    claimed: int
    completed: int
    retryable: int
    dead: int
    cancelled: int
    # The queue's cluster-wide limit on jobs claimed at once (0: none).
    concurrency_max: int = 0


def run_at_ms(run_at: float | datetime.datetime | None) -> int:
    """Epoch seconds (a float) or an aware datetime, as epoch ms; None: now."""
    if run_at is None:
        return 0
    if isinstance(run_at, datetime.datetime):
        if run_at.tzinfo is None:
            raise ValueError("run_at must be an aware datetime (give tzinfo), or epoch seconds")
        run_at = run_at.timestamp()
    return max(0, int(round(float(run_at) * 1000)))


def state_value(state: str | None) -> int:
    if state is None:
        return J.JOB_STATE_UNSPECIFIED
    if state not in STATES:
        raise ValueError(f"state {state!r} is unknown; use one of {', '.join(STATES)}")
    return STATES[state]


def _consistency(stale: bool) -> int:
    return kv_pb2.STALE if stale else kv_pb2.LINEARIZABLE


def enqueue(queue: BytesLike, args: BytesLike = b"", *, unique_key: BytesLike | None = None,
            run_at: float | datetime.datetime | None = None, priority: int = 0, max_attempts: int = 0,
            timeout_s: float | None = None, request_id: bytes | None = None,
            max_lost_claims: int = 0) -> Operation:
    request = J.JobEnqueueRequest(
        queue=to_bytes(queue, "queue"), args=to_bytes(args, "args"),
        unique_key=b"" if unique_key is None else to_bytes(unique_key, "unique_key"),
        run_at_ms=run_at_ms(run_at), priority=priority, max_attempts=max_attempts,
        timeout_ms=0 if timeout_s is None else int(round(timeout_s * 1000)),
        max_lost_claims=max_lost_claims, request_id=new_request_id(request_id))
    return Operation("Jobs", "Enqueue", request, lambda r: r.id, write=True)


def enqueue_many(queue: BytesLike, items: list[BytesLike], *, unique_keys: list[BytesLike] | None = None,
                 run_at: float | datetime.datetime | None = None, priority: int = 0, max_attempts: int = 0,
                 timeout_s: float | None = None, max_lost_claims: int = 0) -> Operation:
    """One EnqueueMany: a job of `queue` per item (its args; `unique_keys`,
    if given, one per item), all in one Raft entry; answers their ids in
    order. At most JOB_ENQUEUE_MANY_JOBS_MAX items (the server refuses more)."""
    if unique_keys is not None and len(unique_keys) != len(items):
        raise ValueError(f"unique_keys holds {len(unique_keys)} keys for {len(items)} items; give one per item")
    timeout_ms = 0 if timeout_s is None else int(round(timeout_s * 1000))
    common = dict(run_at_ms=run_at_ms(run_at), priority=priority, max_attempts=max_attempts,
                  timeout_ms=timeout_ms, max_lost_claims=max_lost_claims)
    jobs = [J.JobEnqueueRequest(args=to_bytes(item, "item"), **common,
                                unique_key=b"" if unique_keys is None else to_bytes(unique_keys[n], "unique_key"))
            for n, item in enumerate(items)]
    request = J.JobEnqueueManyRequest(queue=to_bytes(queue, "queue"), jobs=jobs, request_id=new_request_id())
    return Operation("Jobs", "EnqueueMany", request, lambda r: [j.id for j in r.jobs], write=True)


def claim(queue: BytesLike, lease: int, limit: int = 1) -> Operation:
    request = J.JobClaimRequest(queue=to_bytes(queue, "queue"), lease=lease, limit=limit,
                                request_id=new_request_id())
    return Operation("Jobs", "Claim", request, lambda r: [Job.from_proto(j) for j in r.jobs], write=True)


def _decode_job(response) -> Job:
    return Job.from_proto(response.job)


def complete(job_id: int, token: int, result: BytesLike = b"") -> Operation:
    request = J.JobCompleteRequest(id=job_id, token=token, result=to_bytes(result, "result"),
                                   request_id=new_request_id())
    return Operation("Jobs", "Complete", request, _decode_job, write=True)


def fail(job_id: int, token: int, error: str) -> Operation:
    request = J.JobFailRequest(id=job_id, token=token, error=error, request_id=new_request_id())
    return Operation("Jobs", "Fail", request, _decode_job, write=True)


@dataclasses.dataclass(frozen=True)
class Settled:
    """A settlement that claimed the next jobs in the same entry: the settled
    `job` and the jobs `claimed` (each with its fencing token)."""

    job: Job
    claimed: list[Job]


def _decode_settled(response) -> Settled:
    return Settled(Job.from_proto(response.job), [Job.from_proto(j) for j in response.claimed])


def settle_and_claim(settlement: Operation, lease: int, limit: int) -> Operation:
    """`settlement` (a `complete` or `fail`) that also claims up to `limit`
    jobs of the settled job's queue under `lease`, in the same Raft entry;
    answers a `Settled`. The same request id as `settlement` is not kept: it
    is a different request."""
    assert settlement.method in ("Complete", "Fail") and lease > 0 and limit > 0
    request = type(settlement.request)()
    request.CopyFrom(settlement.request)
    request.claim_next.lease, request.claim_next.limit = lease, limit
    request.request_id = new_request_id()
    return dataclasses.replace(settlement, request=request, decode=_decode_settled)


@dataclasses.dataclass(frozen=True)
class SettleOutcome:
    """One settlement of a `settle`: `settled`, or `refused` saying why (the
    claim had ended); `state` the job's state after it ("unknown" for a job
    not found in the queue)."""

    id: int
    settled: bool
    refused: str
    state: str


@dataclasses.dataclass(frozen=True)
class SettleAnswer:
    """The outcomes of a `settle`, in its settlements' order, and the jobs
    its claim_next claimed (each with its fencing token)."""

    outcomes: list[SettleOutcome]
    claimed: list[Job]


def _decode_settle(response) -> SettleAnswer:
    return SettleAnswer([SettleOutcome(o.id, o.settled, o.refused, _STATE_NAMES.get(o.state, "unknown"))
                         for o in response.outcomes], [Job.from_proto(j) for j in response.claimed])


def settlement(job_id: int, token: int, *, result: bytes = b"", error: str | None = None) -> J.JobSettlement:
    """A job's outcome for `settle`: completed with `result`, or failed with `error`."""
    if error is not None:
        return J.JobSettlement(id=job_id, token=token, failed=True, error=error)
    return J.JobSettlement(id=job_id, token=token, result=result)


def settle(queue: BytesLike, settlements: list[J.JobSettlement], lease: int = 0, limit: int = 0) -> Operation:
    """Many settlements of `queue`'s jobs (each fenced alone) and, with
    `lease`, the claim of up to `limit` next jobs, in one Raft entry;
    answers a `SettleAnswer`."""
    request = J.JobSettleRequest(queue=to_bytes(queue, "queue"), settlements=settlements,
                                 request_id=new_request_id())
    if lease:
        request.claim_next.lease, request.claim_next.limit = lease, limit
    return Operation("Jobs", "Settle", request, _decode_settle, write=True)


def by_id(method: str, job_id: int) -> Operation:
    """Retry, Cancel or Discard of one job."""
    request_type = {"Retry": J.JobRetryRequest, "Cancel": J.JobCancelRequest,
                    "Discard": J.JobDiscardRequest}[method]
    request = request_type(id=job_id, request_id=new_request_id())
    return Operation("Jobs", method, request, _decode_job, write=True)


def get(job_id: int, stale: bool = False) -> Operation:
    request = J.JobGetRequest(id=job_id, consistency=_consistency(stale))
    return Operation("Jobs", "Get", request, lambda r: Job.from_proto(
        r.job, r.progress if r.HasField("progress") else None) if r.found else None, write=False)


def list_jobs(queue: BytesLike | None = None, state: str | None = None, after_id: int = 0, limit: int = 0,
              stale: bool = False) -> Operation:
    request = J.JobListRequest(queue=b"" if queue is None else to_bytes(queue, "queue"),
                               state=state_value(state), after_id=after_id, limit=limit,
                               consistency=_consistency(stale))
    return Operation("Jobs", "List", request, lambda r: JobPage(
        [Job.from_proto(j) for j in r.jobs], r.more, r.next_after_id), write=False)


def stats(queue: BytesLike | None = None, stale: bool = False) -> Operation:
    request = J.JobStatsRequest(queue=b"" if queue is None else to_bytes(queue, "queue"),
                                consistency=_consistency(stale))
    return Operation("Jobs", "Stats", request, lambda r: [QueueStats(
        q.queue, q.available, q.scheduled, q.claimed, q.completed, q.retryable, q.dead, q.cancelled,
        q.concurrency_max) for q in r.queues], write=False)


def set_queue_limit(queue: BytesLike, concurrency_max: int) -> Operation:
    """Sets the queue's cluster-wide limit on jobs claimed at once (0
    removes it); answers the limit now."""
    request = J.JobQueueLimitRequest(queue=to_bytes(queue, "queue"), concurrency_max=concurrency_max,
                                     request_id=new_request_id())
    return Operation("Jobs", "SetQueueLimit", request, lambda r: r.concurrency_max, write=True)


@dataclasses.dataclass(frozen=True)
class JobCron:
    """A recurring job: a job of `queue` at each minute `expression` (UTC)
    matches; `next_run_ms` on the log clock; `last_job_id` its last run's."""

    name: bytes
    expression: str
    queue: bytes
    args: bytes
    priority: int
    max_attempts: int
    timeout_ms: int
    next_run_ms: int
    last_job_id: int
    max_lost_claims: int = 0

    @classmethod
    def from_proto(cls, job_cron: J.JobCron) -> JobCron:
        return cls(job_cron.name, job_cron.expression, job_cron.queue, job_cron.args, job_cron.priority,
                   job_cron.max_attempts, job_cron.timeout_ms, job_cron.next_run_ms, job_cron.last_job_id,
                   job_cron.max_lost_claims)


def cron_put(name: BytesLike, expression: str, queue: BytesLike, args: BytesLike = b"", *, priority: int = 0,
             max_attempts: int = 0, timeout_s: float | None = None, max_lost_claims: int = 0) -> Operation:
    job_cron = J.JobCron(name=to_bytes(name, "name"), expression=expression, queue=to_bytes(queue, "queue"),
                         args=to_bytes(args, "args"), priority=priority, max_attempts=max_attempts,
                         max_lost_claims=max_lost_claims,
                         timeout_ms=0 if timeout_s is None else int(round(timeout_s * 1000)))
    request = J.JobCronPutRequest(cron=job_cron, request_id=new_request_id())
    return Operation("Jobs", "CronPut", request, lambda r: JobCron.from_proto(r.cron), write=True)


def cron_delete(name: BytesLike) -> Operation:
    request = J.JobCronDeleteRequest(name=to_bytes(name, "name"), request_id=new_request_id())
    return Operation("Jobs", "CronDelete", request, lambda r: r.deleted, write=True)


def cron_list(stale: bool = False) -> Operation:
    request = J.JobCronListRequest(consistency=_consistency(stale))
    return Operation("Jobs", "CronList", request, lambda r: [JobCron.from_proto(c) for c in r.crons],
                     write=False)


# -- progress and heartbeats: the available plane, any node answers, no Raft write --
def progress(job_id: int, token: int, progress: int, note: str = "") -> Operation:
    request = J.JobProgressRequest(id=job_id, token=token, progress=progress, note=note)
    return Operation("Jobs", "Progress", request, lambda r: r.node, write=True, local=True)


def heartbeat(queue: BytesLike, worker: str, running: int = 0, stopping: bool = False) -> Operation:
    request = J.JobHeartbeatRequest(queue=to_bytes(queue, "queue"), worker=worker, running=running,
                                    stopping=stopping)
    return Operation("Jobs", "Heartbeat", request, lambda r: r.node, write=True, local=True)


def workers(queue: BytesLike | None = None) -> Operation:
    request = J.JobWorkersRequest(queue=b"" if queue is None else to_bytes(queue, "queue"))
    return Operation("Jobs", "Workers", request, lambda r: [WorkerBeat.from_proto(w) for w in r.workers],
                     write=False, local=True)
