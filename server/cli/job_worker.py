"""`tandemkv jobs worker QUEUE [--concurrency N] [--rate R] [--prefetch P] -- COMMAND ARGS...`:
a job worker whose handler is a command, run once per job through the
SDK's `client.jobs.worker` (client/_job_worker.py).

Each job runs `COMMAND ARGS...` with the job's args on stdin and
TANDEMKV_JOB_ID, TANDEMKV_JOB_ATTEMPT, TANDEMKV_JOB_QUEUE and
TANDEMKV_JOB_TOKEN in its environment. Exit 0 completes the job with what
the command wrote on stdout (at most JOB_ARGS_BYTES_MAX bytes; more fails
the job saying so); any other exit fails it with the exit status and the
tail of stderr (within JOB_ERROR_BYTES_MAX). A job's `timeout` kills its
command (the job is failed as timed out).

Stopping: SIGTERM or SIGINT (Ctrl-C) stops claiming and lets running
commands finish within `--grace` seconds; then the worker's lease is
revoked (what still runs is available to other workers at once) and the
commands left are terminated. A second signal releases at once. Commands
run in their own session, so a Ctrl-C at the terminal reaches the worker
only, and the grace is the worker's to give.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

from tandemkv import limits
from tandemkv.client import Client
from tandemkv.client._job_worker_core import WORKER_GRACE_S_DEFAULT, WORKER_LEASE_TTL_S_DEFAULT
from tandemkv.client._jobs_ops import Job
from tandemkv.server.cli.client import EXIT_OK, Reply, _leaf
from tandemkv.server.process.stop_signals import StopSignals

JOB_ID_ENV, JOB_ATTEMPT_ENV = "TANDEMKV_JOB_ID", "TANDEMKV_JOB_ATTEMPT"
JOB_QUEUE_ENV, JOB_TOKEN_ENV = "TANDEMKV_JOB_QUEUE", "TANDEMKV_JOB_TOKEN"
# How often the main thread looks at the worker while it runs (a signal wakes it at once).
WORKER_CHECK_S = 0.5
# After SIGTERM, a command left running at the end gets this long before SIGKILL.
COMMAND_KILL_WAIT_S = 5.0
# The bytes of stderr a failed job keeps: its tail, with room for the exit status.
STDERR_TAIL_BYTES_MAX = limits.JOB_ERROR_BYTES_MAX - 256


def add_parser(jobs: object) -> None:
    """`jobs worker` under `tandemkv jobs` (server/cli/jobs.py)."""
    worker = _leaf(jobs, "worker", cmd_worker, "run COMMAND for each job of QUEUE until Ctrl-C or SIGTERM",
                   ("queue",))
    worker.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="commands running at once (default 1; at most WORKER_CONCURRENCY_MAX)")
    worker.add_argument("--rate", type=float, default=None, metavar="JOBS_PER_S",
                        help="start at most this many jobs a second (default: no limit)")
    worker.add_argument("--lease-ttl", type=float, default=WORKER_LEASE_TTL_S_DEFAULT, metavar="S",
                        help="if this worker dies, its jobs return to the queue this long after "
                             f"(default {WORKER_LEASE_TTL_S_DEFAULT:g})")
    worker.add_argument("--grace", type=float, default=WORKER_GRACE_S_DEFAULT, metavar="S",
                        help=f"on stop, how long running commands may finish (default {WORKER_GRACE_S_DEFAULT:g})")
    worker.add_argument("--prefetch", type=int, default=0, metavar="P",
                        help="jobs claimed ahead of free slots, each waiting for one (default 0: a job is "
                             "claimed only when a slot is free; at most WORKER_PREFETCH_JOBS_MAX)")
    worker.add_argument("--name", default=None, help="this worker's id in `jobs workers` (default host:pid:n)")
    worker.set_defaults(argv=[])  # the words after "--": see cli.coordination.split_command
    worker.usage = ("tandemkv jobs worker QUEUE [--concurrency N] [--rate R] [--lease-ttl S] [--grace S] "
                    "[--prefetch P] [--endpoints ...] -- COMMAND ARGS...")


class CommandFailed(Exception):
    """The command exited non-zero (or was killed); the message says how,
    with the tail of its stderr."""


class CommandHandler:
    """The worker's handler: runs the command for a job, in its own session."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self._children: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def __call__(self, job: Job) -> bytes:
        env = {**os.environ, JOB_ID_ENV: str(job.id), JOB_ATTEMPT_ENV: str(job.attempt),
               JOB_QUEUE_ENV: job.queue.decode("utf-8", "replace"), JOB_TOKEN_ENV: str(job.token)}
        with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout, \
                tempfile.TemporaryFile() as stderr:
            stdin.write(job.args)
            stdin.seek(0)
            child = subprocess.Popen(self.argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
                                     start_new_session=True)
            with self._lock:
                self._children.add(child)
            try:
                code = child.wait(timeout=job.timeout_ms / 1000 if job.timeout_ms else None)
            except subprocess.TimeoutExpired:
                _end(child)
                raise TimeoutError(f"killed: ran past the job's timeout of {job.timeout_ms / 1000:g} s") from None
            finally:
                with self._lock:
                    self._children.discard(child)
            if code != 0:
                raise CommandFailed(f"{_how_it_ended(code)}; stderr: {_tail(stderr)}")
            stdout.seek(0)
            result = stdout.read(limits.JOB_ARGS_BYTES_MAX + 1)
            if len(result) > limits.JOB_ARGS_BYTES_MAX:
                raise CommandFailed(f"exit 0 but stdout is over JOB_ARGS_BYTES_MAX={limits.JOB_ARGS_BYTES_MAX} "
                                    "bytes; write big results elsewhere and print a reference")
            return result

    def end_remaining(self) -> int:
        """Terminates the commands still running (released jobs); returns how many."""
        with self._lock:
            children = list(self._children)
        for child in children:
            _end(child)
        return len(children)


def _end(child: subprocess.Popen) -> None:
    """SIGTERM to the command's session, SIGKILL if it is still there after COMMAND_KILL_WAIT_S."""
    for signum, wait_s in ((signal.SIGTERM, COMMAND_KILL_WAIT_S), (signal.SIGKILL, COMMAND_KILL_WAIT_S)):
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass
        try:
            child.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _how_it_ended(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit {code}"


def _tail(stderr) -> str:
    size = stderr.seek(0, os.SEEK_END)
    stderr.seek(max(0, size - STDERR_TAIL_BYTES_MAX))
    text = stderr.read().decode("utf-8", "replace").strip()
    return ("…" if size > STDERR_TAIL_BYTES_MAX else "") + (text or "(empty)")


def cmd_worker(client: Client, args) -> Reply:
    argv = args.argv
    if not argv:
        raise ValueError("no command to run: tandemkv jobs worker QUEUE -- COMMAND ARGS...")
    if shutil.which(argv[0]) is None:
        raise ValueError(f"cannot run {argv[0]!r}: not found or not executable")
    handler = CommandHandler(argv)
    worker = client.jobs.worker(args.queue, handler, concurrency=args.concurrency, rate_limit=args.rate,
                                lease_ttl_s=args.lease_ttl, grace_s=args.grace, name=args.name,
                                prefetch=args.prefetch)
    stop = StopSignals()
    worker.start()
    print(f"tandemkv: worker {worker.settings.name} runs jobs of {args.queue!r} (up to {args.concurrency} at "
          "once) until Ctrl-C or SIGTERM", file=sys.stderr, flush=True)
    handled = 0
    while not worker.stopped:
        stop.wait(WORKER_CHECK_S)
        if stop.count > handled:
            handled = stop.count
            graceful = handled == 1
            running = worker.stats().running
            print(f"tandemkv: stopping; {running} running job(s) "
                  + (f"get up to {args.grace:g} s to finish" if graceful else "are released now"),
                  file=sys.stderr, flush=True)
            worker.request_stop(graceful)
    ended = handler.end_remaining()
    stats = worker.stats()
    data = {"completed": stats.completed, "failed": stats.failed, "lost": stats.lost,
            "released": stats.released, "claimed": stats.claimed, "terminated": ended}
    text = " ".join(f"{name} {value}" for name, value in data.items())
    return Reply(EXIT_OK, data, text)
