"""The fault workloads' threads share one pipelining client, and each
operation is still recorded as ok, failed or unknown by its own outcome:
a batch that broke at the transport after it was sent leaves every write
in it unknown; one that never connected, failed; each operation of an
answered batch takes its own result or error; an operation the pipeline
never sent (its caller's attempt timed out in the queue) failed.

Method: a `TrackingClient` whose stubs are fakes (no server): the first
put goes alone and is held inside its fake RPC until the puts behind it,
one thread each, have queued; then it is let go, the queued puts leave as
one `Batch.Call`, and the fake answers that batch as the case says. Each
thread records its put through `Worker.perform` into one `History`, as
the fault runner's workers do, and the pipeline's counters show the batch
really carried the queued puts together."""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Callable

import grpc
import pytest

from tandemkv.client import Retry
from tandemkv.errors import ERROR_METADATA_KEY
from tandemkv.v1 import batch_pb2, kv_pb2
from tests.faults.history import History
from tests.faults.tracking import TrackingClient
from tests.faults.workloads import Processes, Tally, Worker

ENDPOINT = "127.0.0.1:1"
QUEUED = 3
# Bounds of the waits for a state the test brings about (polled, never slept on blindly).
WAIT_S_MAX = 10.0
POLL_S = 0.005
ONE_ATTEMPT = Retry(attempts_max=1, deadline_s=WAIT_S_MAX, attempt_timeout_s=WAIT_S_MAX)
UNAVAILABLE, DEADLINE_EXCEEDED = grpc.StatusCode.UNAVAILABLE.value[0], grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple = ()):
        super().__init__(details)
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailing


class FakeCall:
    """What a fake method's `.future()` returns: already done."""

    def __init__(self, outcome: Any):
        self.outcome = outcome

    def result(self, timeout: float | None = None) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        callback(self)


class FakeMethod:
    def __init__(self, answer: Callable[[Any], Any]):
        self.answer = answer

    def __call__(self, request: Any, timeout: float | None = None) -> Any:
        return self.answer(request)

    def future(self, request: Any, timeout: float | None = None) -> FakeCall:
        try:
            return FakeCall(self.answer(request))
        except grpc.RpcError as error:
            return FakeCall(error)


class FakeStubs:
    """KV.Put holds the first put until `release`; Batch.Call answers with
    `batch_answer(request)` (a BatchResponse, or raises)."""

    def __init__(self, batch_answer: Callable[[batch_pb2.BatchRequest], Any]):
        self.first_put_arrived = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []
        self.batch_answer = batch_answer

    def put(self, request: kv_pb2.PutRequest) -> kv_pb2.PutResponse:
        self.first_put_arrived.set()
        assert self.release.wait(WAIT_S_MAX), "the test never released the first put"
        return kv_pb2.PutResponse()

    def call(self, request: batch_pb2.BatchRequest) -> Any:
        self.batches.append(len(request.ops))
        return self.batch_answer(request)


class FakeServedClient(TrackingClient):
    def __init__(self, stubs: FakeStubs, retry: Retry = ONE_ATTEMPT):
        super().__init__([ENDPOINT], retry)
        self.fakes = stubs
        self._router.learn_leader(ENDPOINT)

    def stub(self, service: str, endpoint: str) -> Any:
        assert service in ("KV", "Batch"), f"the test serves KV and Batch, not {service}"
        if service == "KV":
            return type("KV", (), {"Put": FakeMethod(self.fakes.put)})()
        return type("Batch", (), {"Call": FakeMethod(self.fakes.call)})()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S_MAX
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_S)


def run_puts(client: FakeServedClient, release_when: Callable[[list[str]], bool]
             ) -> tuple[list[str], list[bool], History]:
    """The first put alone, QUEUED puts queued behind it (in this order),
    then the first is released once `release_when(outcomes so far)`; each thread's
    recorded outcome and whether its write was noted as maybe sent."""
    history, processes, tally = History(seed=0), Processes(), Tally()
    outcomes: list[str] = [""] * (1 + QUEUED)
    maybe_sent: list[bool] = [False] * (1 + QUEUED)

    def put(index: int) -> None:
        worker = Worker(history, client, processes, tally, random.Random(index))
        outcomes[index], _ = worker.perform(f"reg/{index}", "write", f"v{index}",
                                            lambda: client.put(f"reg/{index}", f"v{index}"), write=True)
        maybe_sent[index] = client.write_maybe_sent()

    threads = [threading.Thread(target=put, args=(index,), name=f"put-{index}") for index in range(1 + QUEUED)]
    threads[0].start()
    assert client.fakes.first_put_arrived.wait(WAIT_S_MAX), "the first put never reached the fake"
    for index in range(1, 1 + QUEUED):
        threads[index].start()
        wait_until(lambda: client._pipeline.coalescer.queued(ENDPOINT) == index, f"put {index} to queue")
    wait_until(lambda: release_when(outcomes), "the moment to release the first put")
    client.fakes.release.set()
    for thread in threads:
        thread.join(WAIT_S_MAX)
        assert not thread.is_alive(), f"{thread.name} did not finish"
    return outcomes, maybe_sent, history


def batch_error(code: int, message: str, stated: bool) -> batch_pb2.BatchResult:
    metadata = {ERROR_METADATA_KEY: "Unavailable"} if stated else {}
    return batch_pb2.BatchResult(error=batch_pb2.BatchError(code=code, message=message, metadata=metadata))


def raises(error: grpc.RpcError) -> Callable[[Any], Any]:
    def answer(request: Any) -> Any:
        raise error
    return answer


@pytest.mark.parametrize("batch_answer, outcomes, maybe_sent", [
    pytest.param(raises(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")),
                 ["ok", "unknown", "unknown", "unknown"], [False, True, True, True],
                 id="a batch broken at the transport after it was sent: every write in it unknown"),
    pytest.param(raises(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")),
                 ["ok", "fail", "fail", "fail"], [False, False, False, False],
                 id="a batch that never connected: every write in it failed"),
    pytest.param(lambda request: batch_pb2.BatchResponse(results=[
                     batch_pb2.BatchResult(put=kv_pb2.PutResponse()),
                     batch_error(UNAVAILABLE, "not the leader; the leader is n2", stated=True),
                     batch_error(DEADLINE_EXCEEDED, "no quorum within the deadline", stated=True)]),
                 ["ok", "ok", "fail", "unknown"], [False, False, False, False],
                 id="an answered batch: each write its own result or error"),
])
def test_each_write_in_a_shared_pipeline_is_recorded_by_its_own_outcome(batch_answer, outcomes, maybe_sent):
    client = FakeServedClient(FakeStubs(batch_answer))
    try:
        recorded, noted, history = run_puts(client, lambda outcomes: True)
    finally:
        client.close()
    assert client.fakes.batches == [QUEUED], f"the queued puts were not one batch: {client.fakes.batches}"
    assert client.pipeline_counts() == {"rpcs": 2, "batches": 1, "batched_ops": QUEUED}
    assert recorded == outcomes and noted == maybe_sent, (recorded, noted)
    by_key = {op.key: op.outcome for op in history.operations()}
    assert [by_key[f"reg/{index}"] for index in range(1 + QUEUED)] == outcomes, by_key


def test_a_write_the_pipeline_never_sent_is_recorded_as_failed():
    """Each queued put's attempt times out while the first put holds the
    line: the pipeline fails them as not sent (nothing applied), stated
    with the error metadata, so they are failed, not unknown."""
    short = Retry(attempts_max=1, deadline_s=0.2, attempt_timeout_s=0.2)
    client = FakeServedClient(FakeStubs(raises(AssertionError("no batch may be sent"))), short)
    try:
        recorded, noted, _ = run_puts(client, lambda outcomes: all(outcomes[1:]))
    finally:
        client.close()
    assert recorded == ["ok", "fail", "fail", "fail"] and noted == [False] * 4, (recorded, noted)
    assert client.fakes.batches == [] and client.pipeline_counts()["batches"] == 0
