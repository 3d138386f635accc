"""The job board: job progress and worker heartbeats in the available plane
(docs/jobs.md, "Progress and heartbeats"). Pure: the keys and values of
its two keyed tables and the rules for what is shown and what leaves; the
running half (server/node/job_board.py) reads and writes the tables through
`node.crdt` and asks these rules.

Two keyed LWW_REGISTER tables, catalogued once through Raft, written on
the node that takes a call and gossiped to the others, so a report or a
beat is never a Raft write:
- PROGRESS_TABLE: key the job id (8 bytes), value a `JobProgress`: the
  last report of the job's current claim;
- WORKERS_TABLE: key a digest of the queue then the worker id, value a
  `JobWorker`: the worker's last heartbeat.

What leaves, and when (`progress_leaves`, `worker_stale`): a progress entry
once its job is finished, back in its queue, claimed under another token,
or gone, or JOB_PROGRESS_STALE_MS after its last report; a worker
JOB_WORKER_STALE_MS after its last beat. Reads show only what would not
leave, so an entry nobody has swept yet is never shown. The requests are
checked with the job queue's (server/strong/job_checks.py).
"""

from __future__ import annotations

import hashlib

from tandemkv import limits
from tandemkv.v1 import jobs_pb2 as J

PROGRESS_TABLE = "tandemkv.jobs.progress"
WORKERS_TABLE = "tandemkv.jobs.workers"
# Both tables hold one last-writer-wins value a key.
TABLE_KIND = "lww_register"

_QUEUE_DIGEST_BYTES = 8
_FINISHED = frozenset({J.JOB_COMPLETED, J.JOB_DEAD, J.JOB_CANCELLED})


def progress_key(job_id: int) -> bytes:
    return job_id.to_bytes(8, "big")


def queue_key_prefix(queue: bytes) -> bytes:
    """Where a queue's workers start in WORKERS_TABLE: a digest of the
    queue, so any queue name (up to JOB_QUEUE_BYTES_MAX) with any worker id
    keeps a key within KEYED_KEY_BYTES_MAX."""
    return hashlib.blake2b(queue, digest_size=_QUEUE_DIGEST_BYTES).digest()


def worker_key(queue: bytes, worker: str) -> bytes:
    return queue_key_prefix(queue) + worker.encode()


# -- the rules --
def stale_token_reason(job: J.Job | None, token: int) -> str | None:
    """Why a progress report under `token` is refused, as this node's
    replica has the job; None: accept it. A token above the job's is
    accepted: this replica has not applied the claim yet."""
    if job is None:
        return None
    if token < job.token or (token == job.token and job.state != J.JOB_CLAIMED):
        state = J.JobState.Name(job.state).removeprefix("JOB_").lower()
        return (f"job {job.id} is {state} (current token {job.token}); token {token} is stale: that "
                "claim ended, so its progress is not recorded")
    return None


def progress_leaves(entry: J.JobProgress, job: J.Job | None, now_ms: int, applied_index: int | None = None
                    ) -> bool:
    """Whether a progress entry goes: its job is gone, finished, or no
    longer claimed under the entry's token, or it is stale. `job` None:
    the job is not in this replica (pruned, or never enqueued). A replica
    that has not applied the entry's claim yet (its `applied_index`, or the
    job's token, below the entry's token) keeps it until it has: it cannot
    tell."""
    if now_ms - entry.at_ms > limits.JOB_PROGRESS_STALE_MS:
        return True
    if job is None:
        return applied_index is None or applied_index >= entry.token
    if entry.token > job.token:
        return False
    return job.state in _FINISHED or job.token > entry.token or job.state != J.JOB_CLAIMED


def progress_shown(entry: J.JobProgress | None, job: J.Job, now_ms: int) -> J.JobProgress | None:
    """The entry, if it is the report of the job's current claim."""
    if entry is None or progress_leaves(entry, job, now_ms) or entry.token != job.token:
        return None
    return entry


def worker_stale(entry: J.JobWorker, now_ms: int) -> bool:
    return now_ms - entry.beat_ms > limits.JOB_WORKER_STALE_MS


def live_workers(entries: list[J.JobWorker], queue: bytes, now_ms: int) -> list[J.JobWorker]:
    """The entries of `queue` (every queue when empty) that are not stale,
    by queue then worker, at most JOB_WORKERS_LIST_MAX."""
    shown = [e for e in entries if (not queue or e.queue == queue) and not worker_stale(e, now_ms)]
    shown.sort(key=lambda e: (e.queue, e.worker))
    return shown[:limits.JOB_WORKERS_LIST_MAX]


def workers_per_queue(entries: list[J.JobWorker], now_ms: int) -> dict[bytes, tuple[int, int]]:
    """queue -> (live workers, jobs they say they run)."""
    counts: dict[bytes, tuple[int, int]] = {}
    for entry in live_workers(entries, b"", now_ms):
        workers, running = counts.get(entry.queue, (0, 0))
        counts[entry.queue] = (workers + 1, running + entry.running)
    return counts
