"""Failover with real processes: kill -9 the leader while several threads
increment one counter through the SDK. Every increment has its own request
id and is resubmitted with that id until acknowledged, so the counter must
end exactly at the number of acknowledged increments: none lost, none
applied twice. Also: a killed or wiped node rejoins and catches up."""

from __future__ import annotations

import os
import threading
import time

import grpc
import pytest

from tandemkv import errors, limits
from tandemkv.client import Client, Retry
from tandemkv.v1 import kv_pb2, kv_pb2_grpc
from tests.support.cluster import ServeCluster

LEADER_TIMEOUT_S = 60.0
WORKERS = 6
INCREMENTS_PER_WORKER = 40
# Resubmissions of one increment (same request id) after the SDK gives up.
RESUBMITS_MAX = 5
ACKED_BEFORE_KILL = 40
JOIN_TIMEOUT_S = 180.0


def increment_until_acknowledged(client: Client, acked: list[int], index: int, failures: list[str]) -> None:
    counter = client.counter("failover")
    for _ in range(INCREMENTS_PER_WORKER):
        request_id = os.urandom(limits.REQUEST_ID_BYTES)
        for _ in range(RESUBMITS_MAX):
            try:
                counter.incr(request_id=request_id)
            except (errors.OutcomeUnknown, errors.Unavailable):
                continue
            acked[index] += 1
            break
        else:
            failures.append(request_id.hex())


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_killing_the_leader_during_concurrent_increments_loses_and_duplicates_nothing(tmp_path):
    with ServeCluster(tmp_path, nodes=3) as cluster:
        leader = cluster.wait_for_leader(LEADER_TIMEOUT_S)
        acked, failures = [0] * WORKERS, []
        with Client(cluster.endpoints, retry=Retry(deadline_s=30.0)) as client:
            threads = [threading.Thread(target=increment_until_acknowledged, args=(client, acked, i, failures))
                       for i in range(WORKERS)]
            for thread in threads:
                thread.start()
            wait_until(lambda: sum(acked) >= ACKED_BEFORE_KILL, 60, "increments before the kill")
            cluster.kill(leader)
            killed_at = sum(acked)
            for thread in threads:
                thread.join(timeout=JOIN_TIMEOUT_S)
            assert not any(thread.is_alive() for thread in threads)
            survivors = [m.name for m in cluster.members if m.name != leader]
            new_leader = cluster.wait_for_leader(LEADER_TIMEOUT_S, among=survivors)
            final = client.counter("failover").get()
        assert failures == []
        assert killed_at < WORKERS * INCREMENTS_PER_WORKER, "the kill came after every increment"
        assert new_leader != leader
        assert final == sum(acked) == WORKERS * INCREMENTS_PER_WORKER
        cluster.restart(leader)
        leader_after_rejoin = cluster.wait_for_leader(LEADER_TIMEOUT_S)
        assert leader_after_rejoin in {m.name for m in cluster.members}
        with Client([cluster.endpoint(leader)]) as rejoined:
            assert rejoined.counter("failover").get(stale=False) == final


def test_a_wiped_follower_rejoins_and_catches_up(tmp_path):
    with ServeCluster(tmp_path, nodes=3) as cluster:
        leader = cluster.wait_for_leader(LEADER_TIMEOUT_S)
        follower = next(m.name for m in cluster.members if m.name != leader)
        with Client(cluster.endpoints) as client:
            for k in range(20):
                client.put(f"wipe/{k}", str(k))
            assert cluster.stop_node(follower) == 0
            cluster.wipe(follower)
            client.put("wipe/after", "yes")
            cluster.restart(follower)
            cluster.wait_for_leader(LEADER_TIMEOUT_S)
        with Client([cluster.endpoint(follower)]) as direct:
            wait_until(lambda: direct.get("wipe/after", stale=True) == b"yes", 60, "the wiped node to catch up")
            assert len(direct.range("wipe/", stale=True)) == 21


def test_a_read_on_a_node_without_a_leader_is_refused_promptly(tmp_path):
    cluster = ServeCluster(tmp_path, nodes=3)
    try:
        cluster.restart("n1")
        with grpc.insecure_channel(cluster.endpoint("n1")) as channel:
            grpc.channel_ready_future(channel).result(timeout=LEADER_TIMEOUT_S)
            for _ in range(3):
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as caught:
                    kv_pb2_grpc.KVStub(channel).Get(kv_pb2.GetRequest(key=b"k"), timeout=5.0)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() - started < 4.0
    finally:
        cluster.stop_all()
