"""Election observes and CRDT subscriptions hold no thread while they wait:
2,000 of each open on one node leave the process's thread count where it
was, and every one of them still gets its change; a slow reader is given
the latest value, never a stale one; past STREAMS_OPEN_MAX one more is
RESOURCE_EXHAUSTED while unary calls still run, a cancel frees its slot,
and a stopping server ends the rest cleanly.

Method: an embedded one-node cluster in this process, served by
`build_server` on 127.0.0.1. The streams are opened by a grpc.aio client
on the test's own event loop (no thread per call on either side), over a
few channels. Threads are counted both as Python threads
(threading.active_count) and as the process's OS threads (/proc/self/task),
once with one stream of each kind open (so whatever starts with the first
one is counted) and once with all of them.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import grpc
import grpc.aio
import pytest

from tandemkv.errors import NotFound
from tandemkv.server.api import build_server
from tandemkv.server.node.crdt import Increment, TableKind
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import coordination_pb2_grpc, crdt_pb2, crdt_pb2_grpc, kv_pb2, kv_pb2_grpc
from tests.test_embedded_node import Cluster

pytestmark = pytest.mark.timeout(300)

STREAMS_EACH = 2_000
ELECTIONS = 20
TABLES = 4
CHANNELS = 8
WAIT_S = 120.0
# Threads the process may gain while the streams open, whatever their
# number (grpc core's own pollers and executors come and go).
THREADS_GROWTH_MAX = 16
STREAMS_OPEN_MAX_SMALL = 4


def thread_counts() -> tuple[int, int]:
    return threading.active_count(), len(os.listdir("/proc/self/task"))


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("streams"), size=1)
    cluster.start()
    try:
        yield cluster.leader()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def elections(node):
    """Election name -> the leader's claim, each led by one candidate."""
    lease = node.lease_grant(600_000).id
    claims = {}
    for i in range(ELECTIONS):
        election = f"e{i}".encode()
        claims[election] = node.campaign(co.CampaignRequest(election=election, value=b"v1", lease=lease)).claim
    return claims


@pytest.fixture(scope="module")
def tables(node):
    names = [f"t{i}" for i in range(TABLES)]
    for name in names:
        node.crdt.create_table(name, TableKind.G_COUNTER)
    return names


async def first_and_rest(call):
    """The stream's first response, and an iterator over the rest."""
    responses = call.__aiter__()
    return await responses.__anext__(), responses


async def next_matching(responses, matches, limit: int = 10):
    """The first of the next `limit` responses that `matches`."""
    for _ in range(limit):
        response = await responses.__anext__()
        if matches(response):
            return response
    raise AssertionError(f"no matching response within {limit}")


def test_thousands_of_observes_and_subscriptions_hold_no_thread_and_each_gets_its_change(
        node, elections, tables):
    server = build_server(node, "127.0.0.1:0")
    server.start()
    try:
        asyncio.run(asyncio.wait_for(_open_many_and_change(server, node, elections, tables), WAIT_S))
    finally:
        server.stop(grace_s=0)


async def _open_many_and_change(server, node, elections, tables):
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") for _ in range(CHANNELS)]
    election_names = sorted(elections)
    try:
        observe = [coordination_pb2_grpc.ElectionStub(c).Observe for c in channels]
        subscribe = [crdt_pb2_grpc.CrdtStub(c).Subscribe for c in channels]

        def open_observe(i):
            return observe[i % CHANNELS](co.LeaderRequest(election=election_names[i % ELECTIONS]))

        def open_subscribe(i):
            return subscribe[i % CHANNELS](crdt_pb2.CrdtSubscribeRequest(table=tables[i % TABLES]))

        calls = [open_observe(0), open_subscribe(0)]
        opened = [await first_and_rest(call) for call in calls]
        python_before, os_before = thread_counts()
        more = [open_observe(i) for i in range(1, STREAMS_EACH)] + [
            open_subscribe(i) for i in range(1, STREAMS_EACH)]
        opened += await asyncio.gather(*(first_and_rest(call) for call in more))
        calls += more
        python_after, os_after = thread_counts()
        assert server.streams_open == 2 * STREAMS_EACH
        assert python_after - python_before <= THREADS_GROWTH_MAX, (python_before, python_after)
        assert os_after - os_before <= THREADS_GROWTH_MAX, (os_before, os_after)

        observed = opened[:1] + opened[2:STREAMS_EACH + 1]
        subscribed = opened[1:2] + opened[STREAMS_EACH + 1:]
        assert all(first.found and first.leader.value == b"v1" for first, _ in observed)
        assert all(first.present and first.counter == 0 for first, _ in subscribed)

        for election, claim in elections.items():
            assert node.proclaim(election, claim.token, b"v2").proclaimed
        for table in tables:
            node.crdt.update(table, Increment(5))
        changed = await asyncio.gather(
            *(next_matching(rest, lambda r: r.leader.value == b"v2") for _, rest in observed),
            *(next_matching(rest, lambda r: r.counter == 5) for _, rest in subscribed))
        assert len(changed) == 2 * STREAMS_EACH
        assert all(response.leader.token == elections[response.leader.name].token
                   for response in changed[:STREAMS_EACH])
        for call in calls:
            call.cancel()
    finally:
        for channel in channels:
            await channel.close()


def test_a_slow_observer_is_given_the_latest_leader_never_a_stale_one(node, elections):
    election, claim = next(iter(elections.items()))
    order = [b"a", b"b", b"c"]
    feed = node.leader_feed(election, lambda: None)  # a reader that only polls
    try:
        first = feed.take()
        assert first is not None and first.found
        assert feed.take() is None  # nothing new yet
        for value in order:
            assert node.proclaim(election, claim.token, value).proclaimed
        taken = _take_until(feed, lambda response: response.leader.value == order[-1])
        values = [response.leader.value for response in taken]
        assert values == sorted(values, key=order.index) and len(set(values)) == len(values)
        assert feed.take() is None
    finally:
        feed.close()


def test_a_slow_subscriber_is_given_the_latest_value_and_notfound_once_the_table_is_dropped(node):
    node.crdt.create_table("brief", TableKind.G_COUNTER)
    feed = node.crdt.value_feed("brief", lambda: None)
    try:
        assert feed.take().value == 0
        for _ in range(3):
            node.crdt.update("brief", Increment(1))
        taken = [read.value for read in _take_until(feed, lambda read: read.value == 3)]
        assert taken == sorted(taken) and len(set(taken)) == len(taken)
        assert node.crdt.drop_table("brief").dropped
        with pytest.raises(NotFound, match="'brief'"):
            _take_until(feed, lambda read: False)
        assert feed.over
    finally:
        feed.close()


def test_streams_past_the_limit_are_refused_while_unary_calls_run_and_a_cancel_frees_a_slot(
        node, elections, tables):
    server = build_server(node, "127.0.0.1:0", streams_open_max=STREAMS_OPEN_MAX_SMALL)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            election = co.LeaderRequest(election=sorted(elections)[0])
            table = crdt_pb2.CrdtSubscribeRequest(table=tables[0])
            observe = coordination_pb2_grpc.ElectionStub(channel).Observe
            subscribe = crdt_pb2_grpc.CrdtStub(channel).Subscribe
            held = [observe(election), observe(election), subscribe(table), subscribe(table)]
            for stream in held:
                next(stream)
            for refused in (observe(election, timeout=WAIT_S), subscribe(table, timeout=WAIT_S)):
                with pytest.raises(grpc.RpcError) as caught:
                    next(refused)
                assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert f"STREAMS_OPEN_MAX={STREAMS_OPEN_MAX_SMALL}" in caught.value.details()
            put = kv_pb2_grpc.KVStub(channel).Put(kv_pb2.PutRequest(key=b"k", value=b"v"), timeout=WAIT_S)
            assert put.header.revision > 0
            held[0].cancel()
            _wait_until(lambda: server.streams_open < STREAMS_OPEN_MAX_SMALL, "the cancelled slot given back")
            reopened = subscribe(table)
            assert next(reopened).table == tables[0]
            server.streams.stop_all()
            for stream in (*held[1:], reopened):
                assert list(stream) == []  # ended cleanly by the stopping server
    finally:
        server.stop(grace_s=0)


def _take_until(feed, done) -> list:
    """What the feed gives, polled, up to and including the first value
    `done` accepts."""
    taken = []
    deadline = time.monotonic() + WAIT_S
    while not (taken and done(taken[-1])):
        assert time.monotonic() < deadline, f"not within {WAIT_S} s; taken so far: {taken}"
        value = feed.take()
        if value is None:
            time.sleep(0.01)
        else:
            taken.append(value)
    return taken


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        time.sleep(0.01)
