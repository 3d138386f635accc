"""`python -m examples.work_distributor worker|produce`: a worker process, or
the producer that spreads items across the workers and prints each result
(one JSON line per item, in the items' order).

    python -m examples.work_distributor worker --name w1 &
    python -m examples.work_distributor worker --name w2 &
    python -m examples.work_distributor produce --items 50
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from tandemkv.client import Client, RunManyFailed

from examples.work_distributor.distributor import (PROCESS_TIMEOUT_S_DEFAULT, QUEUE, WORK_S_DEFAULT,
                                                   WORKER_LEASE_TTL_S, make_work, process_in_parallel)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.work_distributor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", default=None,
                        help="the cluster's client endpoints, host:port,... (default: $TANDEMKV_ENDPOINTS, "
                             "else the cluster `tandemkv up` started in this directory)")
    roles = parser.add_subparsers(dest="role", required=True)
    worker = roles.add_parser("worker", help="run items until Ctrl-C or SIGTERM")
    worker.add_argument("--name", default="worker", help="shown in each result it produces")
    worker.add_argument("--concurrency", type=int, default=2, help="items at once (default 2)")
    worker.add_argument("--work-s", type=float, default=WORK_S_DEFAULT,
                        help=f"seconds one item takes (default {WORK_S_DEFAULT:g})")
    produce = roles.add_parser("produce", help="spread items 0..N-1 across the workers, print the results")
    produce.add_argument("--items", type=int, default=50, help="how many items (default 50)")
    produce.add_argument("--timeout", type=float, default=PROCESS_TIMEOUT_S_DEFAULT,
                         help=f"give up after this many seconds (default {PROCESS_TIMEOUT_S_DEFAULT:g})")
    args = parser.parse_args(argv)
    endpoints = args.endpoints.split(",") if args.endpoints else None
    with Client(endpoints) as client:
        if args.role == "worker":
            return run_worker(client, args)
        try:
            for result in process_in_parallel(client, list(range(args.items)), args.timeout):
                print(json.dumps(result), flush=True)
        except RunManyFailed as error:
            print(f"work_distributor: {error.message}", file=sys.stderr)
            return 1
    return 0


def run_worker(client: Client, args) -> int:
    def started(job) -> None:
        print(f"started job {job.id} item {job.args.decode()} attempt {job.attempt}", flush=True)

    worker = client.jobs.worker(QUEUE, make_work(args.name, args.work_s, started), concurrency=args.concurrency,
                                lease_ttl_s=WORKER_LEASE_TTL_S, name=args.name)
    # SIGTERM stops it as Ctrl-C does (Worker.run): no more claims, running items finish, the lease is
    # revoked. SIGINT is installed too: a process started in the background may inherit it ignored.
    signal.signal(signal.SIGTERM, lambda signum, frame: worker.request_stop())
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"worker {args.name}: running items of {QUEUE!r}, {args.concurrency} at once", flush=True)
    worker.run()
    stats = worker.stats()
    print(f"worker {args.name}: stopped after {stats.completed} items", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
