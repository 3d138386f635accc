"""The worker processes of benchmarks/jobs_throughput.py, one per system,
each running the same no-op job until SIGTERM:

    python -m benchmarks.jobs_throughput_worker tandemkv ENDPOINTS QUEUE CONCURRENCY [PREFETCH]
    python -m benchmarks.jobs_throughput_worker rq       REDIS     QUEUE WORKERS
    python -m benchmarks.jobs_throughput_worker arq      REDIS     QUEUE MAX_JOBS

TandemKV: the SDK's `client.jobs.worker` with CONCURRENCY handler threads
(and PREFETCH jobs claimed ahead, 0 by default).
RQ: a `WorkerPool` forking WORKERS `SimpleWorker`s (RQ runs one job at a
time per worker process; a SimpleWorker runs it in place, with no fork per
job). arq: one asyncio worker with `max_jobs` = MAX_JOBS.
"""

from __future__ import annotations

import signal
import sys
import threading

# Seconds between two looks at whether SIGTERM came (TandemKV's worker).
STOP_POLL_S = 0.2


def noop(*_args, **_kwargs) -> None:
    """The job: nothing (what is measured is the queue)."""
    return None


async def arq_noop(_context, *_args) -> None:
    return None


def run_tandemkv(endpoints: str, queue: str, concurrency: int, prefetch: int = 0) -> None:
    from tandemkv.client import Client

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Client(endpoints.split(",")) as client:
        with client.jobs.worker(queue, lambda job: b"", concurrency=concurrency, prefetch=prefetch):
            while not stop.wait(STOP_POLL_S):
                pass


def run_rq(redis_url: str, queue: str, workers: int) -> None:
    from redis import Redis
    from rq import SimpleWorker
    from rq.worker_pool import WorkerPool

    pool = WorkerPool([queue], connection=Redis.from_url(redis_url), num_workers=workers,
                      worker_class=SimpleWorker)
    pool.start(logging_level="WARNING")  # RQ's own SIGTERM handling stops the pool and its workers


def run_arq(redis_url: str, queue: str, max_jobs: int) -> None:
    from arq.connections import RedisSettings
    from arq.worker import run_worker

    class Settings:
        functions = [arq_noop]
        redis_settings = RedisSettings.from_dsn(redis_url)
        queue_name = queue
        # The job is a no-op; results kept so the driver reads finish times.
        keep_result = 3600
        poll_delay = 0.05

    Settings.max_jobs = max_jobs
    run_worker(Settings)  # arq stops on SIGTERM


def main(argv: list[str]) -> int:
    system, where, queue, concurrency = argv[0], argv[1], argv[2], int(argv[3])
    if system == "tandemkv":
        run_tandemkv(where, queue, concurrency, int(argv[4]) if len(argv) > 4 else 0)
    elif system == "rq":
        run_rq(where, queue, concurrency)
    elif system == "arq":
        run_arq(where, queue, concurrency)
    else:
        print(f"unknown system {system!r}: tandemkv, rq or arq", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
