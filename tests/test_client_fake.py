"""The SDK against gRPC servers over fake nodes: every call round-trips,
retries reuse one request id, back off as the `Retry` policy says (with an
injected sleep and clock, so nothing waits for real), follow leader hints,
fail over past dead endpoints, and give up with the right error; status
decodes each node's gossip view."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest

from tandemkv import errors
from tandemkv.client import AsyncClient, Client, GossipPeer, GossipView, Op, Retry
from tandemkv.server.api import build_server
from tests.support.fake_node import FakeGossipPlane, FakeNode


class FakeTime:
    """A clock that only moves when `sleep` is called."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def retry_for(fake_time: FakeTime, **limits) -> Retry:
    # Jitter off: these tests check the waits' ceilings (tests/test_retry_jitter.py the draws).
    return Retry(sleep=fake_time.sleep, async_sleep=fake_time.async_sleep, clock=fake_time.clock,
                 **{"jitter": lambda: 1.0, **limits})


def dead_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def test_every_call_round_trips_through_the_sync_client(fake_server, fake_node):
    with Client([fake_server]) as client:
        assert client.put("k", "v").revision == 1
        assert client.get("k") == b"v"
        assert client.get_kv(b"k").value == b"v"
        assert client.get("missing") is None
        assert [kv.key for kv in client.range("")] == [b"k"]
        assert client.delete("k") == 1
        hits = client.counter("hits")
        assert (hits.incr(), hits.incr(5), hits.decr(2)) == (1, 6, 4)
        assert hits.set(10) == 4 and hits.get() == 10
        assert hits.compare_and_set(10, 11) is True and hits.compare_and_set(10, 12) is False
        assert hits.delete() is True
        assert client.txn().compare_value("k", "==", "v").on_success(Op.put("k", "w")).commit().succeeded
        assert client.status().nodes[0].name == "fake"


def test_every_call_round_trips_through_the_async_client(fake_server):
    async def scenario():
        async with AsyncClient([fake_server]) as client:
            await client.put("k", "v")
            assert await client.get("k") == b"v"
            assert len(await client.range("k")) == 1
            assert await client.delete("k") == 1
            assert await client.counter("c").incr(3) == 3
            assert (await client.txn().on_success(Op.incr("c")).commit()).succeeded
            assert (await client.status()).term == 3

    asyncio.run(scenario())


EXPECTED_GOSSIP = GossipView(12, (GossipPeer("n2", "alive", 0, 1_700_000_011_000),
                                   GossipPeer("n3", "suspect", 4, 1_700_000_007_000),
                                   GossipPeer("n4", "dead", 12, 0)),
                              {"bad_mac": 2, "clock_drift": 1})


def test_both_clients_show_each_nodes_gossip_view(fake_server, fake_node):
    fake_node.available = FakeGossipPlane()

    async def async_status():
        async with AsyncClient([fake_server]) as client:
            return await client.status()

    with Client([fake_server]) as client:
        synced = client.status().nodes[0].gossip
    assert synced == asyncio.run(async_status()).nodes[0].gossip == EXPECTED_GOSSIP
    assert synced.alive == 1


def test_a_node_without_a_running_plane_has_no_gossip_view(fake_server, fake_node):
    with Client([fake_server]) as client:
        node = client.status().nodes[0]
    assert node.name == "fake" and node.gossip is None


def test_a_retried_write_reuses_its_request_id_and_applies_once(fake_server, fake_node, fake_time):
    fake_node.errors.extend([errors.Unavailable("no leader"), errors.OutcomeUnknown("timeout")])
    with Client([fake_server], retry=retry_for(fake_time)) as client:
        assert client.counter("c").incr(7) == 7
    ids = {call.request.request_id for call in fake_node.calls}
    assert len(fake_node.calls) == 3 and len(ids) == 1 and len(ids.pop()) == 16
    assert fake_time.sleeps == [0.05, 0.1]
    assert fake_node.counters[b"c"] == 7


def test_a_lost_answer_is_retried_and_the_write_applies_once(fake_server, fake_node, fake_time):
    fake_node.answers_to_lose = 1
    with Client([fake_server], retry=retry_for(fake_time)) as client:
        assert client.counter("c").incr(2) == 2
        assert client.counter("c").get() == 2
    assert len(fake_node.calls) == 3
    assert fake_node.calls[0].request.request_id == fake_node.calls[1].request.request_id


def test_giving_up_after_attempts_max_raises_unavailable(fake_server, fake_node, fake_time):
    fake_node.errors.extend(errors.Unavailable("no leader") for _ in range(10))
    with Client([fake_server], retry=retry_for(fake_time, attempts_max=4)) as client:
        with pytest.raises(errors.Unavailable, match="gave up after 4 attempts"):
            client.put("k", "v")
    assert len(fake_node.calls) == 4
    assert fake_time.sleeps == [0.05, 0.1, 0.2]


def test_the_default_policy_waits_through_a_slow_leader_election(fake_server, fake_node, fake_time):
    fake_node.errors.extend(errors.Unavailable("no leader") for _ in range(100))
    # Each wait at the mean of its full-jitter draw.
    retry = retry_for(fake_time, jitter=lambda: 0.5)
    with Client([fake_server], retry=retry) as client:
        with pytest.raises(errors.Unavailable):
            client.put("k", "v")
    assert sum(fake_time.sleeps) >= 15.0, "gives up before several election timeouts have passed"


def test_an_unknown_outcome_is_never_reported_as_unavailable(fake_server, fake_node, fake_time):
    fake_node.errors.extend([errors.OutcomeUnknown("timeout"), errors.Unavailable("no leader")])
    with Client([fake_server], retry=retry_for(fake_time, attempts_max=2)) as client:
        with pytest.raises(errors.OutcomeUnknown) as caught:
            client.counter("c").incr()
    assert caught.value.request_id == fake_node.calls[0].request.request_id


def test_a_read_whose_answers_were_lost_is_unavailable_never_an_unknown_outcome(
        fake_server, fake_node, fake_time):
    fake_node.errors.extend(errors.OutcomeUnknown("timeout") for _ in range(2))
    with Client([fake_server], retry=retry_for(fake_time, attempts_max=2)) as client:
        with pytest.raises(errors.Unavailable, match="read changed nothing"):
            client.get("k")


def test_the_overall_deadline_bounds_the_retries(fake_server, fake_node, fake_time):
    fake_node.errors.extend(errors.Unavailable("no leader") for _ in range(50))
    retry = retry_for(fake_time, attempts_max=50, deadline_s=1.0, backoff_max_s=0.4)
    with Client([fake_server], retry=retry) as client:
        with pytest.raises(errors.Unavailable):
            client.put("k", "v")
    assert sum(fake_time.sleeps) < 1.0
    assert len(fake_node.calls) == len(fake_time.sleeps) + 1 < 50


def test_errors_that_retrying_cannot_fix_are_raised_at_once(fake_server, fake_node, fake_time):
    fake_node.errors.append(errors.OutOfRange("int64 overflow"))
    with Client([fake_server], retry=retry_for(fake_time)) as client:
        with pytest.raises(errors.OutOfRange):
            client.counter("c").incr()
        with pytest.raises(errors.InvalidArgument, match="KEY_SIZE_BYTES_MAX"):
            client.put("", "v")
    assert len(fake_node.calls) == 1 and fake_time.sleeps == []


def test_a_leader_hint_redirects_at_once_with_the_same_request_id(fake_time):
    follower, leader = FakeNode(), FakeNode()
    servers = [build_server(node, "127.0.0.1:0") for node in (follower, leader)]
    for server in servers:
        server.start()
    try:
        leader_address = f"127.0.0.1:{servers[1].port}"
        follower.errors.append(errors.Unavailable("not the leader", leader_hint=leader_address))
        with Client([f"127.0.0.1:{servers[0].port}"], retry=retry_for(fake_time)) as client:
            assert client.counter("c").incr(4) == 4
            assert client.leader() == leader_address
        assert fake_time.sleeps == [0.0]
        assert follower.calls[0].request.request_id == leader.calls[0].request.request_id
    finally:
        for server in servers:
            server.stop(grace_s=0)


def test_the_client_fails_over_past_a_dead_endpoint(fake_server, fake_node, fake_time):
    with Client([dead_endpoint(), fake_server], retry=retry_for(fake_time)) as client:
        assert client.put("k", "v").revision == 1
        assert client.get("k") == b"v"
    assert len(fake_node.calls) == 2


def test_the_async_client_retries_with_the_injected_sleep(fake_server, fake_node, fake_time):
    fake_node.errors.extend([errors.Unavailable("no leader")] * 3)

    async def scenario():
        async with AsyncClient([dead_endpoint(), fake_server], retry=retry_for(fake_time)) as client:
            return await client.counter("c").incr(9)

    assert asyncio.run(scenario()) == 9
    assert len({call.request.request_id for call in fake_node.calls}) == 1
    assert len(fake_time.sleeps) >= 3


def test_status_lists_unreachable_endpoints_with_an_error(fake_server):
    with Client([fake_server, dead_endpoint()], retry=Retry(attempts_max=1)) as client:
        status = client.status()
    assert [bool(node.error) for node in status.nodes] == [False, True]
    assert status.leader == "fake"


def test_the_retry_policy_checks_its_limits():
    with pytest.raises(ValueError, match="attempts_max"):
        Retry(attempts_max=0)
    assert [Retry(jitter=lambda: 1.0).backoff_s(n) for n in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]


class _RpcError(grpc.RpcError):
    def __init__(self, code, details, trailing=()):
        self._code, self._details, self._trailing = code, details, trailing

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing


def test_unavailable_from_the_transport_after_sending_is_an_unknown_outcome():
    from tandemkv.client._retry import error_from_rpc

    rid = b"r" * 16
    lost = error_from_rpc(_RpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed"), rid)
    assert isinstance(lost, errors.OutcomeUnknown) and lost.request_id == rid
    never_sent = error_from_rpc(_RpcError(
        grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: ..."), rid)
    assert isinstance(never_sent, errors.Unavailable)
    refused = error_from_rpc(_RpcError(
        grpc.StatusCode.UNAVAILABLE, "node n1: write not applied (raft: MISSING_LEADER); retry",
        (("tandemkv-error", "Unavailable"), ("tandemkv-leader", "127.0.0.1:9")),), rid)
    assert isinstance(refused, errors.Unavailable) and refused.leader_hint == "127.0.0.1:9"
