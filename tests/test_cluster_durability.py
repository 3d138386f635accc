"""Durability with real processes: acknowledged writes survive kill -9 of
every node at once, and a simulated machine crash (the state environment,
which commits without fsync, is rebuilt from the fsynced Raft log).

Method: several threads increment one counter through the SDK, each
increment with its own request id; the test counts acknowledged increments
and those whose outcome is unknown, kills every node with SIGKILL, restarts
them, and checks acknowledged <= value <= acknowledged + unknown."""

from __future__ import annotations

import signal
import threading

from tandemkv import errors
from tandemkv.client import Client, Retry
from tandemkv.client import _operations as ops
from tandemkv.server.storage.crash_marker import BOOT_ID_OVERRIDE_ENV
from tests.support.cluster import ServeCluster

LEADER_TIMEOUT_S = 60.0
WORKERS = 4
ACKED_BEFORE_KILL = 150
LOAD_TIMEOUT_S = 60.0
JOIN_TIMEOUT_S = 60.0


class Load:
    def __init__(self, endpoints):
        self.client = Client(endpoints, retry=Retry(deadline_s=5.0))
        self.acked = 0
        self.unknown = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.enough = threading.Event()
        self.threads = [threading.Thread(target=self._work) for _ in range(WORKERS)]

    def _work(self):
        while not self.stop.is_set():
            try:
                self.client.run(ops.counter_incr("durable", 1))
            except (errors.OutcomeUnknown, errors.Unavailable):
                with self.lock:
                    self.unknown += 1
                continue
            with self.lock:
                self.acked += 1
                if self.acked >= ACKED_BEFORE_KILL:
                    self.enough.set()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(JOIN_TIMEOUT_S)
        self.client.close()
        assert not any(t.is_alive() for t in self.threads), "load threads did not stop"


def kill_all_at_once(cluster: ServeCluster) -> None:
    processes = list(cluster.processes.values())
    for process in processes:
        process.send_signal(signal.SIGKILL)
    for process in processes:
        process.wait(timeout=15)


def read_counter(cluster: ServeCluster) -> int:
    cluster.wait_for_leader(LEADER_TIMEOUT_S)
    with Client(cluster.endpoints, retry=Retry(deadline_s=30.0)) as client:
        return client.counter("durable").get()


def test_acknowledged_writes_survive_kill_9_of_every_node_and_a_machine_crash(tmp_path, monkeypatch):
    with ServeCluster(tmp_path, nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        with Load(cluster.endpoints) as load:
            assert load.enough.wait(LOAD_TIMEOUT_S), "the load made no progress"
            kill_all_at_once(cluster)
        acked, unknown = load.acked, load.unknown
        cluster.start()
        value = read_counter(cluster)
        assert acked <= value <= acked + unknown, (acked, unknown, value)

        # A machine crash: the nodes come back under another boot id, so each
        # rebuilds its state from the snapshot and the log.
        kill_all_at_once(cluster)
        monkeypatch.setenv(BOOT_ID_OVERRIDE_ENV, "after-simulated-power-loss")
        cluster.start()
        assert read_counter(cluster) == value
        for member in cluster.members:
            assert "machine crash detected" in cluster.log_path(member.name).read_text()
