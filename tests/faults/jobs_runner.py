"""One job-queue fault experiment: a 3-node cluster, producers enqueueing
`--jobs` jobs through the SDK, worker processes (jobs_worker.py) running
them and killed with -9 at random, the seeded nemesis of the KV runner
(kills, pauses, partitions of the nodes); then heal, stop every worker,
enqueue a last batch, stop every node at once and start them again, let
restarted workers finish the queue, read every job back and check the
history (jobs_check.py); `summary.json` and `history.json` in `--out`.

    unshare --net -- python -m tests.faults.jobs_runner --jobs 1000 --duration 30 --seed 7 --out /tmp/jobs

It re-starts itself in a network namespace of its own when it can, as
tests.faults.runner does (partitions need one); without, it runs the kill
and pause faults only and says so. `--check FILE` checks a saved history
again. Exit status: 0 every check passed; 1 a check failed; 2 the
experiment could not run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tandemkv.client import Client, Retry

from .experiment_main import run_experiment_main
from .jobs_check import FINISHED, check_jobs
from .jobs_worker import LEASE_TTL_S, WorkerPool
from .jobs_workload import QUEUE, Enqueues, parse_job_args, producer, producer_client, read_records
from .nemesis import PROCESS_KINDS, Nemesis, expand_kinds
from .nodes import NodeSet
from .pubsub_runner import wait_until
from .runner import open_network

STARTUP_LEADER_TIMEOUT_S = 60.0
SETTLE_LEADER_TIMEOUT_S = 30.0
# Producer threads, sharing one client, and the share of the faults'
# duration their paced enqueues would take on an idle cluster.
PRODUCERS = 8
PACED_SHARE = 0.6
# Jobs enqueued after the workers are stopped, just before the full restart,
# so the restart has unfinished jobs to carry (and the faults' jobs may all
# be done by then).
RESTART_BATCH = 40
# After the faults: how long the producers get to finish their jobs, plus a
# second per this many jobs (a long run's enqueues may lag far behind).
PRODUCERS_FINISH_S_MAX = 60.0
PRODUCERS_FINISH_JOBS_PER_S_MIN = 5
# After the restart: how long the workers get to finish the queue, plus a
# second per this many jobs (a long run's queue may still be deep).
DRAIN_S_MIN = 30.0
DRAIN_JOBS_PER_S_MIN = 10
# Seconds between two worker faults (drawn from the seed), unless
# --worker-fault-every-s says otherwise: a worker process needs seconds to
# start on a loaded machine, so a long run spaces them more.
WORKER_FAULT_EVERY_S = (1.5, 4.0)
JOIN_TIMEOUT_S = 15.0
# Reads after the run: a patient retry (the cluster has just restarted).
READ_RETRY = Retry(attempts_max=40, deadline_s=30.0, attempt_timeout_s=5.0, backoff_max_s=0.5)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.jobs_runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs in all (the last %d after the faults)"
                        % RESTART_BATCH)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of workload under faults")
    parser.add_argument("--workers", type=int, default=3, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs each worker runs at once")
    parser.add_argument("--lease-ttl-s", type=float, default=LEASE_TTL_S, help="the workers' lease TTL")
    parser.add_argument("--worker-fault-every-s", type=lambda t: tuple(float(x) for x in t.split(",")),
                        default=WORKER_FAULT_EVERY_S, help="MIN,MAX seconds between two worker faults")
    parser.add_argument("--seed", type=int, default=None, help="seed of the schedule (default: random, printed)")
    parser.add_argument("--nemesis", default="all", help="kinds or groups, as tests.faults.runner takes them")
    parser.add_argument("--out", type=Path, default=Path("faults-jobs-out"), help="logs and results")
    parser.add_argument("--check", type=Path, default=None, help="re-check a saved history file and exit")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    if args.jobs <= RESTART_BATCH:
        parser.error(f"--jobs must be above {RESTART_BATCH} (the restart's batch)")
    return args


class JobsExperiment:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        requested = [] if args.nemesis == "none" else expand_kinds(args.nemesis.split(","))
        isolated, self.network, self.network_note = open_network(requested, 3)
        self.kinds = [k for k in requested if self.network is not None or k in PROCESS_KINDS]
        self.nodes = NodeSet(args.out / "cluster", isolated=isolated, separate_groups=self.network is not None)
        self.started_at = time.monotonic()
        self.enqueues = Enqueues(self.started_at)
        self.workers = WorkerPool(self.nodes.endpoints, args.out / "workers", args.workers, args.concurrency,
                                  args.seed, args.lease_ttl_s)
        self.errors: list[str] = []
        self.nemesis: Nemesis | None = None
        self.phases: dict[str, float] = {}
        self.restart: dict[str, Any] = {}
        self.final_jobs: list[dict[str, Any]] = []

    def _phase(self, name: str) -> None:
        """Notes when a phase began, and prints it (a run cut off by its
        caller's timeout still shows how far it got)."""
        self.phases[name] = self.enqueues.now()
        print(f"{self.phases[name]:7.1f} s  {name}", flush=True)

    def run(self) -> dict[str, Any]:
        try:
            self.nodes.start_all()
            self.nodes.wait_for_leader(STARTUP_LEADER_TIMEOUT_S)
            self.workers.start_all()
            self._phase("faults_from_s")
            seqs = iter(range(self.args.jobs - RESTART_BATCH))
            self._under_faults(seqs)
            self._phase("healed_at_s")
            self.nodes.wait_for_leader(SETTLE_LEADER_TIMEOUT_S)
            self._full_restart()
            self._phase("restarted_at_s")
            self._drain()
            self._phase("drained_at_s")
            self.workers.stop_all()
            self.errors += self.workers.errors
            self.final_jobs = self._read_jobs()
            self._phase("read_back_s")
        finally:
            self.workers.kill_all()
            self.nodes.stop_all()
        return self._summarize()

    def _under_faults(self, seqs) -> None:
        stop, stop_producers = threading.Event(), threading.Event()
        endpoints = self.nodes.endpoints
        shared = SharedNumbers(seqs)
        # Paced so the jobs spread over the faults' first part (each producer
        # also waits for its enqueue, and faults stall them for seconds).
        gap_s = PACED_SHARE * self.args.duration * PRODUCERS / max(1, self.args.jobs - RESTART_BATCH)
        client = producer_client(endpoints)
        producers = [threading.Thread(target=producer, name=f"producer {k}", args=(
            self.enqueues, client, shared, self.args.seed, gap_s, stop_producers), daemon=True)
            for k in range(PRODUCERS)]
        helpers = [threading.Thread(target=self.workers.killer, args=(stop, self.args.worker_fault_every_s),
                                    name="worker killer")]
        if self.kinds:
            self.nemesis = Nemesis(self.nodes, self.network, self.kinds, self.args.seed, self.started_at)
            deadline = time.monotonic() + self.args.duration
            helpers.append(threading.Thread(target=self.nemesis.run, args=(stop, deadline), name="nemesis"))
        for thread in producers + helpers:
            thread.start()
        try:
            stop.wait(self.args.duration)
            self._end_faults(stop, helpers)
            finish_s = PRODUCERS_FINISH_S_MAX + self.args.jobs / PRODUCERS_FINISH_JOBS_PER_S_MIN
            deadline = time.monotonic() + finish_s
            for thread in producers:
                thread.join(max(0.0, deadline - time.monotonic()))
            if any(thread.is_alive() for thread in producers):
                self.errors.append(f"producers did not finish within {finish_s:g} s of the heal")
        finally:
            self._end_faults(stop, helpers)
            stop_producers.set()  # also when interrupted: no producer outlives the run
            for thread in producers:
                thread.join(JOIN_TIMEOUT_S)
            client.close()
            self.errors += self.enqueues.errors

    def _end_faults(self, stop: threading.Event, helpers: list[threading.Thread]) -> None:
        """Stops the nemesis and the worker faults and heals; once."""
        if stop.is_set():
            return
        stop.set()
        for thread in helpers:
            thread.join(JOIN_TIMEOUT_S)
        if self.nemesis is not None:
            self.nemesis.heal()
            self.errors += self.nemesis.errors

    def _full_restart(self) -> None:
        """Workers killed, a last batch enqueued, every node killed at once
        and started again; the unfinished jobs are noted first."""
        self._phase("restart_from_s")
        self.workers.kill_all()
        last = iter(range(self.args.jobs - RESTART_BATCH, self.args.jobs))
        with producer_client(self.nodes.endpoints) as client:
            shared = SharedNumbers(last)
            batch = [threading.Thread(target=producer, args=(self.enqueues, client, shared, self.args.seed, 0.0,
                                                             threading.Event()), daemon=True)
                     for _ in range(PRODUCERS)]
            for thread in batch:
                thread.start()
            for thread in batch:
                thread.join(PRODUCERS_FINISH_S_MAX)
        unfinished = [job["id"] for job in self._read_jobs() if job["state"] not in FINISHED]
        self.restart = {"unfinished_ids": unfinished}
        self._phase("nodes_stopped_s")
        self.nodes.stop_all()
        self.nodes.start_all()
        self.nodes.wait_for_leader(STARTUP_LEADER_TIMEOUT_S)  # before the workers' start-up competes for the CPU
        self.workers.start_all()

    def _drain(self) -> None:
        timeout_s = DRAIN_S_MIN + self.args.jobs / DRAIN_JOBS_PER_S_MIN
        with Client(self.nodes.endpoints, retry=READ_RETRY) as client:
            def finished() -> bool:
                stats = client.jobs.stats(QUEUE)
                return bool(stats) and stats[0].available + stats[0].scheduled + stats[0].claimed + \
                    stats[0].retryable == 0
            if not wait_until(finished, timeout_s, poll_s=0.5):
                self.errors.append(f"the queue was not finished {timeout_s:g} s after the restart: "
                                   f"{client.jobs.stats(QUEUE)}")

    def _read_jobs(self) -> list[dict[str, Any]]:
        jobs, after = [], 0
        with Client(self.nodes.endpoints, retry=READ_RETRY) as client:
            while True:
                page = client.jobs.list(QUEUE, after_id=after)
                for job in page.jobs:
                    seq, planned = parse_job_args(job.args)
                    jobs.append({"id": job.id, "seq": seq, "planned_failures": planned, "state": job.state,
                                 "attempt": job.attempt, "failures": job.failures,
                                 "max_attempts": job.max_attempts, "token": job.token,
                                 "result": job.result.decode(errors="replace"), "last_error": job.last_error})
                if not page.more:
                    return jobs
                after = page.next_after_id

    def _summarize(self) -> dict[str, Any]:
        self.errors += [f"node {name} exited by itself with code {code}" for name, code in self.nodes.crashed()]
        executions, outcomes = read_records(self.args.out / "workers")
        with self.enqueues.lock:
            enqueues = list(self.enqueues.records)
        history = {"enqueues": enqueues, "executions": executions, "outcomes": outcomes,
                   "final_jobs": self.final_jobs, "restart": self.restart,
                   "faults": self.nemesis.summary() if self.nemesis else []}
        path = self.args.out / "history.json"
        path.write_text(json.dumps(history))
        verdict = check_jobs(history)
        return {
            "seed": self.args.seed, "jobs": self.args.jobs, "duration_s": self.args.duration,
            "wall_s": round(time.monotonic() - self.started_at, 1), "network": self.network_note,
            "nemesis_kinds": self.kinds, "faults_by_kind": self.nemesis.counts() if self.nemesis else {},
            "worker_kills": self.workers.kills, "worker_pauses": self.workers.pauses,
            "worker_starts": sum(self.workers.starts),
            "phases": self.phases, "node_starts": {n.name: n.starts for n in self.nodes.nodes},
            "check": verdict.as_dict(), "errors": self.errors, "history_file": str(path),
            "ok": verdict.ok and not self.errors and bool(self.final_jobs), "replay": replay_command(self.args),
        }


class SharedNumbers:
    """An iterator of numbers several producer threads take from."""

    def __init__(self, numbers):
        self.numbers = iter(numbers)
        self.lock = threading.Lock()

    def __iter__(self):
        return self

    def __next__(self) -> int:
        with self.lock:
            return next(self.numbers)


def replay_command(args: argparse.Namespace) -> str:
    return (f"unshare --net -- python -m tests.faults.jobs_runner --seed {args.seed} --jobs {args.jobs} "
            f"--duration {args.duration:g} --workers {args.workers} --concurrency {args.concurrency} "
            f"--worker-fault-every-s {','.join(f'{s:g}' for s in args.worker_fault_every_s)} "
            f"--lease-ttl-s {args.lease_ttl_s:g} "
            f"--nemesis {args.nemesis} --out {args.out}")


def recheck(path: Path) -> tuple[dict[str, Any], bool]:
    """Checks a saved history.json again: the verdict, and whether it passed."""
    verdict = check_jobs(json.loads(path.read_text()))
    return verdict.as_dict(), verdict.ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_experiment_main(
        args, argv, module="tests.faults.jobs_runner", experiment=JobsExperiment, replay=replay_command(args),
        banner=f"jobs fault run: seed {args.seed}, {args.jobs} jobs, {args.duration:g} s, out {args.out}",
        recheck=recheck)


if __name__ == "__main__":
    sys.exit(main())
