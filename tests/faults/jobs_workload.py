"""The job workload of jobs_runner.py: what each job is meant to do, the
producers that enqueue them through the SDK while the nemesis works, and
the record a worker keeps of every execution (jobs_worker.py writes it;
jobs_check.py reads it back through `read_records`).

A job's args are JSON `{"seq": n, "fail": k}`: its handler works a
moment (JOB_WORK_S_RANGE), then fails the job while it shows fewer than k
failures, or completes it with the result `<worker>:<token>`. Most jobs
never fail; some fail once and then complete; some fail MAX_ATTEMPTS
times and end dead.

Records are JSON lines, one file per worker process, each line written and
fsync'd before the handler acts on it (an `execution` line before the
complete or fail is sent; an `outcome` line after it is answered), so a
worker killed with -9 leaves every execution it acted on; a torn last line
is skipped.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from tandemkv import errors
from tandemkv.client import Retry

from .tracking import TrackingClient

QUEUE = "faults"
# Every job's max_attempts: a job meant to fail this often ends dead.
MAX_ATTEMPTS = 3
# The share of jobs meant to fail once (then complete), drawn per job; and every DEAD_EVERY-th job is
# meant to fail MAX_ATTEMPTS times (dead): a fixed share, so every run, whatever its seed, has dead jobs
# to check (a 2% draw left 200 jobs without one in about one run of fifty).
FAIL_ONCE_SHARE = 0.06
DEAD_EVERY = 40
# One enqueue: attempts and the budget for all of them, in seconds.
ENQUEUE_RETRY = Retry(attempts_max=6, deadline_s=5.0, attempt_timeout_s=2.0, backoff_initial_s=0.05,
                      backoff_max_s=0.5)
# Times an enqueue of unknown outcome is sent again with its request id.
ENQUEUE_FINISH_ATTEMPTS_MAX = 5
PLANNED_ERROR = "planned failure"
# Seconds one execution works before its handler returns.
JOB_WORK_S_RANGE = (0.1, 0.5)


def plan(seq: int, seed: int) -> int:
    """How many times job `seq` is meant to fail (seeded per job)."""
    if seq % DEAD_EVERY == DEAD_EVERY // 2:
        return MAX_ATTEMPTS
    return 1 if random.Random(f"{seed}/job/{seq}").random() < FAIL_ONCE_SHARE else 0


def args_of(seq: int, planned_failures: int) -> bytes:
    return json.dumps({"seq": seq, "fail": planned_failures}).encode()


def parse_job_args(args: bytes) -> tuple[int, int]:
    """(seq, planned failures) of a job's args."""
    decoded = json.loads(args)
    return decoded["seq"], decoded["fail"]


class Enqueues:
    """Every enqueue tried, with its outcome; thread-safe."""

    def __init__(self, started_at: float):
        self.started_at = started_at
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def now(self) -> float:
        return round(time.monotonic() - self.started_at, 3)

    def add(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.records.append(record)

    def acknowledged(self) -> int:
        with self.lock:
            return sum(1 for r in self.records if r["outcome"] == "ok")


def producer_client(endpoints: list[str]) -> TrackingClient:
    """The client the producers share, as an application's threads would
    (their concurrent enqueues travel in batched calls)."""
    return TrackingClient(endpoints, ENQUEUE_RETRY)


def producer(enqueues: Enqueues, client: TrackingClient, seqs: Iterator[int], seed: int, gap_s: float,
             stop: threading.Event) -> None:
    """Enqueues the jobs numbered by `seqs` (shared by the producers) until
    it runs out or `stop`, `gap_s` apart."""
    for seq in seqs:
        if stop.is_set():
            return
        invoked = enqueues.now()
        outcome, job_id = enqueue_one(client, enqueues, args_of(seq, plan(seq, seed)))
        enqueues.add({"seq": seq, "outcome": outcome, "id": job_id, "invoke_s": invoked,
                      "complete_s": enqueues.now()})
        if gap_s:
            stop.wait(gap_s)


def enqueue_one(client: TrackingClient, enqueues: Enqueues, args: bytes) -> tuple[str, int]:
    """One enqueue; an unknown outcome is retried with its request id, so
    it ends acknowledged, failed (never sent) or unknown."""
    request_id = None
    maybe_sent = False
    for _ in range(ENQUEUE_FINISH_ATTEMPTS_MAX):
        client.begin_call()
        try:
            return "ok", client.jobs.enqueue(QUEUE, args, max_attempts=MAX_ATTEMPTS, request_id=request_id)
        except errors.OutcomeUnknown as error:
            request_id = error.request_id or request_id
            maybe_sent = True
            if request_id is None:
                return "unknown", 0
        except errors.Unavailable:
            maybe_sent = maybe_sent or client.write_maybe_sent()
            if not maybe_sent:
                return "fail", 0
        except errors.TandemKVError as error:
            with enqueues.lock:
                enqueues.errors.append(f"enqueue refused: {type(error).__name__}: {error}")
            return "unknown" if maybe_sent else "fail", 0
    return "unknown", 0


# -- the workers' records ---------------------------------------------------

class PlannedFailure(Exception):
    """What a handler raises when its job is meant to fail this time."""


class ExecutionLog:
    """One worker process's record file: JSON lines, each fsync'd."""

    def __init__(self, path: Path, worker: str):
        self.worker = worker
        self.lock = threading.Lock()
        self.file = open(path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"worker": self.worker, **record}) + "\n"
        with self.lock:
            self.file.write(line)
            self.file.flush()
            os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def run_handler(log: ExecutionLog, job: Any) -> bytes:
    """The handler: records the execution, then fails the job while it is
    meant to (raises PlannedFailure) or returns its result."""
    _, planned = parse_job_args(job.args)
    decision = "fail" if job.failures < planned else "complete"
    log.write({"kind": "execution", "job": job.id, "token": job.token, "attempt": job.attempt,
               "failures": job.failures, "decision": decision, "at": time.time()})
    # The job's work: long enough that a worker killed or paused is often
    # caught between running a job and completing it.
    time.sleep(random.Random(f"{job.id}/{job.token}").uniform(*JOB_WORK_S_RANGE))
    if decision == "fail":
        raise PlannedFailure(PLANNED_ERROR)
    return f"{log.worker}:{job.token}".encode()


def read_records(directory: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(executions, outcomes) from every `*.jsonl` record file in `directory`."""
    executions, outcomes = [], []
    for path in sorted(directory.glob("*.jsonl")):
        more_executions, more_outcomes = read_record(path)
        executions += more_executions
        outcomes += more_outcomes
    return executions, outcomes


def read_record(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(executions, outcomes) of one record file; none if it is not there yet."""
    executions, outcomes = [], []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return executions, outcomes
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line a kill tore (or one being written)
        (executions if record.pop("kind") == "execution" else outcomes).append(record)
    return executions, outcomes
