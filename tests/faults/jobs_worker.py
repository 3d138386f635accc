"""A worker process of the job fault workload, and the pool of them that
jobs_runner.py starts, kills with -9, pauses and restarts.

    python -m tests.faults.jobs_worker --endpoints A,B,C --name w1.1 --record DIR/w1-1.jsonl --concurrency 4

The process runs the SDK's worker (`client.jobs.worker`) with
jobs_workload.run_handler as its handler until SIGTERM, then stops it
gracefully. The handler records each execution in the record file before
it returns; `RecordingClient` records what the cluster answered to each
complete or fail the worker sent (ok, refused, unknown), one record per
settlement of a Settle (each fenced alone), watching the one method every
call of the client passes.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tandemkv import errors
from tandemkv.client import Client, Retry

from .jobs_workload import QUEUE, ExecutionLog, read_record, run_handler

# The workers' lease TTL unless --lease-ttl-s says otherwise (a loaded
# machine's renewals may not get through within 2 s; a long run may want more).
LEASE_TTL_S = 2.0
WORKER_RETRY = Retry(attempts_max=20, deadline_s=10.0, attempt_timeout_s=2.0, backoff_initial_s=0.05,
                     backoff_max_s=0.5)
# How often the main thread looks whether SIGTERM came.
STOP_POLL_S = 0.2
# The share of worker faults that pause a worker (SIGSTOP) instead of
# killing it, and how long past its lease TTL (so the lease ends meanwhile).
WORKER_PAUSE_SHARE = 0.3
WORKER_PAUSE_PAST_TTL_S_RANGE = (1.0, 2.5)
# Seconds a worker gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 10.0
# The calls whose answers are recorded, by the name the record uses (a
# Settle's settlements are recorded one by one, as complete or fail).
SETTLEMENTS = {"Complete": "complete", "Fail": "fail", "Settle": "settle"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.jobs_worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", required=True, type=lambda text: text.split(","))
    parser.add_argument("--name", required=True)
    parser.add_argument("--record", required=True, type=Path)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--lease-ttl-s", type=float, default=LEASE_TTL_S)
    return parser.parse_args(argv)


class RecordingClient(Client):
    """A `Client` that records the answer to every Complete and Fail, and to
    each settlement of every Settle."""

    def __init__(self, endpoints: list[str], log: ExecutionLog):
        super().__init__(endpoints, retry=WORKER_RETRY)
        self.execution_log = log

    def run(self, operation: Any, *, retry: Retry | None = None) -> Any:
        call = SETTLEMENTS.get(operation.method) if operation.service == "Jobs" else None
        if call is None:
            return super().run(operation, retry=retry)
        request = operation.request
        settled = ([(s.id, s.token, "fail" if s.failed else "complete") for s in request.settlements]
                   if call == "settle" else [(request.id, request.token, call)])
        outcomes = ["unknown"] * len(settled)
        try:
            answer = super().run(operation, retry=retry)
            outcomes = (["ok" if o.settled else "refused" for o in answer.outcomes] if call == "settle"
                        else ["ok"])
            return answer
        except errors.FailedPrecondition:
            outcomes = ["refused"] * len(settled)  # a whole Settle refused (its claim_next lease is gone)
            raise
        finally:
            for (job_id, token, kind), outcome in zip(settled, outcomes):
                self.execution_log.write({"kind": "outcome", "job": job_id, "token": token, "call": kind,
                                          "outcome": outcome})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log = ExecutionLog(args.record, args.name)
    with RecordingClient(args.endpoints, log) as client:
        worker = client.jobs.worker(QUEUE, lambda job: run_handler(log, job), concurrency=args.concurrency,
                                    lease_ttl_s=args.lease_ttl_s, name=args.name)
        worker.start()
        while not stop.wait(STOP_POLL_S):
            pass
        worker.stop(graceful=True)
    log.close()
    return 0


class WorkerPool:
    """The worker processes of a run: `count` of them, each restarted with a
    new record file after a kill."""

    def __init__(self, endpoints: list[str], directory: Path, count: int, concurrency: int, seed: int,
                 lease_ttl_s: float = LEASE_TTL_S):
        self.endpoints = endpoints
        self.lease_ttl_s = lease_ttl_s
        self.directory = directory
        self.concurrency = concurrency
        self.rng = random.Random(f"{seed}/workers")
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.starts = [0] * count
        self.kills = 0
        self.pauses = 0
        self.errors: list[str] = []
        directory.mkdir(parents=True, exist_ok=True)

    def start(self, index: int) -> None:
        self.starts[index] += 1
        name = f"w{index + 1}"
        record = self.record_path(index)
        with open(self.directory / f"{name}.log", "ab") as output:
            self.processes[index] = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.jobs_worker", "--endpoints", ",".join(self.endpoints),
                 "--name", f"{name}.{self.starts[index]}", "--record", str(record),
                 "--concurrency", str(self.concurrency), "--lease-ttl-s", str(self.lease_ttl_s)],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def start_all(self) -> None:
        for index in range(len(self.processes)):
            self.start(index)

    def record_path(self, index: int) -> Path:
        return self.directory / f"w{index + 1}-{self.starts[index]}.jsonl"

    def pick(self) -> int:
        """A worker to fault: one caught mid-job if there is one (its record
        shows an execution it has not yet heard the answer for), else any."""
        busy = []
        for index in range(len(self.processes)):
            executions, outcomes = read_record(self.record_path(index))
            if {(e["job"], e["token"]) for e in executions} - {(o["job"], o["token"]) for o in outcomes}:
                busy.append(index)
        return self.rng.choice(busy) if busy else self.rng.randrange(len(self.processes))

    def kill_one(self) -> None:
        """kill -9 a worker, and start it again."""
        index = self.pick()
        process = self.processes[index]
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
            self.kills += 1
        self.start(index)

    def pause_one(self, stop: threading.Event) -> None:
        """SIGSTOP a worker past its lease's TTL, then SIGCONT: its claims
        are taken by others meanwhile, and its completes come late."""
        process = self.processes[self.pick()]
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGSTOP)
        self.pauses += 1
        try:
            stop.wait(self.lease_ttl_s + self.rng.uniform(*WORKER_PAUSE_PAST_TTL_S_RANGE))
        finally:
            process.send_signal(signal.SIGCONT)

    def killer(self, stop: threading.Event, every_s_range: tuple[float, float]) -> None:
        """Until `stop`: every few seconds a worker killed with -9 (and
        started again), or, one time in WORKER_PAUSE_SHARE, paused."""
        while not stop.wait(self.rng.uniform(*every_s_range)):
            if self.rng.random() < WORKER_PAUSE_SHARE:
                self.pause_one(stop)
            else:
                self.kill_one()

    def kill_all(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
                self.kills += 1

    def stop_all(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL what is still alive."""
        live = [p for p in self.processes if p is not None and p.poll() is None]
        for process in live:
            process.terminate()
        for process in live:
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.errors.append(f"worker {process.pid} did not stop within {STOP_TIMEOUT_S} s of SIGTERM")
                process.kill()
                process.wait()
        for index, process in enumerate(self.processes):
            if process is not None and process.returncode not in (0, -signal.SIGKILL, -signal.SIGTERM):
                self.errors.append(f"worker w{index + 1} exited {process.returncode} "
                                   f"(log {self.directory / f'w{index + 1}.log'})")


if __name__ == "__main__":
    sys.exit(main())
