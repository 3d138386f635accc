"""`tandemkv jobs enqueue|list|show|retry|cancel|discard|stats|limit|workers|cron|worker`:
the job queue on the command line, through the SDK's `client.jobs`
(client/_jobs.py).

Exit codes are the CLI's (server/cli/client.py): 0 done, 1 `show` of a job
that does not exist, 2 bad input (a limit named), 3 unavailable, 4 an
enqueue whose outcome is unknown, 5 refused (retrying a claimed job,
cancelling a finished one, a limit on one queue more than
JOB_QUEUE_LIMITS_MAX: FAILED_PRECONDITION, with what to do).

`jobs enqueue QUEUE --from-file FILE` enqueues a job per line of FILE (`-`:
stdin) with `client.jobs.enqueue_many` and prints their ids, one per line,
in the lines' order. If a request fails after earlier ones were answered,
the ids of the jobs enqueued so far are printed before the error line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from tandemkv import errors, limits
from tandemkv.client import Client
from tandemkv.client._jobs_ops import STATES, Job, QueueStats
from tandemkv.server.cli import job_worker as cli_job_worker
from tandemkv.server.cli.client import (
    EXIT_NO, EXIT_OK, STDIN_VALUE, Reply, _leaf, _text, bytes_json, value_argument,
)

# Bytes `jobs enqueue --from-file` reads at most (a longer input is refused,
# not cut): a job per line, each within JOB_ARGS_BYTES_MAX.
ENQUEUE_FILE_BYTES_MAX = 64 * 1024 * 1024
# Lines (jobs) one `jobs enqueue --from-file` takes at most: a hundred full
# EnqueueMany requests (JOB_ENQUEUE_MANY_JOBS_MAX each), held in memory at once.
ENQUEUE_FILE_LINES_MAX = 100 * 1000


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    jobs = subparsers.add_parser(
        "jobs", help="the durable job queue: enqueue, list, show, retry, cancel, discard, stats, limit, worker",
        description="The durable job queue (docs/jobs.md): jobs whose claims are leases.",
    ).add_subparsers(dest="op", required=True)
    enqueue = _leaf(jobs, "enqueue", cmd_enqueue, "enqueue a job (or one per line of a file); prints the ids",
                    ("queue",))
    enqueue.add_argument("args", nargs="?", default=None, help="the job's args (text; - reads stdin)")
    enqueue.add_argument("--from-file", metavar="FILE",
                         help="enqueue a job per line of FILE (- reads stdin), each line its args, in as few "
                              "requests as the limits allow; prints the ids one per line, in order")
    enqueue.add_argument("--unique-key", help="while a job of the queue with this key is unfinished, "
                                              "answer its id instead of enqueueing another")
    when = enqueue.add_mutually_exclusive_group()
    when.add_argument("--run-at", type=float, metavar="EPOCH_S", help="run at or after this epoch time")
    when.add_argument("--in", dest="run_in", type=float, metavar="SECONDS", help="run this many seconds from now")
    enqueue.add_argument("--priority", type=int, default=0, help="0 (first) .. JOB_PRIORITY_MAX")
    enqueue.add_argument("--max-attempts", type=int, default=0,
                         help="failures before the job is dead (0: JOB_MAX_ATTEMPTS_DEFAULT)")
    enqueue.add_argument("--job-timeout", type=float, metavar="SECONDS",
                         help="how long one claim may run before it counts as a failure")
    enqueue.add_argument("--max-lost-claims", type=int, default=0,
                         help="claims it may lose with their lease (its worker crashed or stalled) before "
                              "it is dead (0: JOB_MAX_LOST_CLAIMS_DEFAULT)")
    listing = _leaf(jobs, "list", cmd_list, "list jobs in id order (one page)", (), read=True)
    listing.add_argument("--queue", help="only this queue's jobs")
    listing.add_argument("--state", choices=list(STATES), help="only jobs in this state")
    listing.add_argument("--after-id", type=int, default=0, help="jobs with ids above this")
    listing.add_argument("--limit", type=int, default=0, help="at most this many (0: JOB_LIST_MAX)")
    _leaf(jobs, "show", cmd_show, "print one job", ("id:int",), read=True)
    _leaf(jobs, "retry", cmd_retry, "run a finished, scheduled or retryable job again now", ("id:int",))
    _leaf(jobs, "cancel", cmd_cancel, "cancel an unfinished job (a claim ends)", ("id:int",))
    _leaf(jobs, "discard", cmd_discard, "move an unfinished job to dead", ("id:int",))
    stats = _leaf(jobs, "stats", cmd_stats, "count each queue's jobs by state", (), read=True)
    stats.add_argument("queue", nargs="?", help="only this queue")
    _leaf(jobs, "limit", cmd_limit, "limit a queue cluster-wide: at most N of its jobs claimed at once, "
          "whatever the number of workers (0 removes the limit); prints the limit", ("queue", "N:int"))
    workers = _leaf(jobs, "workers", cmd_workers, "list the workers that beat recently (any node answers)", (),
                    read=True)
    workers.add_argument("queue", nargs="?", help="only this queue's workers")
    crons = jobs.add_parser("cron", help="recurring jobs: put, list, delete",
                            description="Recurring jobs: a job of a queue at each minute a cron "
                                        "expression (UTC) matches.").add_subparsers(dest="cron_op", required=True)
    put = _leaf(crons, "put", cmd_cron_put, "create or replace a recurring job",
                ("name", "expression", "queue"))
    put.add_argument("args", nargs="?", default="", help="each run's args (text)")
    put.add_argument("--priority", type=int, default=0, help="0 (first) .. JOB_PRIORITY_MAX")
    put.add_argument("--max-attempts", type=int, default=0, help="failures before a run is dead")
    _leaf(crons, "list", cmd_cron_list, "print the recurring jobs", (), read=True)
    _leaf(crons, "delete", cmd_cron_delete, "delete a recurring job (its queued runs stay)", ("name",))
    cli_job_worker.add_parser(jobs)


def _positive(value: int | None, what: str) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{what} must not be negative (got {value})")


def cmd_enqueue(client: Client, args) -> Reply:
    for value, what in ((args.priority, "--priority"), (args.max_attempts, "--max-attempts"),
                        (args.max_lost_claims, "--max-lost-claims"),
                        (args.job_timeout, "--job-timeout"), (args.run_in, "--in"), (args.run_at, "--run-at")):
        _positive(value, what)
    run_at = time.time() + args.run_in if args.run_in is not None else args.run_at
    options = dict(run_at=run_at, priority=args.priority, max_attempts=args.max_attempts,
                   timeout_s=args.job_timeout, max_lost_claims=args.max_lost_claims)
    if args.from_file is not None:
        return _enqueue_from_file(client, args, options)
    job_id = client.jobs.enqueue(args.queue, value_argument(args.args or ""), unique_key=args.unique_key,
                                 **options)
    return Reply(EXIT_OK, {"id": job_id}, str(job_id), "")


def _enqueue_from_file(client: Client, args, options: dict) -> Reply:
    if args.args is not None:
        raise ValueError("give ARGS or --from-file, not both (each line of the file is a job's args)")
    if args.unique_key is not None:
        raise ValueError("--unique-key names one job; it cannot go with --from-file")
    lines = read_job_lines(args.from_file)
    try:
        ids = client.jobs.enqueue_many(args.queue, lines, **options)
    except errors.TandemKVError as error:
        enqueued = getattr(error, "enqueued_ids", [])
        if enqueued:  # the jobs that are in: their ids on stdout, as a whole run would print them
            _print_ids(enqueued, getattr(args, "output", "text") == "json")
            error.message += (f" ({len(enqueued)} of the {len(lines)} jobs were enqueued before this failed; "
                              f"their ids are on stdout, line 1 to line {len(enqueued)})")
        raise
    note = "" if lines else f"{args.from_file}: no lines, no job enqueued"
    return Reply(EXIT_OK, {"ids": ids}, "\n".join(map(str, ids)), note)


def _print_ids(ids: list[int], json_output: bool) -> None:
    print(json.dumps({"ids": ids}) if json_output else "\n".join(map(str, ids)), flush=True)


def read_job_lines(path: str) -> list[bytes]:
    """The args of a job per line of `path` (`-`: stdin), without their line
    ends (\\n or \\r\\n); every line is a job, an empty one a job with empty
    args. At most ENQUEUE_FILE_BYTES_MAX bytes and ENQUEUE_FILE_LINES_MAX
    lines, each line within JOB_ARGS_BYTES_MAX."""
    try:
        if path == STDIN_VALUE:
            data = sys.stdin.buffer.read(ENQUEUE_FILE_BYTES_MAX + 1)
        else:
            with open(path, "rb") as file:
                data = file.read(ENQUEUE_FILE_BYTES_MAX + 1)
    except OSError as error:
        raise ValueError(f"--from-file {path}: {error.strerror or error}") from None
    where = "stdin" if path == STDIN_VALUE else path
    if len(data) > ENQUEUE_FILE_BYTES_MAX:
        raise ValueError(f"{where} is longer than ENQUEUE_FILE_BYTES_MAX={ENQUEUE_FILE_BYTES_MAX} bytes; "
                         "split it into several files")
    lines = data.split(b"\n")
    if lines[-1] == b"":  # the last line's end, not a line of its own
        lines.pop()
    if len(lines) > ENQUEUE_FILE_LINES_MAX:
        raise ValueError(f"{where} holds {len(lines)} lines, over ENQUEUE_FILE_LINES_MAX={ENQUEUE_FILE_LINES_MAX}; "
                         "split it into several files")
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    for number, line in enumerate(lines, 1):
        if len(line) > limits.JOB_ARGS_BYTES_MAX:
            raise ValueError(f"{where} line {number} is {len(line)} bytes, over JOB_ARGS_BYTES_MAX="
                             f"{limits.JOB_ARGS_BYTES_MAX}; nothing was enqueued")
    return lines


def cmd_list(client: Client, args) -> Reply:
    _positive(args.after_id, "--after-id")
    _positive(args.limit, "--limit")
    page = client.jobs.list(args.queue, state=args.state, after_id=args.after_id, limit=args.limit)
    header = f"{'ID':>10} {'QUEUE':16} {'STATE':10} {'ATTEMPT':>7} {'PRI':>3} LAST_ERROR"
    rows = [f"{j.id:>10} {_text(j.queue)[:16]:16} {j.state:10} {j.attempt:>7} {j.priority:>3} "
            f"{j.last_error.splitlines()[0] if j.last_error else ''}" for j in page.jobs]
    note = f"more: ask again with --after-id {page.next_after_id}" if page.more else ""
    data = {"jobs": [_job_json(j) for j in page.jobs], "more": page.more, "next_after_id": page.next_after_id}
    return Reply(EXIT_OK, data, "\n".join([header, *rows]), note)


def cmd_show(client: Client, args) -> Reply:
    job = client.jobs.get(args.id)
    if job is None:
        return Reply(EXIT_NO, None, "", f"job {args.id} not found")
    return _job_reply(job)


def cmd_retry(client: Client, args) -> Reply:
    return _job_reply(client.jobs.retry(args.id))


def cmd_cancel(client: Client, args) -> Reply:
    return _job_reply(client.jobs.cancel(args.id))


def cmd_discard(client: Client, args) -> Reply:
    return _job_reply(client.jobs.discard(args.id))


def cmd_stats(client: Client, args) -> Reply:
    queues = client.jobs.stats(args.queue)
    names = [f.name for f in dataclasses.fields(QueueStats)][1:-1]  # the counts; the limit is LIMIT
    header = f"{'QUEUE':16} " + " ".join(f"{name.upper():>9}" for name in names) + f" {'LIMIT':>7}"
    rows = [f"{_text(q.queue)[:16]:16} " + " ".join(f"{getattr(q, name):>9}" for name in names)
            + f" {q.concurrency_max or '-':>7}" for q in queues]
    data = {"queues": [{**dataclasses.asdict(q), "queue": bytes_json(q.queue)} for q in queues]}
    return Reply(EXIT_OK, data, "\n".join([header, *rows]), "")


def cmd_limit(client: Client, args) -> Reply:
    _positive(args.N, "N")
    concurrency_max = client.jobs.set_queue_limit(args.queue, args.N)
    text = (f"{args.queue}: at most {concurrency_max} jobs claimed at once" if concurrency_max
            else f"{args.queue}: no limit")
    return Reply(EXIT_OK, {"queue": args.queue, "concurrency_max": concurrency_max}, text, "")


def cmd_workers(client: Client, args) -> Reply:
    beats = client.jobs.workers(args.queue)
    now_ms = time.time() * 1000
    header = f"{'QUEUE':16} {'WORKER':32} {'RUNNING':>7} {'BEAT':>8} NODE"
    rows = [f"{_text(w.queue)[:16]:16} {w.worker[:32]:32} {w.running:>7} "
            f"{max(0.0, (now_ms - w.beat_ms) / 1000):>7.1f}s {w.node}" for w in beats]
    data = {"workers": [{**dataclasses.asdict(w), "queue": bytes_json(w.queue)} for w in beats]}
    return Reply(EXIT_OK, data, "\n".join([header, *rows]), "")


def _job_json(job: Job) -> dict:
    data = dataclasses.asdict(job)
    for name in ("queue", "args", "unique_key", "result"):
        data[name] = bytes_json(data[name])
    return data


def _job_reply(job: Job) -> Reply:
    data = _job_json(job)
    text = "\n".join(f"{name}: {_text(value) if isinstance(value, bytes) else value}"
                     for name, value in dataclasses.asdict(job).items() if name != "progress")
    if job.progress is not None:
        text += f"\nprogress: {job.progress.progress}% {job.progress.note}".rstrip()
    return Reply(EXIT_OK, data, text, "")


def cmd_cron_put(client: Client, args) -> Reply:
    _positive(args.priority, "--priority")
    _positive(args.max_attempts, "--max-attempts")
    job_cron = client.jobs.cron_put(args.name, args.expression, args.queue, args.args, priority=args.priority,
                                    max_attempts=args.max_attempts)
    return _crons_reply([job_cron])


def cmd_cron_list(client: Client, args) -> Reply:
    return _crons_reply(client.jobs.cron_list())


def cmd_cron_delete(client: Client, args) -> Reply:
    if client.jobs.cron_delete(args.name):
        return Reply(EXIT_OK, {"deleted": True}, "", "")
    return Reply(EXIT_NO, {"deleted": False}, "", f"recurring job {args.name!r} not found")


def _crons_reply(crons: list) -> Reply:
    rows = [f"{_text(c.name)}\t{c.expression}\t{_text(c.queue)}\tnext {_utc(c.next_run_ms)}" for c in crons]
    data = {"crons": [{**dataclasses.asdict(c), "name": bytes_json(c.name), "queue": bytes_json(c.queue),
                       "args": bytes_json(c.args)} for c in crons]}
    return Reply(EXIT_OK, data, "\n".join(rows), "")


def _utc(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(epoch_ms / 1000))
