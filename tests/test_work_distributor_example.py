"""The work distributor example (examples/work_distributor/) end to end: a
3-node cluster, three worker processes, and the producer spreading 40 items
across them with run_many; one worker is killed with -9 while it runs an
item. Every item's result comes back exactly once, in the items' order, with
the right answer; the killed worker's item is run again by another worker
once its lease expires; the others stop on SIGTERM.

Method: `ServeCluster` and `python -m examples.work_distributor` processes.
The victim works slowly (5 s an item) and prints a line as it starts an
item, so it is killed mid-item; every wait is bounded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from examples.work_distributor.distributor import QUEUE, answer
from tandemkv.client import Client
from tests.support.cluster import ServeCluster

REPO = Path(__file__).resolve().parent.parent
LEADER_TIMEOUT_S = 120.0  # nodes elect slowly on a loaded machine
RUN_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
ITEMS = 40


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("distributor"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


def start(cluster: ServeCluster, *words: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "examples.work_distributor", "--endpoints",
                             ",".join(cluster.endpoints), *words], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def test_every_items_result_comes_back_once_in_order_though_a_worker_is_killed(cluster):
    victim = start(cluster, "worker", "--name", "victim", "--concurrency", "1", "--work-s", "5")
    survivors = [start(cluster, "worker", "--name", f"w{k}", "--work-s", "0.1") for k in (2, 3)]
    producer = start(cluster, "produce", "--items", str(ITEMS), "--timeout", str(RUN_TIMEOUT_S))
    try:
        assert victim.stdout.readline().startswith("worker victim:")
        line = victim.stdout.readline()  # blocks until the victim has started an item
        assert line.startswith("started job"), line + victim.stderr.read()
        killed_job_id = int(line.split()[2])
        victim.kill()
        victim.wait(timeout=STOP_TIMEOUT_S)
        out, err = producer.communicate(timeout=RUN_TIMEOUT_S + STOP_TIMEOUT_S)
        assert producer.returncode == 0, err
        results = [json.loads(row) for row in out.splitlines()]
        assert [r["item"] for r in results] == list(range(ITEMS))
        assert all(r["answer"] == answer(r["item"]) for r in results)
        assert "victim" not in {r["worker"] for r in results}  # it was killed during its only item
        with Client(cluster.endpoints) as client:
            again = client.jobs.get(killed_job_id)
            assert (again.state, again.attempt) == ("completed", 2)  # lost with the lease, run once more
            (stats,) = client.jobs.stats(QUEUE)
            assert (stats.completed, stats.available, stats.claimed) == (ITEMS, 0, 0)
        for survivor in survivors:
            survivor.send_signal(signal.SIGTERM)
        for survivor in survivors:
            out, err = survivor.communicate(timeout=STOP_TIMEOUT_S)
            assert survivor.returncode == 0 and "stopped after" in out, err
    finally:
        for process in (victim, producer, *survivors):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
