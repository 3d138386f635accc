"""Leases, the registry, locks, elections and watches through the SDK
against real `tandemkv serve` processes: what a user relies on when a
process or a node dies.

Method: a 3-node `ServeCluster` shared by the module (tests that kill a
node restart it and wait for an agreed leader before they end), plus one
cluster started with a small watch history for the stalled-watcher test.
Every wait is bounded; timing bounds follow the documented lease contract
(a lease lives at least its TTL after its last renewal and at most one
lease tick more, plus any election in between)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest

from tandemkv import limits
from tandemkv.client import AlreadyExists, AsyncClient, Client, Compacted, NotAcquired, Retry
from tests.support.cluster import ServeCluster

LEADER_TIMEOUT_S = 60.0
TICK_S = limits.LEASE_TICK_INTERVAL_MS / 1000
POLL_S = 0.05
# Kills and elections: a retry budget that outlasts a leader election.
FAILOVER_RETRY = Retry(deadline_s=30.0, attempts_max=60, backoff_max_s=0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("coordination"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


@pytest.fixture
def client(cluster):
    with Client(cluster.endpoints, retry=FAILOVER_RETRY) as client:
        yield client


def wait_until(condition, timeout_s: float, what: str) -> float:
    """Polls `condition`; returns when it first held (monotonic seconds)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(POLL_S)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def kill_leader(cluster: ServeCluster) -> str:
    """kill -9 the leader; returns its name once the others agree on a new one."""
    leader = cluster.wait_for_leader(LEADER_TIMEOUT_S)
    cluster.kill(leader)
    cluster.wait_for_leader(LEADER_TIMEOUT_S)
    return leader


def heal(cluster: ServeCluster, name: str) -> None:
    cluster.restart(name)
    cluster.wait_for_leader(LEADER_TIMEOUT_S)


HOLDER = """
import sys, threading
from tandemkv.client import Client
with Client(sys.argv[1]) as client:
    with client.registry.hold(sys.argv[2], "holder-process", ttl=float(sys.argv[3])) as token:
        print(token, flush=True)
        threading.Event().wait()
"""


def test_a_name_held_by_a_killed_process_is_free_within_its_ttl_on_every_node(cluster, client):
    ttl_s = 2.0
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, ",".join(cluster.endpoints), "svc/held", str(ttl_s)],
                              stdout=subprocess.PIPE, text=True)
    try:
        token = int(holder.stdout.readline())
        assert client.registry.whereis("svc/held").token == token
        time.sleep(ttl_s * 1.5)  # past one TTL: the holder's renewals keep it
        assert client.registry.whereis("svc/held").token == token
        holder.kill()
        killed = time.monotonic()
        holder.wait(timeout=10)
        node_clients = [Client([e], retry=FAILOVER_RETRY) for e in cluster.endpoints]
        freed = max(wait_until(lambda c=c: c.registry.whereis("svc/held", stale=True) is None,
                               ttl_s + 5, "the name to be freed") for c in node_clients)
        assert freed - killed <= ttl_s + 1.0 + TICK_S + POLL_S
        assert all(c.registry.whereis("svc/held") is None for c in node_clients)
        for c in node_clients:
            c.close()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_many_clients_racing_for_one_name_one_wins_and_every_loser_sees_it(cluster):
    racers, outcomes = 8, []
    start = threading.Barrier(racers)

    def race(k: int) -> None:
        with Client(cluster.endpoints) as c:
            lease = c.lease(30)
            start.wait(timeout=30)
            try:
                outcomes.append(("won", f"racer-{k}".encode(), c.registry.register("race", f"racer-{k}", lease)))
            except AlreadyExists as error:
                outcomes.append(("lost", error.owner, error.token))

    threads = [threading.Thread(target=race, args=(k,)) for k in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [o for o in outcomes if o[0] == "won"]
    assert len(outcomes) == racers and len(winners) == 1
    assert {o[1:] for o in outcomes} == {winners[0][1:]}


def test_a_kept_alive_lease_survives_a_leader_failover_and_expires_once_renewal_stops(cluster, client):
    # Renewals go every TTL/3; the TTL leaves room for a failover (election
    # timeout up to 2.5 s plus the election) between two of them.
    ttl_s = 6.0
    lease = client.lease(ttl_s)
    client.put("leased/key", "v", lease=lease)
    lease.start_keepalive()
    killed = kill_leader(cluster)
    try:
        until = time.monotonic() + 2 * ttl_s
        while time.monotonic() < until:  # renewals continue through the new leader
            assert client.get("leased/key") == b"v", "the lease expired early"
            time.sleep(0.2)
        assert not lease.lost.is_set()
        lease.stop_keepalive()
        assert lease.renewed_at is not None
        expired = wait_until(lambda: lease.ttl() is None, ttl_s + 5, "the lease to expire")
        # Never before its TTL after the last renewal was sent.
        assert expired - lease.renewed_at >= ttl_s - POLL_S
        assert client.get("leased/key") is None
    finally:
        lease.stop_keepalive()
        heal(cluster, killed)


def test_lock_and_election_tokens_strictly_increase_across_holders_and_a_failover(cluster, client):
    tokens: dict[str, list[int]] = {"lock": [], "election": []}

    def one_round() -> None:
        with client.lock("tokens/lock", ttl=5, wait=10) as token:
            tokens["lock"].append(token)
        with client.election("tokens/election") as election:
            tokens["election"].append(election.campaign("me", ttl=5, wait=10))

    one_round()
    one_round()
    killed = kill_leader(cluster)
    try:
        one_round()
    finally:
        heal(cluster, killed)
    for kind, seen in tokens.items():
        assert seen == sorted(set(seen)) and len(seen) == 3, (kind, seen)


def test_a_second_lock_holder_waits_then_gets_a_higher_token(client):
    with client.lock("wait/lock", ttl=5, wait=5) as first:
        with pytest.raises(NotAcquired) as caught:
            with client.lock("wait/lock", ttl=5, wait=0.3):
                pass
        assert caught.value.token == first
    with client.lock("wait/lock", ttl=5, wait=5) as second:
        assert second > first


def test_a_watch_from_an_old_revision_replays_exactly_the_history(client):
    written = []
    for step in range(20):
        result = client.put(f"hist/{step % 4}", f"v{step}")
        written.append(("put", f"hist/{step % 4}".encode(), f"v{step}".encode(), result.revision))
        if step % 5 == 4:
            client.delete(f"hist/{step % 4}")
            written.append(("delete", f"hist/{step % 4}".encode(), b"", None))
    client.put("unrelated", "x")
    seen = []
    with client.watch("hist/", prefix=True, start_revision=written[0][3]) as events:
        for event in events:
            seen.append((event.type, event.key, event.value, event.revision))
            if len(seen) == len(written):
                break
    assert [s[:3] for s in seen] == [w[:3] for w in written]
    assert [s[3] for s in seen if s[0] == "put"] == [w[3] for w in written if w[0] == "put"]
    assert [s[3] for s in seen] == sorted(set(s[3] for s in seen))


def test_a_watch_resumes_across_a_node_kill_without_gaps_or_duplicates(cluster, client):
    count = 60
    seen: list[bytes] = []
    watcher = client.watch("resume/", prefix=True)
    done = threading.Event()

    def read() -> None:
        for event in watcher:
            seen.append(event.value)
            if len(seen) == count:
                break
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killed = None
    try:
        with Client(cluster.endpoints, retry=FAILOVER_RETRY) as writer:
            for n in range(count):
                writer.put(f"resume/{n % 7}", str(n))
                if n == count // 3:
                    killed = kill_leader(cluster)  # the watch reads from the leader
        assert done.wait(60), f"the watch stopped after {len(seen)} events"
        assert seen == [str(n).encode() for n in range(count)]
        assert watcher.reconnects >= 1, "the watch never lost its node"
    finally:
        watcher.close()
        if killed:
            heal(cluster, killed)


def test_an_election_is_observed_and_proclaimed(client):
    observer = client.election("observed").observe()
    leaders = iter(observer)
    assert next(leaders) is None
    election = client.election("observed")
    token = election.campaign("first", ttl=5, wait=5)
    assert next(leaders).value == b"first"
    assert election.proclaim("second")
    assert next(leaders).value == b"second" and election.leader().token == token
    election.resign()
    assert next(leaders) is None
    observer.close()


def test_the_async_client_has_the_same_recipes(cluster):
    async def scenario() -> None:
        async with AsyncClient(cluster.endpoints) as client:
            async with client.lease(5) as lease:
                await client.put("async/leased", "v", lease=lease)
                assert await lease.ttl() is not None
            assert await client.get("async/leased") is None
            async with client.registry.hold("async/name", "me", ttl=5) as token:
                assert (await client.registry.whereis("async/name")).token == token
                with pytest.raises(AlreadyExists) as caught:
                    await client.registry.register("async/name", "other", await client.lease(5))
                assert (caught.value.owner, caught.value.token) == (b"me", token)
            assert await client.registry.whereis("async/name") is None
            async with client.lock("async/lock", ttl=5) as lock_token:
                assert lock_token > token
            election = client.election("async/election")
            assert await election.campaign("a", ttl=5, wait=5) > lock_token
            await election.resign()
            first = (await client.put("async/watched", "1")).revision
            await client.put("async/watched", "2")
            async with client.watch("async/watched", prefix=False, start_revision=first) as events:
                values = []
                async for event in events:
                    values.append(event.value)
                    if len(values) == 2:
                        break
            assert values == [b"1", b"2"]

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_stalled_watcher_does_not_slow_writes_and_is_told_it_fell_behind(tmp_path):
    history = 200
    with ServeCluster(tmp_path, nodes=3, limits={"WATCH_HISTORY_REVISIONS_MAX": history}) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        with Client(cluster.endpoints) as client, Client(cluster.endpoints) as writer:
            events = iter(client.watch("stall/", prefix=True))
            first = writer.put("stall/first", "x").revision
            assert next(events).revision == first  # the stream is open; now it stalls
            value = "v" * 16 * 1024
            writers = [threading.Thread(target=lambda k=k: [writer.put(f"stall/{k}/{n}", value)
                                                            for n in range(250)]) for k in range(4)]
            started = time.monotonic()
            for thread in writers:
                thread.start()
            for thread in writers:
                thread.join(timeout=120)
            assert not any(t.is_alive() for t in writers), "writes stalled behind the watcher"
            assert time.monotonic() - started < 120
            delivered = 0
            with pytest.raises(Compacted) as caught:
                for _ in events:
                    delivered += 1
            assert caught.value.compact_revision > first + delivered
