"""Leases, registry, locks, elections and watches through embedded `Node`s
(three members in this process, on 127.0.0.1).

Covers what needs the running pieces: the lease ticker driving expiry,
waiting for locks and campaigns, and watch streams over the history."""

from __future__ import annotations

import threading
import time

import pytest

from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import kv_pb2, watch_pb2
from tests.test_embedded_node import READY_S, Cluster

TTL_MS = 1_500


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.stop()


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_a_name_is_released_when_its_lease_stops_being_renewed(cluster):
    a, b, c = cluster.nodes.values()
    lease = a.lease_grant(TTL_MS).id
    assert a.register(b"svc", b"pid-1", lease).registered
    renewed_until = time.monotonic() + 2 * TTL_MS / 1000
    while time.monotonic() < renewed_until:  # kept alive past its TTL
        last_renewal_sent = time.monotonic()
        a.lease_keepalive(lease)
        time.sleep(0.2)
    assert all(n.whereis(b"svc").found for n in cluster.nodes.values())
    wait_until(lambda: not b.whereis(b"svc").found, TTL_MS / 1000 + 3, "the name to be released")
    # The contract: never before its TTL after the last renewal was sent.
    assert time.monotonic() - last_renewal_sent >= TTL_MS / 1000, "released before its TTL"
    assert not c.whereis(b"svc").found


def test_a_waiting_lock_is_granted_when_the_holder_releases_with_a_higher_token(cluster):
    a, b, _ = cluster.nodes.values()
    first = a.lock_acquire(co.LockAcquireRequest(name=b"L", lease=a.lease_grant(60_000).id))
    assert first.acquired
    result = {}
    waiter = threading.Thread(target=lambda: result.update(r=b.lock_acquire(
        co.LockAcquireRequest(name=b"L", lease=b.lease_grant(60_000).id, wait_ms=10_000))))
    waiter.start()
    a.lock_release(b"L", first.claim.token)
    waiter.join(15)
    assert result["r"].acquired and result["r"].claim.token > first.claim.token


def test_campaign_waits_until_the_leader_resigns(cluster):
    a, b, _ = cluster.nodes.values()
    leader = a.campaign(co.CampaignRequest(election=b"E", value=b"a",
                                           lease=a.lease_grant(60_000).id))
    assert leader.elected
    result = {}
    second = threading.Thread(target=lambda: result.update(r=b.campaign(co.CampaignRequest(
        election=b"E", value=b"b", lease=b.lease_grant(60_000).id, wait_ms=10_000))))
    second.start()
    wait_until(lambda: len(list(_candidates(a))) == 2, 5, "the second candidate to queue")
    a.resign(b"E", leader.claim.token)
    second.join(15)
    assert result["r"].elected and result["r"].claim.token > leader.claim.token


def _candidates(node):
    from tandemkv.server.strong import coordination

    with node._state.read_view() as view:
        return coordination.candidates(view, b"E")


def test_a_watch_replays_history_then_follows_new_writes(cluster):
    a, b, _ = cluster.nodes.values()
    first = a.put(b"w/1", b"one").header.revision
    a.put(b"other", b"x")
    a.delete(b"w/1")
    stop = threading.Event()
    request = watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=b"w/", prefix=True),
                                     start_revision=first, prev_kv=True)
    stream = b.watch(request, stop=stop)
    seen = []  # b may not have applied the delete yet: read on until it has
    while len(seen) < 2:
        seen += list(next(stream).events)
    assert [(e.type, e.kv.key) for e in seen] == [(watch_pb2.Event.PUT, b"w/1"),
                                                  (watch_pb2.Event.DELETE, b"w/1")]
    assert seen[1].prev_kv.value == b"one"
    later = a.put(b"w/2", b"two").header.revision
    following = next(stream).events
    assert [(e.kv.key, e.kv.mod_revision) for e in following] == [(b"w/2", later)]
    stop.set()


def test_keys_attached_to_a_revoked_lease_are_deleted_with_expire_events(cluster):
    a, _, _ = cluster.nodes.values()
    lease = a.lease_grant(60_000).id
    start = a.put(b"t/1", b"x", ).header.revision
    a.propose(kv_pb2.PutRequest(key=b"t/2", value=b"y", lease=lease))
    assert a.lease_ttl(lease, attached=True).keys == [b"t/2"]
    a.lease_revoke(lease)
    assert not a.get(b"t/2").found and a.get(b"t/1").found
    stop = threading.Event()
    stream = a.watch(watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=b"t/", prefix=True),
                                            start_revision=start), stop=stop)
    kinds = [e.type for e in next(stream).events]
    assert kinds == [watch_pb2.Event.PUT, watch_pb2.Event.PUT, watch_pb2.Event.EXPIRE]
    stop.set()
