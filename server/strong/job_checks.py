"""Validation of the job queue's requests against the named limits (the
API edge and apply both run it, through validation.check_request). Pure:
bad input raises InvalidArgument with a message naming the limit or what
to fix."""

from __future__ import annotations

from tandemkv import limits
from tandemkv.errors import InvalidArgument
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import kv_pb2

from tandemkv.server.strong import cron
from tandemkv.server.strong.job_store import STATE_COUNTS


def _check_queue(queue: bytes, what: str = "queue") -> None:
    if not 0 < len(queue) <= limits.JOB_QUEUE_BYTES_MAX:
        raise InvalidArgument(f"{what} is {len(queue)} bytes; it must be 1 to JOB_QUEUE_BYTES_MAX="
                              f"{limits.JOB_QUEUE_BYTES_MAX} bytes", limit="JOB_QUEUE_BYTES_MAX")


def _check_bytes(value: bytes, what: str, limit_name: str) -> None:
    limit = getattr(limits, limit_name)
    if len(value) > limit:
        raise InvalidArgument(f"{what} is {len(value)} bytes; the limit {limit_name} is {limit} bytes",
                              limit=limit_name)


def _check_consistency(consistency: int) -> None:
    if consistency not in kv_pb2.ReadConsistency.values():
        raise InvalidArgument(f"unknown consistency {consistency}; use 0 (LINEARIZABLE) or 1 (STALE)")


def _check_id(job_id: int) -> None:
    if job_id <= 0:
        raise InvalidArgument("id must be a job id (a positive number that enqueue returned)")


def check_enqueue(request: J.JobEnqueueRequest) -> None:
    _check_queue(request.queue)
    _check_bytes(request.args, "args", "JOB_ARGS_BYTES_MAX")
    _check_bytes(request.unique_key, "unique_key", "JOB_UNIQUE_KEY_BYTES_MAX")
    if request.priority > limits.JOB_PRIORITY_MAX:
        raise InvalidArgument(f"priority {request.priority} is over JOB_PRIORITY_MAX="
                              f"{limits.JOB_PRIORITY_MAX} (0 runs first)", limit="JOB_PRIORITY_MAX")
    if request.max_attempts > limits.JOB_MAX_ATTEMPTS_MAX:
        raise InvalidArgument(f"max_attempts {request.max_attempts} is over JOB_MAX_ATTEMPTS_MAX="
                              f"{limits.JOB_MAX_ATTEMPTS_MAX}", limit="JOB_MAX_ATTEMPTS_MAX")
    if request.max_lost_claims > limits.JOB_MAX_LOST_CLAIMS_MAX:
        raise InvalidArgument(f"max_lost_claims {request.max_lost_claims} is over JOB_MAX_LOST_CLAIMS_MAX="
                              f"{limits.JOB_MAX_LOST_CLAIMS_MAX}", limit="JOB_MAX_LOST_CLAIMS_MAX")
    if request.timeout_ms > limits.JOB_TIMEOUT_MS_MAX:
        raise InvalidArgument(f"timeout_ms {request.timeout_ms} is over JOB_TIMEOUT_MS_MAX="
                              f"{limits.JOB_TIMEOUT_MS_MAX}", limit="JOB_TIMEOUT_MS_MAX")
    if request.run_at_ms < 0:
        raise InvalidArgument(f"run_at_ms {request.run_at_ms} is negative; give epoch ms, or 0 for now")


def check_claim(request: J.JobClaimRequest) -> None:
    _check_queue(request.queue)
    if request.lease <= 0:
        raise InvalidArgument("lease must be a lease id (grant one first); a claim ends with its lease")
    if request.limit > limits.JOB_CLAIM_JOBS_MAX:
        raise InvalidArgument(f"limit {request.limit} is over JOB_CLAIM_JOBS_MAX="
                              f"{limits.JOB_CLAIM_JOBS_MAX}", limit="JOB_CLAIM_JOBS_MAX")


def _check_claim_next(request: J.JobCompleteRequest | J.JobFailRequest | J.JobSettleRequest) -> None:
    """A settlement's claim of the next jobs, when it carries one."""
    if not request.HasField("claim_next"):
        return
    claim_next = request.claim_next
    if claim_next.lease <= 0:
        raise InvalidArgument("claim_next.lease must be a lease id (the worker's, which the new claims "
                              "are attached to); leave claim_next out to settle only")
    if claim_next.limit > limits.JOB_CLAIM_JOBS_MAX:
        raise InvalidArgument(f"claim_next.limit {claim_next.limit} is over JOB_CLAIM_JOBS_MAX="
                              f"{limits.JOB_CLAIM_JOBS_MAX}", limit="JOB_CLAIM_JOBS_MAX")


def check_complete(request: J.JobCompleteRequest) -> None:
    _check_id(request.id)
    _check_bytes(request.result, "result", "JOB_ARGS_BYTES_MAX")
    _check_claim_next(request)


def check_fail(request: J.JobFailRequest) -> None:
    _check_id(request.id)
    _check_bytes(request.error.encode(), "error", "JOB_ERROR_BYTES_MAX")
    _check_claim_next(request)


def check_enqueue_many(request: J.JobEnqueueManyRequest) -> None:
    _check_queue(request.queue)
    if not 0 < len(request.jobs) <= limits.JOB_ENQUEUE_MANY_JOBS_MAX:
        raise InvalidArgument(f"jobs holds {len(request.jobs)}; give 1 to JOB_ENQUEUE_MANY_JOBS_MAX="
                              f"{limits.JOB_ENQUEUE_MANY_JOBS_MAX} jobs", limit="JOB_ENQUEUE_MANY_JOBS_MAX")
    for position, job in enumerate(request.jobs):
        if job.queue or job.request_id:
            raise InvalidArgument(f"jobs[{position}] sets queue or request_id; leave both empty (the "
                                  "request's queue and request_id cover every job)")
        try:
            check_enqueue(J.JobEnqueueRequest(queue=request.queue, args=job.args, unique_key=job.unique_key,
                                              run_at_ms=job.run_at_ms, priority=job.priority,
                                              max_attempts=job.max_attempts, timeout_ms=job.timeout_ms,
                                              max_lost_claims=job.max_lost_claims))
        except InvalidArgument as bad:
            raise InvalidArgument(f"jobs[{position}]: {bad.message}", limit=bad.limit) from None


def check_settle(request: J.JobSettleRequest) -> None:
    _check_queue(request.queue)
    count = len(request.settlements)
    if count > limits.JOB_SETTLE_JOBS_MAX:
        raise InvalidArgument(f"settlements holds {count}; give at most JOB_SETTLE_JOBS_MAX="
                              f"{limits.JOB_SETTLE_JOBS_MAX}", limit="JOB_SETTLE_JOBS_MAX")
    if count == 0 and not request.HasField("claim_next"):
        raise InvalidArgument("settlements is empty and there is no claim_next: give a settlement, or "
                              "use Claim")
    seen: set[int] = set()
    for position, settlement in enumerate(request.settlements):
        where = f"settlements[{position}]"
        if settlement.id <= 0 or settlement.token <= 0:
            raise InvalidArgument(f"{where}: id and token must be a claimed job's id and fencing token "
                                  "(claim returned both)")
        if settlement.id in seen:
            raise InvalidArgument(f"{where}: job {settlement.id} is settled twice in one request; "
                                  "give each job once")
        seen.add(settlement.id)
        if settlement.failed and settlement.result:
            raise InvalidArgument(f"{where}: a failed settlement carries an error, not a result")
        if not settlement.failed and settlement.error:
            raise InvalidArgument(f"{where}: error is set but failed is not; set failed to fail the job")
        _check_bytes(settlement.result, f"{where}.result", "JOB_ARGS_BYTES_MAX")
        _check_bytes(settlement.error.encode(), f"{where}.error", "JOB_ERROR_BYTES_MAX")
    _check_claim_next(request)


def check_list(request: J.JobListRequest) -> None:
    if request.queue:
        _check_queue(request.queue)
    if request.state not in J.JobState.values():
        raise InvalidArgument(f"state {request.state} is unknown; use one of "
                              + ", ".join(f"{v} ({STATE_COUNTS[v]})" for v in sorted(STATE_COUNTS)))


def check_stats(request: J.JobStatsRequest) -> None:
    if request.queue:
        _check_queue(request.queue)


def check_queue_limit(request: J.JobQueueLimitRequest) -> None:
    _check_queue(request.queue)
    if request.concurrency_max > limits.JOB_QUEUE_CONCURRENCY_MAX:
        raise InvalidArgument(f"concurrency_max {request.concurrency_max} is over JOB_QUEUE_CONCURRENCY_MAX="
                              f"{limits.JOB_QUEUE_CONCURRENCY_MAX} (0 removes the queue's limit)",
                              limit="JOB_QUEUE_CONCURRENCY_MAX")


def check_cron_put(request: J.JobCronPutRequest) -> None:
    job_cron = request.cron
    if not 0 < len(job_cron.name) <= limits.JOB_CRON_NAME_BYTES_MAX:
        raise InvalidArgument(f"cron name is {len(job_cron.name)} bytes; it must be 1 to "
                              f"JOB_CRON_NAME_BYTES_MAX={limits.JOB_CRON_NAME_BYTES_MAX} bytes",
                              limit="JOB_CRON_NAME_BYTES_MAX")
    _check_bytes(job_cron.args, "cron args", "JOB_CRON_ARGS_BYTES_MAX")
    check_enqueue(J.JobEnqueueRequest(queue=job_cron.queue, args=job_cron.args, priority=job_cron.priority,
                                      max_attempts=job_cron.max_attempts, timeout_ms=job_cron.timeout_ms,
                                      max_lost_claims=job_cron.max_lost_claims))
    cron.parse(job_cron.expression)


def check_cron_delete(request: J.JobCronDeleteRequest) -> None:
    if not 0 < len(request.name) <= limits.JOB_CRON_NAME_BYTES_MAX:
        raise InvalidArgument(f"cron name is {len(request.name)} bytes; it must be 1 to "
                              f"JOB_CRON_NAME_BYTES_MAX={limits.JOB_CRON_NAME_BYTES_MAX} bytes",
                              limit="JOB_CRON_NAME_BYTES_MAX")


# -- progress and heartbeats (the available plane's job board, server/available/job_board.py) --
def _check_id_and_token(job_id: int, token: int) -> None:
    if job_id <= 0:
        raise InvalidArgument("id must be a job id (a positive number that enqueue returned)")
    if token <= 0:
        raise InvalidArgument("token must be the fencing token of the job's claim (claim returned it)")


def check_progress(request: J.JobProgressRequest) -> None:
    _check_id_and_token(request.id, request.token)
    if request.progress > 100:
        raise InvalidArgument(f"progress {request.progress} is over 100; give a percentage 0 to 100")
    note_bytes = len(request.note.encode())
    if note_bytes > limits.JOB_PROGRESS_NOTE_BYTES_MAX:
        raise InvalidArgument(f"note is {note_bytes} bytes; the limit JOB_PROGRESS_NOTE_BYTES_MAX is "
                              f"{limits.JOB_PROGRESS_NOTE_BYTES_MAX} bytes", limit="JOB_PROGRESS_NOTE_BYTES_MAX")


def check_heartbeat(request: J.JobHeartbeatRequest) -> None:
    _check_queue(request.queue)
    worker_bytes = len(request.worker.encode())
    if not 0 < worker_bytes <= limits.JOB_WORKER_ID_BYTES_MAX:
        raise InvalidArgument(f"worker is {worker_bytes} bytes; give a worker id of 1 to "
                              f"JOB_WORKER_ID_BYTES_MAX={limits.JOB_WORKER_ID_BYTES_MAX} bytes",
                              limit="JOB_WORKER_ID_BYTES_MAX")
    if not request.worker.isprintable():
        raise InvalidArgument("worker must be printable text (a host name and pid, say)")


def check_workers(request: J.JobWorkersRequest) -> None:
    if request.queue:
        _check_queue(request.queue)


CHECKS = {
    J.JobEnqueueRequest: check_enqueue,
    J.JobClaimRequest: check_claim,
    J.JobCompleteRequest: check_complete,
    J.JobFailRequest: check_fail,
    J.JobEnqueueManyRequest: check_enqueue_many,
    J.JobSettleRequest: check_settle,
    J.JobRetryRequest: lambda r: _check_id(r.id),
    J.JobCancelRequest: lambda r: _check_id(r.id),
    J.JobDiscardRequest: lambda r: _check_id(r.id),
    J.JobGetRequest: lambda r: (_check_id(r.id), _check_consistency(r.consistency)),
    J.JobListRequest: lambda r: (check_list(r), _check_consistency(r.consistency)),
    J.JobStatsRequest: lambda r: (check_stats(r), _check_consistency(r.consistency)),
    J.JobQueueLimitRequest: check_queue_limit,
    J.JobCronPutRequest: check_cron_put,
    J.JobCronDeleteRequest: check_cron_delete,
    J.JobCronListRequest: lambda r: _check_consistency(r.consistency),
    J.JobProgressRequest: check_progress,
    J.JobHeartbeatRequest: check_heartbeat,
    J.JobWorkersRequest: check_workers,
}
