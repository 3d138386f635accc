"""The lease clock on a real node: ticks only while a lease exists, watch
progress at its interval whatever the ticks do, and leases, registry names
and locks under a leader whose clock runs fast.

Method: a single-node cluster in this process (it leads at once), with the
lease ticker's clock injected through `NodeConfig.monotonic`; for the SDK
cases, a gRPC server over that node on 127.0.0.1. The fast clocks run 2x
and 4x real time; the client and the test measure with the real clock. The
bound asserted: a lease lives at least TTL / 1.2 after its last renewal
(one tick advances at most LEASE_TICK_ADVANCE_MS_MAX = 1.2 tick intervals).
"""

from __future__ import annotations

import threading
import time

import pytest

from tandemkv import limits
from tandemkv.client import Client
from tandemkv.server import Node, NodeConfig
from tandemkv.server.api import build_server
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import kv_pb2, watch_pb2
from tests.support.ports import free_ports
from tests.test_embedded_coordination import wait_until
from tests.test_embedded_node import FAST, READY_S

# The most a tick advances the lease clock per tick interval of real time.
ADVANCE_RATIO_MAX = limits.LEASE_TICK_ADVANCE_MS_MAX / limits.LEASE_TICK_INTERVAL_MS
# How long an idle node is watched for writes: a dozen tick intervals.
IDLE_WINDOW_S = 12 * limits.LEASE_TICK_INTERVAL_MS / 1000
# Generous bound for anything that should happen within a few seconds.
EVENTUALLY_S = 15.0


def fast_clock(rate: float):
    """A monotonic clock that runs `rate` times real time."""
    origin = time.monotonic()
    return lambda: origin + rate * (time.monotonic() - origin)


def solo_node(tmp_path, monotonic=time.monotonic) -> Node:
    raft_port, client_port = free_ports(2)
    config = NodeConfig(name="solo", data_dir=tmp_path / "solo",
                        raft_address=f"127.0.0.1:{raft_port}",
                        client_address=f"127.0.0.1:{client_port}", timings=FAST,
                        monotonic=monotonic)
    node = Node(config)
    node.start()
    node.wait_ready(READY_S)
    return node


@pytest.fixture
def node(tmp_path):
    node = solo_node(tmp_path)
    yield node
    node.stop()


def lease_gone_after_last_renewal_s(node: Node, ttl_ms: int) -> float:
    """Grants a lease, renews it once, and returns the real seconds from
    sending that renewal to the lease being gone."""
    lease = node.lease_grant(ttl_ms).id
    wait_until(lambda: node.lease_ttl(lease).remaining_ms < ttl_ms, EVENTUALLY_S,
               "the grant's first tick")
    renewal_sent = time.monotonic()
    assert node.lease_keepalive(lease).found
    wait_until(lambda: not node.lease_ttl(lease).found, ttl_ms / 1000 + EVENTUALLY_S,
               "the lease to expire")
    return time.monotonic() - renewal_sent


def test_an_idle_node_proposes_nothing_and_a_lease_brings_the_ticks_back(node):
    before = node.status().commit_index
    time.sleep(IDLE_WINDOW_S)  # an observation window: nothing may happen in it
    assert node.status().commit_index == before, "an idle node wrote to its log"
    gone_after_s = lease_gone_after_last_renewal_s(node, 1_000)
    assert gone_after_s >= 1.0, f"a TTL 1 s lease expired {gone_after_s:.3f} s after renewal"
    assert node.status().commit_index > before + 4, "ticks did not resume with a lease"
    quiet_from = node.status().commit_index  # no lease left: quiet again
    time.sleep(IDLE_WINDOW_S)
    assert node.status().commit_index <= quiet_from + 1


def test_watch_progress_arrives_at_its_interval_while_a_lease_ticks(node):
    lease = node.lease_grant(60_000).id
    stop = threading.Event()
    keeper = threading.Thread(target=lambda: [node.lease_keepalive(lease)
                                              for _ in iter(lambda: stop.wait(0.2), True)])
    keeper.start()
    request = watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=b"idle"),
                                     progress_interval_ms=1_000)
    progress = 0
    window_ends = time.monotonic() + 5.0
    try:
        for response in node.watch(request, stop=stop):
            assert not response.events, "nothing writes the watched key"
            progress += response.progress
            if progress >= 2 or time.monotonic() >= window_ends:
                break
    finally:
        stop.set()
        keeper.join()
    assert progress >= 2, f"{progress} progress notifications in 5 s at a 1 s interval"


@pytest.mark.parametrize("rate", [2.0, 4.0])
def test_a_fast_leader_shortens_a_lease_at_most_to_ttl_over_1_2(tmp_path, rate):
    node = solo_node(tmp_path, fast_clock(rate))
    try:
        gone_after_s = lease_gone_after_last_renewal_s(node, 2_000)
        assert gone_after_s >= 2.0 / ADVANCE_RATIO_MAX, (
            f"at {rate}x a TTL 2 s lease expired {gone_after_s:.3f} s after its renewal")
        # A waiting lock is granted only once the holder's lease expired.
        holder_lease = node.lease_grant(2_000).id
        assert node.lock_acquire(co.LockAcquireRequest(name=b"L", lease=holder_lease)).acquired
        asked = time.monotonic()
        waiter = node.lock_acquire(co.LockAcquireRequest(
            name=b"L", lease=node.lease_grant(60_000).id, wait_ms=int(EVENTUALLY_S * 1000)))
        assert waiter.acquired and waiter.claim.token > holder_lease
        assert time.monotonic() - asked >= 2.0 / ADVANCE_RATIO_MAX
    finally:
        node.stop()


@pytest.mark.parametrize("rate", [2.0, 4.0])
def test_a_registry_hold_renewed_on_time_survives_a_fast_leader(tmp_path, rate):
    node = solo_node(tmp_path, fast_clock(rate))
    server = build_server(node, node.config.client_address)
    server.start()
    try:
        with Client([node.config.client_address]) as client:
            hold = client.registry.hold("svc", "pid-1", ttl=5)
            with hold as token:
                held_until = time.monotonic() + 8.0  # past a TTL at either rate
                while time.monotonic() < held_until and not hold.lost.is_set():
                    registration = client.registry.whereis("svc")
                    assert registration is not None and registration.token == token, (
                        f"the name was released while renewed on time, at {rate}x")
                    hold.lost.wait(0.5)
                assert not hold.lost.is_set(), f"the hold was lost at {rate}x"
            assert not node.whereis(b"svc").found, "released on exit"
        assert not node.lease_list().leases, "the hold's lease revoked on exit"
    finally:
        server.stop()
        node.stop()

