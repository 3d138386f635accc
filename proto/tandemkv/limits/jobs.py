"""The durable job queue's limits (docs/jobs.md): queues, jobs, retries,
retention, recurring jobs, and the job board of progress and workers.
"""

from tandemkv.limits.strong import COMMAND_SIZE_BYTES_MAX

# -- jobs (the durable job queue, docs/jobs.md) --
# Bytes of a job queue's name.
JOB_QUEUE_BYTES_MAX = 256
# Bytes of a job's unique_key (unique within its queue while the job is unfinished);
# with the longest queue name its stored key stays within LMDB_KEY_BYTES_MAX.
JOB_UNIQUE_KEY_BYTES_MAX = 128
# Bytes of a job's args, and of the result it is completed with: half a command, so an Enqueue or a
# Complete at the limit, with every other field at its own, fits in COMMAND_SIZE_BYTES_MAX.
JOB_ARGS_BYTES_MAX = COMMAND_SIZE_BYTES_MAX // 2
# Bytes of the error a failed job keeps (longer errors are refused).
JOB_ERROR_BYTES_MAX = 4 * 1024
# Jobs one claim may take.
JOB_CLAIM_JOBS_MAX = 256
# Jobs one EnqueueMany adds at most (one Raft entry; each job's args count toward the request's bytes).
JOB_ENQUEUE_MANY_JOBS_MAX = 1_000
# Settlements one Settle carries at most (one Raft entry).
JOB_SETTLE_JOBS_MAX = 256
# Highest job priority (0 runs first).
JOB_PRIORITY_MAX = 9
# Failures a job may be allowed before it is dead, and the default.
JOB_MAX_ATTEMPTS_MAX = 1_000
JOB_MAX_ATTEMPTS_DEFAULT = 20
# Longest a claimed job may run (its timeout_ms) on the lease clock.
JOB_TIMEOUT_MS_MAX = 24 * 3600 * 1000
# Backoff after a job's first failure; it doubles per failure up to the max.
JOB_BACKOFF_MIN_MS = 1_000
JOB_BACKOFF_MAX_MS = 3600 * 1000
# How long a finished job (completed, dead, cancelled) is kept, on the log clock.
JOB_RETENTION_MS = 7 * 24 * 3600 * 1000
# Finished jobs kept at most; beyond it the oldest finished go first.
JOB_RETAINED_FINISHED_MAX = 100_000
# Jobs the per-entry sweep may promote, time out or prune in one log entry.
JOB_SWEEP_PER_ENTRY_MAX = 256
# Recurring (cron) jobs at most, the bytes of a name, and of a cron expression.
JOB_CRONS_MAX = 1_000
JOB_CRON_NAME_BYTES_MAX = 64
JOB_CRON_EXPRESSION_BYTES_MAX = 256
# Bytes of a recurring job's args (small, so one list of every cron fits an answer).
JOB_CRON_ARGS_BYTES_MAX = 1024
# A queue's cluster-wide limit on its jobs claimed at once (SetQueueLimit), at most.
JOB_QUEUE_CONCURRENCY_MAX = 100_000
# Queues that have a cluster-wide concurrency limit, at most.
JOB_QUEUE_LIMITS_MAX = 1_000
# Jobs (or queues) one List (or Stats) answer carries, and records one List may look at.
JOB_LIST_MAX = 1_000
JOB_LIST_SCAN_MAX = 10_000
# Claims a job may lose (its lease ended while it ran: the worker crashed or stalled) before it is dead, and the default.
JOB_MAX_LOST_CLAIMS_MAX = 1_000
JOB_MAX_LOST_CLAIMS_DEFAULT = 10
# Bytes of the note a job's progress report carries (available plane, docs/jobs.md).
JOB_PROGRESS_NOTE_BYTES_MAX = 256
# How long a job's progress entry stays without a new report before any node removes it.
JOB_PROGRESS_STALE_MS = 3600 * 1000
# Job ids whose progress a node has yet to remove after a call through it ended their claims (removed
# off the call's path, in batches); past it the rest are left to the board's sweep.
JOB_PROGRESS_FORGETS_QUEUED_MAX = 65_536
# How long a node takes the progress table's absence from its catalogue as known before it looks again
# (a look reads the strong plane's catalogue): while absent, ended claims have no progress to remove.
JOB_BOARD_ABSENT_TABLE_RECHECK_MS = 1_000
# Bytes of a worker's id in its heartbeat.
JOB_WORKER_ID_BYTES_MAX = 128
# How long a worker stays listed after its last heartbeat; past it any node removes it.
JOB_WORKER_STALE_MS = 30 * 1000
# Least time between two sweeps of stale progress and worker entries on one node.
JOB_BOARD_SWEEP_INTERVAL_MS = 5 * 1000
# Progress or worker entries one sweep looks at (it goes on from there the next time).
JOB_BOARD_SWEEP_KEYS_MAX = 256
# Workers one Workers answer carries.
JOB_WORKERS_LIST_MAX = 1_000
