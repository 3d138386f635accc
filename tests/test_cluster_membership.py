"""Runtime membership with real `tandemkv serve` processes on 127.0.0.1.

The cluster grows from 3 to 5 members (one added with `tandemkv member add`
and started with --join, one that asks to be added itself through --join)
and shrinks back to 3 (the leader among the removed) while writers keep
putting keys; every acknowledged put must be readable at the end, on the
new members too, and a restart of every node keeps the new member set
(their config files still list the first three). Also: a second change
while one is in progress is refused naming it, a removed node refuses
calls and `serve` on it exits saying why, and `tandemkv health` exits 0,
1 and 3 as documented.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import grpc
import pytest

from tandemkv import errors
from tandemkv.client import NO_RETRY, Client, Retry
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc, kv_pb2, kv_pb2_grpc
from tests.support.growing_cluster import GrowingCluster

pytestmark = pytest.mark.skipif(os.environ.get("TANDEMKV_SKIP_CLUSTER") == "1", reason="cluster tests off")

LEADER_TIMEOUT_S = 60.0
CHANGE_TIMEOUT_S = 60.0
WRITERS = 3
# Puts each writer makes at most while the membership changes go on.
PUTS_PER_WRITER_MAX = 100_000
# Resubmissions of one put (same request id) after the SDK gives up.
RESUBMITS_MAX = 20
CLI_TIMEOUT_S = 120.0


def tandemkv(*words: str, timeout_s: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tandemkv.server.cli", *words], capture_output=True,
                          text=True, timeout=timeout_s)


class Writers:
    """Threads putting unique keys until stopped; `acknowledged` holds the
    keys whose put was acknowledged (each resubmitted with its request id
    until it is, or RESUBMITS_MAX times)."""

    def __init__(self, endpoints: list[str]):
        self.acknowledged: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._client = Client(endpoints, retry=Retry(deadline_s=10.0))
        self._threads = [threading.Thread(target=self._write, args=(k,)) for k in range(WRITERS)]

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def _write(self, writer: int) -> None:
        for number in range(PUTS_PER_WRITER_MAX):
            if self._stop.is_set():
                return
            key, request_id = f"w{writer}-{number}", os.urandom(16)
            for _ in range(RESUBMITS_MAX):
                try:
                    self._client.put(key, str(number), request_id=request_id)
                except (errors.OutcomeUnknown, errors.Unavailable):
                    continue
                self.acknowledged.append(key)
                break
            else:
                self.failures.append(key)  # never acknowledged: it may or may not be there

    def wait_for(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.acknowledged) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.acknowledged) >= count, f"only {len(self.acknowledged)} puts acknowledged"

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        self._client.close()


def test_grow_3_to_5_and_back_to_3_under_writes_loses_no_acknowledged_write(tmp_path):
    with GrowingCluster(tmp_path, nodes=3) as cluster:
        first_leader = cluster.wait_for_leader(LEADER_TIMEOUT_S)
        with Writers(cluster.endpoints) as writers:
            writers.wait_for(300, CHANGE_TIMEOUT_S)  # past SNAPSHOT_ENTRIES: n4 catches up from a snapshot
            n4 = cluster.prepare("n4")
            added = tandemkv("member", "add", "n4", "--raft", n4.raft_address, "--client", n4.client_address,
                             "--endpoints", ",".join(cluster.endpoints[:3]))
            assert added.returncode == 0, added.stderr
            assert "n4" in added.stdout
            cluster.restart("n4")  # its config joins through a running member
            cluster.wait_caught_up("n4", CHANGE_TIMEOUT_S)
            cluster.prepare("n5")  # asks to be added itself
            cluster.restart("n5")
            cluster.wait_for_members(cluster.running(), ["n1", "n2", "n3", "n4", "n5"], CHANGE_TIMEOUT_S)
            cluster.wait_caught_up("n5", CHANGE_TIMEOUT_S)
            before = len(writers.acknowledged)
            # 5 -> 3: the first leader and one more of the first three.
            other = next(n for n in ("n1", "n2", "n3") if n != first_leader)
            with Client(cluster.endpoints, retry=Retry(deadline_s=CHANGE_TIMEOUT_S)) as client:
                for name in (first_leader, other):
                    assert name not in client.members.remove(name).names
            writers.wait_for(before + 100, CHANGE_TIMEOUT_S)
        remaining = sorted(set(cluster.running()) - {first_leader, other})
        for name in (first_leader, other):
            cluster.stop_node(name)
            cluster.forget(name)
        assert not writers.failures
        cluster.wait_for_members(remaining, remaining, CHANGE_TIMEOUT_S)
        # Every node, restarted with config files that list the first three, keeps the new set.
        for name in remaining:
            cluster.stop_node(name)
        for name in remaining:
            cluster.restart(name)
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        cluster.wait_for_members(remaining, remaining, CHANGE_TIMEOUT_S)
        with Client(cluster.endpoints, retry=Retry(deadline_s=CHANGE_TIMEOUT_S)) as client:
            stored = {kv.key.decode() for prefix in (f"w{k}-" for k in range(WRITERS))
                      for kv in _all_keys(client, prefix)}
        lost = sorted(set(writers.acknowledged) - stored)
        assert not lost, f"{len(lost)} acknowledged puts lost, e.g. {lost[:5]}"
        for name in ("n4", "n5"):
            with Client([cluster.endpoint(name)], retry=NO_RETRY) as client:
                assert client.members.list().names == remaining


def _all_keys(client: Client, prefix: str):
    start = prefix
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    while True:
        result = client.range(start, end=end)
        yield from result
        if not result.more:
            return
        start = result.kvs[-1].key.decode() + "\0"


def test_a_second_change_while_one_is_in_progress_is_refused_naming_it(tmp_path):
    with GrowingCluster(tmp_path, nodes=3) as cluster:
        leader = cluster.wait_for_leader(LEADER_TIMEOUT_S)
        follower = next(n for n in ("n1", "n2", "n3") if n != leader)
        cluster.stop_node(follower)
        # Four members need three to commit; two run: the addition stays in progress.
        n4 = cluster.prepare("n4")
        pending: list[BaseException] = []

        def add() -> None:
            try:
                with Client([cluster.endpoint(leader)], retry=Retry(deadline_s=5.0)) as client:
                    client.members.add("n4", raft=n4.raft_address, client=n4.client_address)
            except errors.TandemKVError as error:
                pending.append(error)

        adding = threading.Thread(target=add)
        adding.start()
        with Client([cluster.endpoint(leader)], retry=NO_RETRY) as client:
            deadline = time.monotonic() + CHANGE_TIMEOUT_S
            while not client.members.list().change_in_progress:
                assert time.monotonic() < deadline, "the addition never showed as in progress"
                time.sleep(0.05)
            assert "add n4" in client.members.list().change_in_progress
            with pytest.raises(errors.FailedPrecondition) as refused:
                client.members.remove(follower)
            refusal = refused.value
        adding.join(timeout=60)
        assert "in progress" in refusal.message and "add n4" in refusal.message, refusal.message
        cluster.restart(follower)  # a majority of the four again: the addition commits
        cluster.wait_for_members([leader, follower], ["n1", "n2", "n3", "n4"], CHANGE_TIMEOUT_S)


def test_removing_the_leader_hands_over_and_the_removed_node_refuses_and_will_not_serve_again(tmp_path):
    with GrowingCluster(tmp_path, nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        cluster.prepare("n4")
        cluster.restart("n4")
        cluster.wait_for_members(["n1", "n2", "n3", "n4"], ["n1", "n2", "n3", "n4"], CHANGE_TIMEOUT_S)
        leader = cluster.wait_for_leader(LEADER_TIMEOUT_S)
        removed_endpoint = cluster.endpoint(leader)
        result = tandemkv("member", "remove", leader, "--endpoints", ",".join(cluster.endpoints))
        assert result.returncode == 0, result.stderr
        assert leader not in result.stdout
        remaining = [m.name for m in cluster.members if m.name != leader]
        new_leader = cluster.wait_for_leader(LEADER_TIMEOUT_S, among=remaining)
        assert new_leader != leader
        # Asked directly (the SDK would route to the leader it learned of).
        with grpc.insecure_channel(removed_endpoint) as channel:
            stub = kv_pb2_grpc.KVStub(channel)
            deadline = time.monotonic() + CHANGE_TIMEOUT_S
            while True:  # it learns its removal once the entry reaches it committed
                try:
                    stub.Get(kv_pb2.GetRequest(key=b"anything", consistency=kv_pb2.STALE), timeout=10)
                except grpc.RpcError as error:
                    if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                        assert "removed from the cluster" in error.details()
                        break
                assert time.monotonic() < deadline, f"{leader} never refused"
                time.sleep(0.1)
            # Its status names no leader: the one it last knew is stale.
            status = cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(), timeout=10)
            assert (status.leader, status.leader_client_address) == ("", ""), status
        cluster.stop_node(leader)
        again = cluster.serve_until_exit(leader, timeout_s=CLI_TIMEOUT_S)
        assert again.returncode == 3, again.stderr
        assert "was removed from the cluster" in again.stderr
        cluster.forget(leader)
        with Client(cluster.endpoints, retry=Retry(deadline_s=CHANGE_TIMEOUT_S)) as client:
            client.put("after", "removal")
            assert client.get("after") == b"removal"


def test_health_exits_0_when_healthy_1_when_a_member_is_down_and_3_without_a_leader(tmp_path):
    with GrowingCluster(tmp_path, nodes=3) as cluster:
        leader = cluster.wait_for_leader(LEADER_TIMEOUT_S)
        endpoints = ",".join(cluster.endpoints)
        healthy = tandemkv("health", "--endpoints", endpoints, "--timeout", "10")
        assert healthy.returncode == 0, healthy.stderr
        assert healthy.stdout.count(" ok") == 3
        followers = [n for n in ("n1", "n2", "n3") if n != leader]
        cluster.stop_node(followers[0])
        degraded = tandemkv("health", "--endpoints", endpoints, "--timeout", "10")
        assert degraded.returncode == 1, degraded.stderr
        problems = [line for line in degraded.stderr.splitlines() if "unreachable" in line]
        assert len(problems) == 1 and problems[0].startswith(f"tandemkv: {followers[0]} "), degraded.stderr
        cluster.stop_node(followers[1])
        deadline = time.monotonic() + LEADER_TIMEOUT_S
        while True:  # the lone node keeps believing it leads for up to leader_fallback_timeout
            no_leader = tandemkv("health", "--endpoints", endpoints, "--timeout", "10")
            if no_leader.returncode == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert no_leader.returncode == 3, no_leader.stderr
        assert "no leader" in no_leader.stderr
