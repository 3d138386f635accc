"""The SDK pipelines by itself: concurrent calls of one client coalesce into
`Batch.Call`s while earlier calls are in flight, a lone call goes at once as
its plain RPC, and each operation keeps its own answer, request id, retry and
exception.

Method: against a server over a fake node that serves batches (and counts the
RPCs it gets), the first calls are held inside the server until the calls
behind them have queued in the client, so which RPCs go out is known exactly;
then a real 3-node cluster takes 1,000 concurrent mixed operations from one
client (threads for `Client`, tasks for `AsyncClient`), checked against a
sequential model: per-key counters end at the sum of their increments, and
each worker reads back its own puts in its own order."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tandemkv import errors
from tandemkv.client import AsyncClient, Client
from tandemkv.server.api import build_server
from tandemkv.server.strong import validation
from tests.support.cluster import ServeCluster
from tests.support.fake_node import FakeNode
from tests.test_client_fake import FakeTime, retry_for

# Bounds of the waits for a state the test brings about (polled, never slept on blindly).
QUEUED_WAIT_S_MAX = 10.0
POLL_S = 0.005
LEADER_TIMEOUT_S = 60.0
WORKERS = 50
ROUNDS = 5  # each round: put, get, range, incr -> 50 workers x 5 rounds x 4 = 1,000 operations
COUNTERS = 5


class BatchingFakeNode(FakeNode):
    """A fake node that also serves `Batch.Call` (each op through the same
    dedup table, validated as the node validates it) and records every RPC
    it gets: a plain call by its request type, a batch as "Batch:<ops>"."""

    def __init__(self) -> None:
        super().__init__()
        self.rpcs: list[str] = []
        # Batches to apply and then fail with an unknown outcome.
        self.batches_to_lose = 0

    def propose(self, request, *, timeout_s):
        self.rpcs.append(type(request).__name__)
        return super().propose(request, timeout_s=timeout_s)

    def query(self, request, *, timeout_s):
        self.rpcs.append(type(request).__name__)
        return super().query(request, timeout_s=timeout_s)

    def batch(self, batch_ops, *, timeout_s):
        self.rpcs.append(f"Batch:{len(batch_ops)}")
        answers = []
        for op in batch_ops:
            try:
                validation.check_request(op)
                answers.append(self._serve("batch", op, timeout_s))
            except errors.TandemKVError as error:
                answers.append(error)
        if self.batches_to_lose > 0:
            self.batches_to_lose -= 1
            raise errors.OutcomeUnknown("the batch applied, but its answer was lost")
        return answers

    def batches(self) -> list[str]:
        return [rpc for rpc in self.rpcs if rpc.startswith("Batch:")]


@pytest.fixture
def node() -> BatchingFakeNode:
    return BatchingFakeNode()


@pytest.fixture
def server(node):
    started = build_server(node, "127.0.0.1:0")
    started.start()
    try:
        yield f"127.0.0.1:{started.port}"
    finally:
        started.stop(grace_s=0)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + QUEUED_WAIT_S_MAX
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(POLL_S)


def hold_two_then(node: BatchingFakeNode, client: Client, calls: list) -> list:
    """Runs `calls` (functions of the client) on threads, two flights allowed:
    the first two are held inside the server until the rest have queued in
    the client; returns
    each call's result or exception, in order."""
    node.block = threading.Event()
    client._pipeline.coalescer.flights_max = 2
    endpoint = client._router.endpoints[0]

    def outcome(call):
        try:
            return call()
        except errors.TandemKVError as error:
            return error

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(outcome, call) for call in calls[:2]]
        for _ in range(2):
            assert node.entered.acquire(timeout=QUEUED_WAIT_S_MAX), "the first calls never reached the server"
        futures += [pool.submit(outcome, call) for call in calls[2:]]
        wait_until(lambda: client._pipeline.coalescer.queued(endpoint) == len(calls) - 2, "calls to queue")
        node.block.set()
        return [future.result(timeout=QUEUED_WAIT_S_MAX) for future in futures]


def test_a_lone_call_is_sent_at_once_as_its_plain_rpc(server, node):
    with Client([server]) as client:
        assert client.put("k", "v").revision == 1
        assert client.get("k") == b"v"
        assert client.counter("c").incr(2) == 2
    assert node.rpcs == ["PutRequest", "GetRequest", "CounterIncrRequest"]


def test_calls_behind_calls_in_flight_go_as_one_batch_and_a_bad_one_fails_alone(server, node):
    with Client([server]) as client:
        calls = [lambda: client.put("a", "1"), lambda: client.put("b", "2"),
                 lambda: client.put("c", "3").revision, lambda: client.counter("n").incr(5),
                 lambda: client.put("", "bad key"), lambda: client.get("a"),
                 lambda: client.delete("b"), lambda: client.counter("n").incr(1)]
        results = hold_two_then(node, client, calls)
    assert sorted(node.rpcs[:2]) == ["PutRequest", "PutRequest"] and node.batches() == ["Batch:6"]
    assert isinstance(results[4], errors.InvalidArgument) and "key" in results[4].message
    assert results[3] + 1 == results[7] or results[7] + 5 == results[3]
    assert results[5] == b"1" and results[6] == 1
    assert node.kv == {b"a": b"1", b"c": b"3"} and node.counters == {b"n": 6}


def test_a_batch_retried_after_an_unknown_outcome_keeps_every_request_id_and_applies_nothing_twice(
        server, node):
    fake_time = FakeTime()
    node.batches_to_lose = 1
    with Client([server], retry=retry_for(fake_time)) as client:
        calls = [lambda k=k: client.counter(f"c{k}").incr(k + 1) for k in range(10)]
        results = hold_two_then(node, client, calls)
    assert results == list(range(1, 11)), "each retry got its own first answer"
    assert node.counters == {b"c%d" % k: k + 1 for k in range(10)}, "a retried increment applied twice"
    batched = [call.request.request_id for call in node.calls if call.kind == "batch"]
    first_batch, retried = batched[:8], [call.request.request_id for call in node.calls[10:]]
    assert node.batches()[0] == "Batch:8" and len(set(first_batch)) == 8
    assert set(retried) == set(first_batch), "the retries carry the lost batch's request ids"
    assert fake_time.sleeps, "the lost batch's operations waited per their own retry policy"


def test_without_the_pipeline_every_call_is_its_own_rpc(server, node):
    with Client([server], pipeline=False) as client:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: [client.counter("c").incr() for _ in range(5)], range(8)))
        assert client.counter("c").get() == 40
    assert len(node.rpcs) == 41 and not node.batches()


def test_the_async_client_coalesces_tasks_into_one_batch(server, node):
    node.block = threading.Event()

    async def scenario():
        async with AsyncClient([server]) as client:
            client._pipeline.coalescer.flights_max = 2
            held = [asyncio.create_task(client.put(f"held{k}", "v")) for k in range(2)]
            deadline = time.monotonic() + QUEUED_WAIT_S_MAX
            while len(node.calls) < 2:
                assert time.monotonic() < deadline, "the first calls never reached the server"
                await asyncio.sleep(POLL_S)
            queued = [asyncio.create_task(client.counter("n").incr(k)) for k in range(1, 6)]
            queued.append(asyncio.create_task(client.get("", stale=True)))
            endpoint = client._router.endpoints[0]
            while client._pipeline.coalescer.queued(endpoint) < 6:
                assert time.monotonic() < deadline, "the calls never queued"
                await asyncio.sleep(POLL_S)
            node.block.set()
            await asyncio.gather(*held)
            return await asyncio.gather(*queued, return_exceptions=True)

    results = asyncio.run(scenario())
    assert node.batches() == ["Batch:6"]
    assert max(results[:5]) == 15 and len(set(results[:5])) == 5 and node.counters == {b"n": 15}
    assert isinstance(results[5], errors.InvalidArgument)


# -- a real cluster -------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("pipeline-cluster"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


def worker_rounds(worker: int, run: str):
    """The calls of one worker, in its order, as (call, check) steps."""
    for round_ in range(ROUNDS):
        key, value = f"{run}/w{worker}/k{round_ % 2}", f"{worker}-{round_}"
        yield ("put", key, value)
        yield ("get", key, value)
        yield ("range", f"{run}/w{worker}/", (key, value))
        yield ("incr", f"{run}-c{worker % COUNTERS}", worker % 7 + 1)


def expected_counters(run: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for worker in range(WORKERS):
        name = f"{run}-c{worker % COUNTERS}"
        totals[name] = totals.get(name, 0) + ROUNDS * (worker % 7 + 1)
    return totals


def check_step(step, answer) -> None:
    kind, _, expected = step
    if kind == "get":
        assert answer == expected.encode(), f"{step}: read {answer!r}, not its own last put"
    elif kind == "range":
        key, value = expected
        assert answer.to_dict()[key.encode()] == value.encode(), f"{step}: {answer.to_dict()}"
    elif kind == "incr":
        assert answer >= expected


def test_a_thousand_concurrent_calls_from_threads_match_the_sequential_model(cluster):
    with Client(cluster.endpoints) as client:
        def call(step):
            kind, name, argument = step
            if kind == "put":
                return client.put(name, argument)
            if kind == "get":
                return client.get(name)
            if kind == "range":
                return client.range(name)
            return client.counter(name).incr(argument)

        def worker(index: int) -> int:
            steps = 0
            for step in worker_rounds(index, "sync"):
                check_step(step, call(step))
                steps += 1
            return steps

        with ThreadPoolExecutor(WORKERS + 1) as pool:
            bad = pool.submit(client.put, "", "bad key")
            assert sum(pool.map(worker, range(WORKERS))) == 1_000
            with pytest.raises(errors.InvalidArgument):
                bad.result()
        for name, total in expected_counters("sync").items():
            assert client.counter(name).get() == total
        counts = client._pipeline.coalescer.counts
    assert counts.batches > 0 and counts.rpcs < 1_000, f"nothing coalesced: {counts}"


def test_a_thousand_concurrent_calls_from_tasks_match_the_sequential_model(cluster):
    async def scenario():
        async with AsyncClient(cluster.endpoints) as client:
            async def call(step):
                kind, name, argument = step
                if kind == "put":
                    return await client.put(name, argument)
                if kind == "get":
                    return await client.get(name)
                if kind == "range":
                    return await client.range(name)
                return await client.counter(name).incr(argument)

            async def worker(index: int) -> int:
                steps = 0
                for step in worker_rounds(index, "async"):
                    check_step(step, await call(step))
                    steps += 1
                return steps

            bad = asyncio.create_task(client.put("", "bad key"))
            assert sum(await asyncio.gather(*(worker(w) for w in range(WORKERS)))) == 1_000
            with pytest.raises(errors.InvalidArgument):
                await bad
            totals = {name: await client.counter(name).get() for name in expected_counters("async")}
            return totals, client._pipeline.coalescer.counts

    totals, counts = asyncio.run(scenario())
    assert totals == expected_counters("async")
    assert counts.batches > 0 and counts.rpcs < 1_000, f"nothing coalesced: {counts}"


def test_the_async_clients_callers_answered_together_ask_again_in_one_flight(cluster):
    # 64 tasks put in a loop. When a flight lands, the tasks it answered ask
    # again before the next flight forms, so after the first call (alone,
    # nothing in flight yet) every flight is a batch; were the next flight
    # formed at once, it would carry only the one call that queued while the
    # last was in flight, and every other round trip would carry a single
    # operation.
    tasks, puts_each = 64, 8

    async def scenario():
        async with AsyncClient(cluster.endpoints) as client:
            await client.put("warm", "up")  # the client knows the leader before the tasks start
            before = dataclasses.replace(client._pipeline.coalescer.counts)

            async def puts(task: int):
                for k in range(puts_each):
                    await client.put(f"flights/{task}/{k}", "v")
            await asyncio.gather(*(puts(task) for task in range(tasks)))
            return before, client._pipeline.coalescer.counts

    before, after = asyncio.run(scenario())
    plain = (after.rpcs - before.rpcs) - (after.batches - before.batches)
    batched_ops = after.batched_ops - before.batched_ops
    assert plain + batched_ops == tasks * puts_each
    assert plain <= 2, (f"{plain} flights of a single put among {after.rpcs - before.rpcs}: "
                        "answered callers missed the next flight")
