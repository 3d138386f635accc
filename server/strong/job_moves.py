"""Moving a job between states in the job queue's tables (job_store.py):
its indexes, its lease attachment, its queue's counts and its unique key
follow the move. Pure, like the rest of the state machine; jobs.py decides
which move to make, this file makes it. Also the backoff after a failure,
which every replica must compute alike.
"""

from __future__ import annotations

import hashlib

from tandemkv import limits
from tandemkv.v1 import jobs_pb2 as J

from tandemkv.server.strong.job_store import DEADLINES, FINISHED, JOB_ITEM, STATE_COUNTS, WAITING, JobTables

UNFINISHED = frozenset({J.JOB_AVAILABLE, J.JOB_SCHEDULED, J.JOB_CLAIMED, J.JOB_RETRYABLE})
FINISHED_STATES = frozenset({J.JOB_COMPLETED, J.JOB_DEAD, J.JOB_CANCELLED})


def state_name(state: int) -> str:
    return STATE_COUNTS.get(state, "unknown")


def backoff_ms(job_id: int, failures: int) -> int:
    """The wait after a job's `failures`-th failure: a ceiling doubling from
    JOB_BACKOFF_MIN_MS per failure up to JOB_BACKOFF_MAX_MS, and a point in
    its upper half (never under the minimum) drawn from a hash of the job id
    and the count, so retries spread out and every replica agrees."""
    assert failures >= 1, "a backoff follows a failure"
    ceiling_ms = min(limits.JOB_BACKOFF_MAX_MS, limits.JOB_BACKOFF_MIN_MS << min(failures - 1, 40))
    floor_ms = max(limits.JOB_BACKOFF_MIN_MS, ceiling_ms // 2)
    seed = job_id.to_bytes(8, "big") + failures.to_bytes(4, "big")
    draw = int.from_bytes(hashlib.blake2b(seed, digest_size=8).digest(), "big")
    return floor_ms + draw % (ceiling_ms - floor_ms + 1)


def leave(tables: JobTables, job: J.Job) -> None:
    state = job.state
    if state == J.JOB_AVAILABLE:
        tables.available_remove(job)
    elif state in (J.JOB_SCHEDULED, J.JOB_RETRYABLE):
        tables.timed_remove(WAITING, job.run_at_ms, job.id)
    elif state == J.JOB_CLAIMED:
        tables.view.lease_detach(job.lease, JOB_ITEM + job.id.to_bytes(8, "big"))
        if job.deadline_ms:
            tables.timed_remove(DEADLINES, job.deadline_ms, job.id)
        job.deadline_ms = 0
    elif state in FINISHED_STATES:
        tables.timed_remove(FINISHED, job.finished_ms, job.id)
        tables.finished_count_add(-1)
    _count(tables, job.queue, state, -1)


def enter(tables: JobTables, job: J.Job, state: int, clock_ms: int) -> None:
    """Puts the job in `state` (its indexes, counts and unique key) and stores it."""
    job.state = state
    if state == J.JOB_AVAILABLE:
        tables.available_add(job)
    elif state in (J.JOB_SCHEDULED, J.JOB_RETRYABLE):
        tables.timed_add(WAITING, job.run_at_ms, job.id)
    elif state == J.JOB_CLAIMED:
        tables.view.lease_attach(job.lease, JOB_ITEM + job.id.to_bytes(8, "big"))
        if job.deadline_ms:
            tables.timed_add(DEADLINES, job.deadline_ms, job.id)
    elif state in FINISHED_STATES:
        job.finished_ms = clock_ms
        tables.timed_add(FINISHED, job.finished_ms, job.id)
        tables.finished_count_add(1)
        if job.unique_key and tables.unique_get(job.queue, job.unique_key) == job.id:
            tables.unique_delete(job.queue, job.unique_key)
    _count(tables, job.queue, state, 1)
    tables.put(job)


def move(tables: JobTables, job: J.Job, state: int, clock_ms: int) -> None:
    leave(tables, job)
    enter(tables, job, state, clock_ms)


def _count(tables: JobTables, queue: bytes, state: int, delta: int) -> None:
    stats = tables.stats(queue)
    name = STATE_COUNTS[state]
    setattr(stats, name, getattr(stats, name) + delta)
    tables.stats_put(stats)
