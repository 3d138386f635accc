"""The pipeline's shared part (`_pipeline.Coalescer`, `Flight`), driven by
hand without I/O: which operations go at once, which queue, what the next
flight carries (within BATCH_OPS_MAX and BATCH_REQUEST_BYTES_MAX), and how
each operation's answer or error is handed over, an error in the very form
its single call would have raised; and both drivers with a call that
waited its whole attempt timeout in the queue."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from tandemkv import errors, limits
from tandemkv.client import _operations as ops
from tandemkv.client._pipeline import Coalescer, Flight, Pending, PipelineRpcError, batchable
from tandemkv.client._pipeline_drivers import AsyncPipeline, ThreadPipeline
from tandemkv.client._retry import error_from_rpc
from tandemkv.v1 import batch_pb2, kv_pb2

ENDPOINT = "127.0.0.1:7400"
# The attempt timeout of a call that waits behind one held in flight.
QUEUED_TIMEOUT_S = 0.05


class HandWaiter:
    """A waiter whose caller may have given up (`cancelled`)."""

    def __init__(self, cancelled: bool = False) -> None:
        self.cancelled = cancelled
        self.claimed = False
        self.outcome: Any = None

    def claim(self) -> bool:
        self.claimed = not self.cancelled
        return self.claimed

    def resolve(self, response: Any) -> None:
        self.outcome = response

    def reject(self, error: grpc.RpcError) -> None:
        self.outcome = error


def pending(operation: ops.Operation | None = None, timeout_s: float = 5.0, **waiter: bool) -> Pending:
    return Pending(ENDPOINT, operation or ops.put("k", "v"), timeout_s, HandWaiter(**waiter))


def test_two_operations_go_at_once_and_the_rest_queue_for_one_flight():
    coalescer = Coalescer(flights_max=2)
    first, second = pending(), pending()
    assert coalescer.submit(first).pendings == [first] and coalescer.submit(second).pendings == [second]
    queued = [pending(ops.counter_incr("c", k)) for k in range(3)]
    assert all(coalescer.submit(p) is None for p in queued) and coalescer.queued(ENDPOINT) == 3
    flight = coalescer.landed(ENDPOINT)
    assert flight.pendings == queued and flight.batched
    assert [op.WhichOneof("op") for op in flight.request().ops] == ["counter_incr"] * 3
    assert coalescer.landed(ENDPOINT) is None, "the second landing finds the queue empty"
    assert coalescer.counts.rpcs == 3 and coalescer.counts.batched_ops == 3


def test_a_flight_holds_at_most_batch_ops_max_operations():
    coalescer = Coalescer(flights_max=1)
    coalescer.submit(pending())
    for _ in range(limits.BATCH_OPS_MAX + 6):
        coalescer.submit(pending())
    assert len(coalescer.landed(ENDPOINT).pendings) == limits.BATCH_OPS_MAX
    assert len(coalescer.landed(ENDPOINT).pendings) == 6


def test_a_flight_closes_before_batch_request_bytes_max_and_a_big_operation_goes_alone():
    coalescer = Coalescer(flights_max=1)
    coalescer.submit(pending())
    big_value = b"v" * (limits.BATCH_REQUEST_BYTES_MAX // 3)
    for _ in range(3):
        coalescer.submit(pending(ops.put("big", big_value)))
    coalescer.submit(pending(ops.put("huge", b"v" * (limits.BATCH_REQUEST_BYTES_MAX + 1))))
    first = coalescer.landed(ENDPOINT)
    assert len(first.pendings) == 2 and first.request().ByteSize() <= limits.BATCH_REQUEST_BYTES_MAX
    assert sum(p.size_bytes for p in first.pendings) == first.request().ByteSize()
    assert len(coalescer.landed(ENDPOINT).pendings) == 1
    alone = coalescer.landed(ENDPOINT)
    assert not alone.batched and alone.pendings[0].operation.request.key == b"huge"


def test_an_operation_that_waited_its_whole_timeout_is_not_sent_and_a_given_up_one_is_dropped():
    coalescer = Coalescer(flights_max=1)
    coalescer.submit(pending())
    expired, gone, kept = pending(timeout_s=0.0), pending(cancelled=True), pending()
    for queued in (expired, gone, kept):
        coalescer.submit(queued)
    assert coalescer.landed(ENDPOINT).pendings == [kept]
    error = error_from_rpc(expired.waiter.outcome, expired.operation.request_id)
    assert isinstance(error, errors.Unavailable) and "not sent" in error.message
    assert gone.waiter.outcome is None and not expired.sent


def test_each_batched_operation_gets_its_own_answer_or_its_own_error():
    ops_in_flight = [pending(ops.get("a")), pending(ops.put("", "v")), pending(ops.counter_incr("c", 1))]
    flight = Flight(ENDPOINT, ops_in_flight)
    not_leader = batch_pb2.BatchError(code=grpc.StatusCode.UNAVAILABLE.value[0], message="node n2: not the leader",
                                      metadata={"tandemkv-error": "Unavailable", "tandemkv-leader": "127.0.0.1:9"})
    flight.settle(batch_pb2.BatchResponse(results=[
        batch_pb2.BatchResult(get=kv_pb2.GetResponse(found=True, kv=kv_pb2.KeyValue(key=b"a", value=b"1"))),
        batch_pb2.BatchResult(error=batch_pb2.BatchError(code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                                                         message="key is empty")),
        batch_pb2.BatchResult(error=not_leader),
    ]))
    assert ops_in_flight[0].operation.decode(ops_in_flight[0].waiter.outcome).value == b"1"
    bad_key = error_from_rpc(ops_in_flight[1].waiter.outcome, b"")
    assert isinstance(bad_key, errors.InvalidArgument) and bad_key.message == "key is empty"
    redirected = error_from_rpc(ops_in_flight[2].waiter.outcome, ops_in_flight[2].operation.request_id)
    assert isinstance(redirected, errors.Unavailable) and redirected.leader_hint == "127.0.0.1:9"


def test_operations_a_short_answer_left_out_have_an_unknown_outcome_with_their_request_id():
    write = pending(ops.counter_incr("c", 1))
    flight = Flight(ENDPOINT, [pending(ops.get("a")), write])
    flight.settle(batch_pb2.BatchResponse(results=[batch_pb2.BatchResult(get=kv_pb2.GetResponse())]))
    error = error_from_rpc(write.waiter.outcome, write.operation.request_id)
    assert isinstance(error, errors.OutcomeUnknown) and error.request_id == write.operation.request_id


def test_a_server_without_batches_turns_batching_off_and_its_operations_are_sent_again():
    coalescer = Coalescer(flights_max=1)
    coalescer.submit(pending())
    queued = [pending(), pending()]
    for p in queued:
        coalescer.submit(p)
    flight = coalescer.landed(ENDPOINT)
    coalescer.batch_failed(flight, PipelineRpcError(grpc.StatusCode.UNIMPLEMENTED, "unknown service"))
    assert all(isinstance(error_from_rpc(p.waiter.outcome, b""), errors.Unavailable) for p in queued)
    assert coalescer.batches_refused
    assert coalescer.submit(pending()) is not None and coalescer.submit(pending()) is not None


def test_only_what_batch_call_carries_is_batchable():
    assert all(batchable(op) for op in (ops.put("k", "v"), ops.get("k", stale=True), ops.delete("k"),
                                        ops.range_("p"), ops.counter_compare_and_set("c", 1, 2)))
    assert not batchable(ops.status())
    assert not batchable(ops.txn(kv_pb2.TxnRequest(), [], []))


# -- the drivers: a caller that waited its whole attempt timeout in the queue --

def test_a_queued_async_call_past_its_timeout_fails_as_not_sent_and_is_never_sent():
    async def scenario():
        release = asyncio.Event()

        async def send_plain(endpoint: str, operation: ops.Operation, timeout_s: float) -> str:
            await release.wait()
            return "plain answer"

        pipeline = AsyncPipeline(lambda service, endpoint: None, send_plain, Coalescer(flights_max=1))
        held = asyncio.create_task(pipeline.send(ENDPOINT, ops.put("a", "1"), 5.0))
        await asyncio.sleep(0)  # the held call takes the one flight
        with pytest.raises(grpc.RpcError) as caught:
            await pipeline.send(ENDPOINT, ops.put("b", "2"), QUEUED_TIMEOUT_S)
        release.set()
        assert await held == "plain answer"
        return caught.value, pipeline.coalescer

    error, coalescer = asyncio.run(scenario())
    assert isinstance(error_from_rpc(error, b""), errors.Unavailable) and "not sent" in error.details()
    assert coalescer.counts.rpcs == 1 and coalescer.queued(ENDPOINT) == 0


def test_a_queued_threaded_call_past_its_timeout_fails_as_not_sent_and_is_never_sent():
    release, entered = threading.Event(), threading.Event()

    def send_plain(endpoint: str, operation: ops.Operation, timeout_s: float) -> str:
        entered.set()
        assert release.wait(10), "never released"
        return "plain answer"

    pipeline = ThreadPipeline(lambda service, endpoint: None, send_plain, Coalescer(flights_max=1))
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(pipeline.send, ENDPOINT, ops.put("a", "1"), 5.0)
        assert entered.wait(10)
        with pytest.raises(grpc.RpcError) as caught:
            pipeline.send(ENDPOINT, ops.put("b", "2"), QUEUED_TIMEOUT_S)
        release.set()
        assert held.result(10) == "plain answer"
    assert isinstance(error_from_rpc(caught.value, b""), errors.Unavailable)
    assert pipeline.coalescer.counts.rpcs == 1 and pipeline.coalescer.queued(ENDPOINT) == 0
