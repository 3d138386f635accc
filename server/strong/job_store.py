"""What the job queue (jobs.py) stores, and how: `JobTables`, the job
queue's tables inside a view's transaction. They live in the view's claim
tables (each a sorted map, in LMDB one database keyed table tag + name), so
`MemoryView` and the LMDB view hold them alike, with the same sizes, and
the view's `atomic` covers them.

Tables (one-byte tags, distinct from coordination's and the catalogue's):
- J jobs: id -> `Job` (the record);
- A available: (queue, priority, run_at, id), the claim order of a queue;
- S waiting: (run_at, id) of scheduled and retryable jobs, so promotion
  finds its work without a scan (log clock);
- T deadlines: (deadline, id) of claimed jobs with a timeout (lease clock);
- U unique: (queue, unique_key) -> id, while that job is not finished;
- F finished: (finished_ms, id), the order retention prunes in;
- Q queues: queue -> `JobQueueStats`, the counts per state;
- L queue limits: queue -> its cluster-wide limit on jobs claimed at once
  (4 bytes, big-endian; no record: no limit), kept apart from Q, whose
  record goes when its counts reach zero;
- C crons: name -> `JobCron`, the recurring jobs;
- N cron runs: (next_run_ms, name), the order crons come due (log clock).

Like the rest of the view, the tables decide nothing: jobs.py tells them
what to store.
"""

from __future__ import annotations

from itertools import islice

from tandemkv.v1 import jobs_pb2

from tandemkv.server.strong.view import StoreView

JOBS = b"J"
AVAILABLE = b"A"
WAITING = b"S"
DEADLINES = b"T"
UNIQUE = b"U"
FINISHED = b"F"
QUEUES = b"Q"
QUEUE_LIMITS = b"L"
CRONS = b"C"
CRON_RUNS = b"N"
# A claimed job's attachment to its lease: this kind + its id.
JOB_ITEM = JOBS
# How many jobs are finished (meta key), for the retention count bound.
FINISHED_COUNT_KEY = b"jobs_finished_count"
# The last job id given (meta key): ids are Raft indexes, or above them when
# one entry adds several jobs (an enqueue and the crons that came due).
LAST_ID_KEY = b"jobs_last_id"

_ID_BYTES = 8
_STAMP_BYTES = 8
_PRIORITY_BYTES = 1
_LIMIT_BYTES = 4


def id_bytes(job_id: int) -> bytes:
    return job_id.to_bytes(_ID_BYTES, "big")


def _stamp(ms: int) -> bytes:
    # Clocks are wall-clock or lease-clock ms, never negative in practice;
    # clamped so the key is total.
    return max(0, ms).to_bytes(_STAMP_BYTES, "big")


def queue_prefix(queue: bytes) -> bytes:
    """The queue's length first, so one queue's keys never interleave with
    a longer queue that starts with the same bytes."""
    return len(queue).to_bytes(2, "big") + queue


def _timed(ms: int, job_id: int) -> bytes:
    return _stamp(ms) + id_bytes(job_id)


def _job_id(key: bytes) -> int:
    return int.from_bytes(key[-_ID_BYTES:], "big")


def _end_after(ms: int) -> bytes:
    """The first timed key past every key stamped at or before ms."""
    return _stamp(ms + 1)


class JobTables:
    """The job queue's tables over one view (see the module docstring)."""

    def __init__(self, view: StoreView):
        self.view = view

    # -- records --
    def get(self, job_id: int) -> jobs_pb2.Job | None:
        raw = self.view.claim_get(JOBS, id_bytes(job_id))
        return None if raw is None else jobs_pb2.Job.FromString(raw)

    def put(self, job: jobs_pb2.Job) -> None:
        self.view.claim_put(JOBS, id_bytes(job.id), job.SerializeToString())

    def delete(self, job_id: int) -> None:
        self.view.claim_delete(JOBS, id_bytes(job_id))

    def scan(self, after_id: int, count_max: int) -> list[jobs_pb2.Job]:
        if after_id >= 2 ** (8 * _ID_BYTES) - 1:
            return []  # no id is above the largest
        found = self.view.claim_scan(JOBS, id_bytes(after_id + 1), None)
        return [jobs_pb2.Job.FromString(raw) for _, raw in islice(found, count_max)]

    # -- the available order of a queue --
    def _available_key(self, job: jobs_pb2.Job) -> bytes:
        return (queue_prefix(job.queue) + job.priority.to_bytes(_PRIORITY_BYTES, "big")
                + _timed(job.run_at_ms, job.id))

    def available_add(self, job: jobs_pb2.Job) -> None:
        self.view.claim_put(AVAILABLE, self._available_key(job), b"")

    def available_remove(self, job: jobs_pb2.Job) -> None:
        self.view.claim_delete(AVAILABLE, self._available_key(job))

    def available_first(self, queue: bytes, count_max: int) -> list[int]:
        prefix = queue_prefix(queue)
        end = prefix + b"\xff" * (_PRIORITY_BYTES + _STAMP_BYTES + _ID_BYTES + 1)
        found = self.view.claim_scan(AVAILABLE, prefix, end)
        return [_job_id(key) for key, _ in islice(found, count_max)]

    # -- timed indexes: waiting (log clock), deadlines (lease clock), finished --
    def timed_add(self, table: bytes, ms: int, job_id: int) -> None:
        self.view.claim_put(table, _timed(ms, job_id), b"")

    def timed_remove(self, table: bytes, ms: int, job_id: int) -> None:
        self.view.claim_delete(table, _timed(ms, job_id))

    def timed_due(self, table: bytes, now_ms: int | None, count_max: int) -> list[int]:
        """Ids stamped at or before now_ms (None: any), earliest first."""
        end = None if now_ms is None else _end_after(now_ms)
        found = self.view.claim_scan(table, b"", end)
        return [_job_id(key) for key, _ in islice(found, count_max)]

    # -- unique keys --
    def unique_get(self, queue: bytes, unique_key: bytes) -> int | None:
        raw = self.view.claim_get(UNIQUE, queue_prefix(queue) + unique_key)
        return None if raw is None else int.from_bytes(raw, "big")

    def unique_put(self, queue: bytes, unique_key: bytes, job_id: int) -> None:
        self.view.claim_put(UNIQUE, queue_prefix(queue) + unique_key, id_bytes(job_id))

    def unique_delete(self, queue: bytes, unique_key: bytes) -> None:
        self.view.claim_delete(UNIQUE, queue_prefix(queue) + unique_key)

    def new_id(self, index: int) -> int:
        raw = self.view.meta_get(LAST_ID_KEY)
        job_id = max(index, 0 if raw is None else int.from_bytes(raw, "big") + 1)
        self.view.meta_put(LAST_ID_KEY, id_bytes(job_id))
        return job_id

    # -- recurring jobs --
    def cron_get(self, name: bytes) -> jobs_pb2.JobCron | None:
        raw = self.view.claim_get(CRONS, name)
        return None if raw is None else jobs_pb2.JobCron.FromString(raw)

    def cron_put(self, job_cron: jobs_pb2.JobCron) -> None:
        self.view.claim_put(CRONS, job_cron.name, job_cron.SerializeToString())

    def cron_delete(self, name: bytes) -> None:
        self.view.claim_delete(CRONS, name)

    def cron_scan(self, count_max: int) -> list[jobs_pb2.JobCron]:
        found = self.view.claim_scan(CRONS, b"", None)
        return [jobs_pb2.JobCron.FromString(raw) for _, raw in islice(found, count_max)]

    def cron_run_add(self, run_ms: int, name: bytes) -> None:
        self.view.claim_put(CRON_RUNS, _stamp(run_ms) + name, b"")

    def cron_run_remove(self, run_ms: int, name: bytes) -> None:
        self.view.claim_delete(CRON_RUNS, _stamp(run_ms) + name)

    def cron_runs_due(self, now_ms: int, count_max: int) -> list[bytes]:
        """Names of the crons due at or before now_ms, earliest first."""
        found = self.view.claim_scan(CRON_RUNS, b"", _end_after(now_ms))
        return [key[_STAMP_BYTES:] for key, _ in islice(found, count_max)]

    def due(self, now_ms: int) -> bool:
        """Whether a scheduled or retryable job, or a recurring job's run, is
        due at now_ms (so a leader's tick, which carries its time, has work)."""
        return bool(self.timed_due(WAITING, now_ms, 1) or self.cron_runs_due(now_ms, 1))

    # -- counts --
    def stats(self, queue: bytes) -> jobs_pb2.JobQueueStats:
        raw = self.view.claim_get(QUEUES, queue)
        if raw is None:
            return jobs_pb2.JobQueueStats(queue=queue)
        return jobs_pb2.JobQueueStats.FromString(raw)

    def stats_scan(self, count_max: int) -> list[jobs_pb2.JobQueueStats]:
        found = self.view.claim_scan(QUEUES, b"", None)
        return [jobs_pb2.JobQueueStats.FromString(raw) for _, raw in islice(found, count_max)]

    def stats_put(self, stats: jobs_pb2.JobQueueStats) -> None:
        if any(getattr(stats, name) for name in STATE_COUNTS.values()):
            self.view.claim_put(QUEUES, stats.queue, stats.SerializeToString())
        else:
            self.view.claim_delete(QUEUES, stats.queue)

    # -- cluster-wide limits per queue --
    def limit_get(self, queue: bytes) -> int:
        """The queue's limit on jobs claimed at once; 0: none."""
        raw = self.view.claim_get(QUEUE_LIMITS, queue)
        return 0 if raw is None else int.from_bytes(raw, "big")

    def limit_put(self, queue: bytes, concurrency_max: int) -> None:
        """Sets the queue's limit; 0 removes it."""
        if concurrency_max:
            self.view.claim_put(QUEUE_LIMITS, queue, concurrency_max.to_bytes(_LIMIT_BYTES, "big"))
        else:
            self.view.claim_delete(QUEUE_LIMITS, queue)

    def limit_scan(self, count_max: int) -> list[tuple[bytes, int]]:
        """(queue, limit) of the queues with a limit, in queue order."""
        found = self.view.claim_scan(QUEUE_LIMITS, b"", None)
        return [(queue, int.from_bytes(raw, "big")) for queue, raw in islice(found, count_max)]

    def finished_count(self) -> int:
        raw = self.view.meta_get(FINISHED_COUNT_KEY)
        return 0 if raw is None else int.from_bytes(raw, "big")

    def finished_count_add(self, delta: int) -> None:
        count = self.finished_count() + delta
        assert count >= 0, "finished jobs are counted as they finish and go"
        self.view.meta_put(FINISHED_COUNT_KEY, count.to_bytes(8, "big"))


# Each state's count field in JobQueueStats.
STATE_COUNTS = {
    jobs_pb2.JOB_AVAILABLE: "available",
    jobs_pb2.JOB_SCHEDULED: "scheduled",
    jobs_pb2.JOB_CLAIMED: "claimed",
    jobs_pb2.JOB_COMPLETED: "completed",
    jobs_pb2.JOB_RETRYABLE: "retryable",
    jobs_pb2.JOB_DEAD: "dead",
    jobs_pb2.JOB_CANCELLED: "cancelled",
}
