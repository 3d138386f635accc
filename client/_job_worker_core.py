"""The job worker's policy, shared by `Worker` (threads, `_job_worker`)
and `AsyncWorker` (tasks, `_job_worker_async`): when to claim and how
many, when to renew the worker's lease, when a running job has timed out,
what a handler's return or exception becomes, and how a stop ends. No
channel, thread, clock or event loop here: the shells pass the time in
(`now_s`, monotonic seconds) and do what the core's actions say.

The worker holds one lease. Every job it claims is attached to it, so a
worker that dies (kill -9, a paused host) loses its jobs to the rest of
the cluster when the lease expires, and one that stops releases them at
once by revoking it. Rules the core keeps:

- A claim asks for at most the free slots (`concurrency` minus the jobs
  whose handlers still run and those asked for by claims in flight) and
  the rate limit's whole tokens: a worker never holds a job it is not
  running (no prefetch hoarding), unless asked to claim ahead: with
  `prefetch` P it holds up to P jobs more, waiting for a slot (bounded
  by WORKER_PREFETCH_JOBS_MAX; their claim, and their timeout, run from
  the claim).
- A settlement carries the claim of the next jobs when a slot is free
  (one request, one Raft entry), so a busy slot waits for one commit per
  job; outcomes that finish while settlements are in flight go together in
  the next (`_job_settlements`); the loop's own claims fill the slots at
  the start and after an empty queue. An empty queue is watched by stale reads of its counts
  (no Raft write), and claimed from once they show a job.
- A claim, a renewal and a settlement (a Settle of one or more jobs) are
  each one operation with a request id; one whose outcome is unknown is sent again
  as the same request (the cluster applies it once), so a claim lost in
  flight cannot strand jobs under this worker's live lease.
- A settlement refused (the job's own outcome says so, or the whole Settle
  is refused because its claim's lease is gone) means the claim ended (the
  lease expired, the job timed out or was cancelled): it is logged and
  dropped, never retried and never counted as done.
- A graceful stop claims nothing more, lets running handlers finish within
  `grace_s`, then revokes the lease: jobs still running are available to
  other workers at once (their attempt counts, not as a failure).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
import socket

from tandemkv import limits
from tandemkv.client._jobs_ops import Job
from tandemkv.client._operations import Operation
from tandemkv.client._retry import Retry

log = logging.getLogger("tandemkv.client.jobs")

# Handlers one worker runs at once, at most (each claim is attached to the
# worker's one lease, which holds at most LEASE_ATTACHMENTS_MAX items).
WORKER_CONCURRENCY_MAX = 1_000
assert WORKER_CONCURRENCY_MAX <= limits.LEASE_ATTACHMENTS_MAX
# Jobs a worker may hold beyond `concurrency`, claimed ahead so a slot that
# frees starts its next job at once while the settlement (and its claim) is
# in flight; 0 by default: a worker holds no job it is not running.
WORKER_PREFETCH_JOBS_MAX = 256
# The worker's lease TTL by default: a dead worker's jobs return this long after its last renewal.
WORKER_LEASE_TTL_S_DEFAULT = 10.0
# How long a graceful stop waits for running handlers by default, and at most.
WORKER_GRACE_S_DEFAULT = 30.0
WORKER_GRACE_S_MAX = 3600.0
# The lease is renewed every TTL / KEEPALIVE_PER_TTL; after a failed renewal the next try comes this soon.
KEEPALIVE_PER_TTL = 3
KEEPALIVE_RETRY_S = 0.2
# After a claim finds fewer jobs than it asked for, the next one waits this long, doubling per empty claim.
IDLE_POLL_S_MIN = 0.02
IDLE_POLL_S_MAX = 0.5
# While its queue is empty the worker reads the queue's counts (a stale read: no Raft write) this
# often, doubling up to the max, and claims as soon as they show a job available: new jobs are found
# within IDLE_PEEK_S_MAX without a claim (a Raft entry) every few milliseconds.
IDLE_PEEK_S_MIN = 0.01
IDLE_PEEK_S_MAX = 0.05
# After a claim or settlement that failed (cluster unreachable), the next try comes this soon.
CALL_RETRY_S = 0.5
# A worker's heartbeat (available plane, listed by `client.jobs.workers`) comes this often: six beats
# a JOB_WORKER_STALE_MS, so a live worker stays listed through a few lost beats.
WORKER_BEAT_S = limits.JOB_WORKER_STALE_MS / 1000 / 6
# The longest the worker's loop sleeps between looking at its state.
LOOP_WAIT_S_MAX = 1.0
# The rate limit's bucket holds this many seconds of tokens (at least one token).
RATE_BURST_S = 1.0


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    """A worker's bounds, checked here so both faces refuse the same input."""

    queue: bytes
    concurrency: int = 8
    lease_ttl_s: float = WORKER_LEASE_TTL_S_DEFAULT
    rate_limit: float | None = None  # jobs per second, per worker; None: unlimited
    grace_s: float = WORKER_GRACE_S_DEFAULT
    name: str = "worker"  # its id in heartbeats (the faces make it host:pid:n)
    prefetch: int = 0  # jobs held beyond `concurrency`, claimed ahead of free slots

    @property
    def capacity(self) -> int:
        """Jobs the worker holds at most: running, or claimed ahead and waiting for a slot."""
        return self.concurrency + self.prefetch

    def __post_init__(self) -> None:
        if not 1 <= len(self.name.encode()) <= limits.JOB_WORKER_ID_BYTES_MAX:
            raise ValueError(f"name must be 1..JOB_WORKER_ID_BYTES_MAX={limits.JOB_WORKER_ID_BYTES_MAX} bytes")
        if not 1 <= len(self.queue) <= limits.JOB_QUEUE_BYTES_MAX:
            raise ValueError(f"queue must be 1..JOB_QUEUE_BYTES_MAX={limits.JOB_QUEUE_BYTES_MAX} bytes")
        if not 1 <= self.concurrency <= WORKER_CONCURRENCY_MAX:
            raise ValueError(f"concurrency must be 1..WORKER_CONCURRENCY_MAX={WORKER_CONCURRENCY_MAX}, "
                             f"got {self.concurrency}")
        if not 0 <= self.prefetch <= WORKER_PREFETCH_JOBS_MAX:
            raise ValueError(f"prefetch must be 0..WORKER_PREFETCH_JOBS_MAX={WORKER_PREFETCH_JOBS_MAX}, "
                             f"got {self.prefetch}")
        if self.capacity > WORKER_CONCURRENCY_MAX:
            raise ValueError(f"concurrency + prefetch must be at most WORKER_CONCURRENCY_MAX="
                             f"{WORKER_CONCURRENCY_MAX} (the jobs one lease holds), got {self.capacity}")
        ttl_min_s, ttl_max_s = limits.LEASE_TTL_MS_MIN / 1000, limits.LEASE_TTL_MS_MAX / 1000
        if not ttl_min_s <= self.lease_ttl_s <= ttl_max_s:
            raise ValueError(f"lease_ttl_s must be {ttl_min_s:g}..{ttl_max_s:g} s (LEASE_TTL_MS_MIN.."
                             f"LEASE_TTL_MS_MAX), got {self.lease_ttl_s}")
        if self.rate_limit is not None and not 0 < self.rate_limit < math.inf:
            raise ValueError(f"rate_limit must be a number of jobs per second above 0, got {self.rate_limit}")
        if not 0 <= self.grace_s <= WORKER_GRACE_S_MAX:
            raise ValueError(f"grace_s must be 0..WORKER_GRACE_S_MAX={WORKER_GRACE_S_MAX:g} s, got {self.grace_s}")


class TokenBucket:
    """`rate_per_s` tokens a second, up to `capacity`; starts full."""

    def __init__(self, rate_per_s: float, capacity: float, now_s: float):
        assert rate_per_s > 0 and capacity >= 1
        self.rate_per_s, self.capacity = rate_per_s, capacity
        self.tokens, self.at_s = capacity, now_s

    def _refill(self, now_s: float) -> None:
        if now_s > self.at_s:
            self.tokens = min(self.capacity, self.tokens + (now_s - self.at_s) * self.rate_per_s)
            self.at_s = now_s

    def whole(self, now_s: float) -> int:
        self._refill(now_s)
        return max(0, math.floor(self.tokens + 1e-9))

    def take(self, count: int, now_s: float) -> None:
        """Spends `count` tokens (a claim reserves them when it is sent; one
        that spends more than there are leaves a debt that delays the next)."""
        self._refill(now_s)
        self.tokens -= count

    def give_back(self, count: int, now_s: float) -> None:
        """Returns `count` tokens taken for jobs a claim did not bring."""
        self._refill(now_s)
        self.tokens = min(self.capacity, self.tokens + count)

    def wait_s(self, now_s: float) -> float:
        """Seconds until one whole token is there."""
        self._refill(now_s)
        return max(0.0, (1.0 - self.tokens) / self.rate_per_s)


_worker_numbers = itertools.count(1)


def worker_name() -> str:
    """A worker's id in heartbeats: host:pid:n, unique on the cluster."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{next(_worker_numbers)}"


# -- what the core asks of its shell ------------------------------------------
@dataclasses.dataclass(frozen=True)
class Wait:
    """Sleep this long, or until a handler returns or a stop is asked."""

    seconds: float


@dataclasses.dataclass(frozen=True)
class Send:
    """Run `operation` with `retry` and report back through `on_done`:
    "grant", "renew", "claim", "settle", "peek", "beat" or "release"."""

    operation: Operation
    retry: Retry
    purpose: str

    @property
    def asked(self) -> int:
        """Jobs it claims: a claim's limit, a settlement's claim_next limit (else 0)."""
        request = self.operation.request
        if self.purpose == "claim":
            return request.limit
        return request.claim_next.limit if self.purpose == "settle" and request.HasField("claim_next") else 0


@dataclasses.dataclass(frozen=True)
class TimedOut:
    """`job` ran past its timeout: stop its handler if the shell can (a task
    is cancelled; a thread runs on, its slot taken, its outcome dropped),
    then send `fail`, the Settle carrying its failure (None: Settles are in
    flight, and the failure goes with the next)."""

    job: Job
    fail: Send | None


@dataclasses.dataclass(frozen=True)
class Done:
    """The worker has stopped; its lease is released (or lost)."""


@dataclasses.dataclass
class Running:
    job: Job
    deadline_s: float  # math.inf: no timeout
    abandoned: str = ""  # why its outcome no longer counts (timed out, released)


@dataclasses.dataclass
class WorkerStats:
    """What a worker did: jobs `claimed`, `completed`, `failed` (a handler's
    error, or its timeout), `lost` (a settlement refused: the claim had
    ended), `released` (still running when a stop revoked the lease)."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    released: int = 0
    running: int = 0


def encode_result(value: object) -> bytes:
    """A handler's return as a job result; TypeError/ValueError say what to return instead."""
    if value is None:
        return b""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"the handler returned {type(value).__name__}; return bytes, str or None")
    if len(value) > limits.JOB_ARGS_BYTES_MAX:
        raise ValueError(f"the handler's result is {len(value)} bytes, over JOB_ARGS_BYTES_MAX="
                         f"{limits.JOB_ARGS_BYTES_MAX}; store it elsewhere and return a reference")
    return bytes(value)


def error_text(error: BaseException | str, tail: bool = False) -> str:
    """An error as a job's last_error: within JOB_ERROR_BYTES_MAX bytes
    (its head, or its tail when `tail`), cut at a character boundary."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    data = text.encode("utf-8", "replace")
    room = limits.JOB_ERROR_BYTES_MAX - 4  # the ellipsis' bytes
    if len(data) <= limits.JOB_ERROR_BYTES_MAX:
        return text
    if tail:
        return "…" + data[-room:].decode("utf-8", "ignore")
    return data[:room].decode("utf-8", "ignore") + "…"
