"""The work distributor: `process_in_parallel(items)` on the producer's side
(`client.jobs.run_many`: one job per item, results in the items' order) and
`work(job)` on the workers' side (`client.jobs.worker`: each worker process
claims what it has free threads for). The seed distributed round-robin
across `[node() | Node.list()]`; here whoever is free takes the next item,
and an item whose worker dies returns to the queue when that worker's lease
expires, so the slowest or dead worker never holds up the rest.

An item is an integer; its answer is the sum of the squares below it (a
stand-in for real work, with `work_s` seconds of sleep to make it take
time). A result is JSON: the item, its answer and the worker that ran it.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from tandemkv.client import Client
from tandemkv.client._jobs_ops import Job

QUEUE = "work_distributor"
# How long a worker spends on one item by default (seconds).
WORK_S_DEFAULT = 0.2
# A worker's lease: a killed worker's items return to the queue this long after its last renewal.
WORKER_LEASE_TTL_S = 2.0
# How long process_in_parallel waits for every result by default.
PROCESS_TIMEOUT_S_DEFAULT = 300.0


def answer(item: int) -> int:
    return sum(k * k for k in range(item))


def process_in_parallel(client: Client, items: list[int], timeout_s: float = PROCESS_TIMEOUT_S_DEFAULT
                        ) -> list[dict[str, Any]]:
    """Each item's result, in the items' order (RunManyFailed names any that failed)."""
    results = client.jobs.run_many(QUEUE, [str(item) for item in items], timeout_s=timeout_s)
    return [json.loads(result) for result in results]


def make_work(name: str, work_s: float, started: Callable[[Job], None] = lambda job: None
              ) -> Callable[[Job], bytes]:
    """The handler of worker `name`: `started(job)` is told first (the
    example's worker prints it, so a test knows a job is mid-run)."""
    def work(job: Job) -> bytes:
        started(job)
        item = int(job.args)
        time.sleep(work_s)
        return json.dumps({"item": item, "answer": answer(item), "worker": name}).encode()
    return work
