"""The SDK's core decides every call without I/O, and both clients only
carry out what it decides.

Method: the core's plans are driven by hand, action by action (a `Send`
is answered with a protobuf response or a fake `grpc.RpcError` thrown in;
a `Sleep` is just recorded), so each test reads as the trace of one call:
which endpoint, which request, what wait, which error in the end. Then
both clients run recipes (a lock, a hold, a lease) against a server over
the fake node, with `_call` and `_send` wrapped, to check that every
unary operation enters through the one place where calls will be
coalesced."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from tandemkv import errors
from tandemkv.client import AsyncClient, Client, Retry
from tandemkv.client import _core as core
from tandemkv.client import _operations as ops
from tandemkv.client._routing import LocalEndpoints, Router
from tandemkv.v1 import cluster_pb2, counter_pb2, crdt_pb2, kv_pb2

NO_JITTER = Retry(jitter=lambda: 1.0, clock=lambda: 0.0)


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple = ()):
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailing


def not_applied(leader: str | None = None) -> FakeRpcError:
    """UNAVAILABLE as a node says it: nothing applied (maybe a leader hint)."""
    trailing = (("tandemkv-error", "Unavailable"),) + ((("tandemkv-leader", leader),) if leader else ())
    return FakeRpcError(grpc.StatusCode.UNAVAILABLE, "node n1: not the leader", trailing)


def timed_out() -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")


class Trace:
    """Drives a plan by hand and records what it asked for."""

    def __init__(self, plan: core.Plan):
        self.walk = core.Walk(plan)
        self.actions: list[core.Action] = []

    def next(self) -> core.Action | None:
        action = self.walk.next()
        if action is not None:
            self.actions.append(action)
        return action

    def answer(self, outcome: Any) -> core.Action | None:
        self.walk.outcome = outcome
        return self.next()

    def fail(self, error: BaseException) -> core.Action | None:
        self.walk.failure = error
        return self.next()

    def sends(self) -> list[str]:
        return [a.endpoint for a in self.actions if isinstance(a, core.Send)]

    def sleeps(self) -> list[float]:
        return [a.seconds for a in self.actions if isinstance(a, core.Sleep)]


def never_connected() -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")


def next_attempt(trace: Trace, action: core.Action | None) -> core.Send:
    """Past waits and leader lookups (no node names a leader: a failed
    attempt made the router forget it) to the next attempt."""
    while isinstance(action, core.Sleep) or (isinstance(action, core.Send) and action.operation.method == "Status"):
        action = trace.next() if isinstance(action, core.Sleep) else trace.fail(never_connected())
    assert isinstance(action, core.Send), action
    return action


def leader_call(operation: ops.Operation, router: Router, retry: Retry = NO_JITTER) -> Trace:
    return Trace(core.unary(operation, core.LeaderAttempts(router, retry, operation)))


def router_led_by(leader: str, *endpoints: str) -> Router:
    router = Router(list(endpoints) or [leader])
    router.learn_leader(leader)
    return router


def test_a_write_keeps_its_request_id_across_retries_and_waits_the_policys_backoff():
    trace = leader_call(ops.counter_incr("hits", 2), router_led_by("a:1"))
    first = trace.next()
    second = next_attempt(trace, trace.fail(not_applied()))
    third = next_attempt(trace, trace.fail(timed_out()))
    assert trace.answer(counter_pb2.CounterIncrResponse(value=2)) is None
    assert trace.walk.result == 2
    requests = [a.operation.request.request_id for a in (first, second, third)]
    assert len(set(requests)) == 1 and len(requests[0]) == 16
    assert trace.sleeps() == [0.05, 0.1]


def test_a_leader_hint_redirects_the_next_attempt_at_once():
    router = router_led_by("a:1", "a:1", "b:2")
    trace = leader_call(ops.put("k", "v"), router)
    trace.next()
    redirect = trace.fail(not_applied(leader="b:2"))
    assert isinstance(redirect, core.Sleep) and redirect.seconds == 0.0
    assert trace.next().endpoint == "b:2" and router.leader == "b:2"


def test_an_unknown_leader_is_asked_for_before_the_first_attempt():
    router = Router(["a:1", "b:2"])
    trace = leader_call(ops.get("k"), router)
    ask_a = trace.next()
    assert ask_a.operation.method == "Status" and ask_a.timeout_s <= core.STATUS_TIMEOUT_S_MAX
    ask_b = trace.fail(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"))
    attempt = trace.answer(cluster_pb2.StatusResponse(leader_client_address="b:2"))
    assert (ask_b.endpoint, attempt.endpoint, attempt.operation.method) == ("b:2", "b:2", "Get")


def removed_node(name: str) -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, f"node {name} was removed from the cluster",
                        (("tandemkv-error", "NodeRemoved"),))


def test_removed_nodes_are_asked_last_and_the_stale_leader_they_name_is_not_believed():
    # The client was given a, b, c; a and b were removed and keep running,
    # b still naming a as leader. Without the bookkeeping every lookup asked
    # a or b first and every attempt went to a, until the deadline.
    router = router_led_by("a:1", "a:1", "b:2", "c:3")
    trace = leader_call(ops.put("k", "v"), router)
    assert trace.next().endpoint == "a:1"
    ask_b = next_after_sleep(trace, trace.fail(removed_node("a")))
    assert (ask_b.endpoint, ask_b.operation.method) == ("b:2", "Status")
    ask_c = trace.answer(cluster_pb2.StatusResponse(leader_client_address="a:1"))
    assert (ask_c.endpoint, ask_c.operation.method) == ("c:3", "Status")
    attempt = trace.answer(cluster_pb2.StatusResponse(leader_client_address="d:4"))
    assert (attempt.endpoint, attempt.operation.method) == ("d:4", "Put")
    assert router.order()[-1] == "a:1" and router.removed == {"a:1"}
    assert trace.answer(kv_pb2.PutResponse()) is None
    # A serving node that names a removed endpoint as leader: it was added again.
    router.failed("d:4", not_applied_error(leader="a:1"))
    assert router.leader == "a:1" and not router.removed


def next_after_sleep(trace: Trace, action: core.Action | None) -> core.Send:
    while isinstance(action, core.Sleep):
        action = trace.next()
    assert isinstance(action, core.Send), action
    return action


def not_applied_error(leader: str) -> errors.Unavailable:
    error = errors.Unavailable("node n4: not the leader")
    error.leader_hint = leader
    return error


def test_a_write_that_gives_up_after_an_unknown_outcome_raises_outcome_unknown():
    retry = Retry(attempts_max=2, jitter=lambda: 1.0, clock=lambda: 0.0)
    trace = leader_call(ops.counter_incr("hits", 1), router_led_by("a:1"), retry)
    first = trace.next()
    next_attempt(trace, trace.fail(timed_out()))
    with pytest.raises(errors.OutcomeUnknown) as caught:
        trace.fail(not_applied())
    assert caught.value.request_id == first.operation.request.request_id


def test_an_error_retrying_cannot_fix_is_raised_after_one_attempt():
    trace = leader_call(ops.put("k", "v"), router_led_by("a:1"))
    trace.next()
    with pytest.raises(errors.InvalidArgument):
        trace.fail(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "key too long"))
    assert trace.sends() == ["a:1"] and trace.sleeps() == []


def crdt_update(idempotent: bool) -> ops.Operation:
    from tandemkv.client import _crdt

    return _crdt.update(crdt_pb2.CrdtUpdateRequest(table="t", increment=1), idempotent)


def test_local_calls_sweep_every_endpoint_and_back_off_only_between_sweeps():
    local = LocalEndpoints(["a:1", "b:2", "c:3"])
    local.answered("b:2")
    retry = Retry(attempts_max=2, jitter=lambda: 1.0, clock=lambda: 0.0)
    operation = crdt_update(idempotent=True)
    trace = Trace(core.unary(operation, core.attempts_for(operation, retry, Router(["a:1"]), local)))
    action = trace.next()
    with pytest.raises(errors.Unavailable):
        while action is not None:
            action = trace.fail(not_applied()) if isinstance(action, core.Send) else trace.next()
    assert trace.sends() == ["b:2", "c:3", "a:1"] * 2
    assert trace.sleeps() == [0.0, 0.0, 0.05, 0.0, 0.0]


def test_a_local_call_remembers_the_node_that_answered():
    local = LocalEndpoints(["a:1", "b:2"])
    operation = crdt_update(idempotent=True)
    trace = Trace(core.unary(operation, core.SweepAttempts(local, NO_JITTER, True)))
    trace.next()
    trace.fail(not_applied())
    trace.next()
    assert trace.answer(crdt_pb2.CrdtUpdateResponse(node="n2")) is None
    assert trace.walk.result == "n2" and local.order() == ["b:2", "a:1"]


def test_a_crdt_increment_whose_outcome_is_unknown_is_not_sent_again():
    operation = crdt_update(idempotent=False)
    trace = Trace(core.unary(operation, core.SweepAttempts(LocalEndpoints(["a:1", "b:2"]), NO_JITTER, False)))
    trace.next()
    with pytest.raises(errors.OutcomeUnknown):
        trace.fail(timed_out())
    assert trace.sends() == ["a:1"]


def test_a_broken_stream_reopens_with_growing_waits_and_ends_after_attempts_max_failures():
    router = router_led_by("a:1", "a:1", "b:2")
    reconnects = core.Reconnects(router, Retry(attempts_max=3, jitter=lambda: 1.0))
    waits = [reconnects.failed("a:1", reconnects.broke("a:1", not_applied()))]
    reconnects.received()  # delivered something: the count starts over
    waits.append(reconnects.failed("b:2", reconnects.ended("b:2")))
    waits.append(reconnects.failed("a:1", reconnects.ended("a:1")))
    with pytest.raises(errors.Unavailable, match="ended the stream"):
        reconnects.failed("b:2", reconnects.ended("b:2"))
    assert waits == [0.05, 0.05, 0.1]
    cancelled = reconnects.broke("a:1", FakeRpcError(grpc.StatusCode.CANCELLED, "cancelled"))
    assert isinstance(cancelled, errors.Unavailable) and "stopping" in cancelled.message


def test_a_plan_step_that_fails_is_thrown_into_the_plan_which_may_handle_it():
    def plan() -> core.Plan:
        try:
            yield core.Call(ops.get("missing"))
        except errors.NotFound:
            return (yield core.Sleep(0.5, NO_JITTER)) or "handled"

    trace = Trace(plan())
    assert isinstance(trace.next(), core.Call)
    assert isinstance(trace.fail(errors.NotFound("no table")), core.Sleep)
    assert trace.next() is None and trace.walk.result == "handled"


class _Recording:
    """Counts the operations that enter `_call` and the sends made outside it."""

    def _setup(self) -> None:
        self.entered: list[str] = []
        self.depth = 0
        self.sends_outside: list[str] = []


class RecordingClient(Client, _Recording):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._setup()

    def _call(self, operation: ops.Operation, retry: Retry) -> Any:
        self.entered.append(operation.method)
        self.depth += 1
        try:
            return super()._call(operation, retry)
        finally:
            self.depth -= 1

    def _send(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        if self.depth == 0:
            self.sends_outside.append(operation.method)
        return super()._send(endpoint, operation, timeout_s)


class RecordingAsyncClient(AsyncClient, _Recording):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._setup()

    async def _call(self, operation: ops.Operation, retry: Retry) -> Any:
        self.entered.append(operation.method)
        self.depth += 1
        try:
            return await super()._call(operation, retry)
        finally:
            self.depth -= 1

    async def _send(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        if self.depth == 0:
            self.sends_outside.append(operation.method)
        return await super()._send(endpoint, operation, timeout_s)


RECIPE_METHODS = ["Grant", "KeepAlive", "Register", "Acquire", "Put", "Incr"]


def test_every_unary_operation_of_the_blocking_client_enters_through_call(fake_server):
    with RecordingClient([fake_server]) as client:
        lease = client.lease(30)
        assert lease.keepalive() == 1.0
        assert client.registry.register("svc", "host:1", lease) > 0
        with client.lock("job", ttl=30, wait=1) as token:
            assert token > 0
        client.put("k", "v", lease=lease)
        assert client.counter("c").incr(3) == 3
    assert set(RECIPE_METHODS) <= set(client.entered)
    assert set(client.sends_outside) <= {"Status"}, "only leader lookups go around _call"


def test_every_unary_operation_of_the_async_client_enters_through_call(fake_server):
    async def scenario() -> RecordingAsyncClient:
        async with RecordingAsyncClient([fake_server]) as client:
            lease = await client.lease(30)
            assert await lease.keepalive() == 1.0
            assert await client.registry.register("svc", "host:1", lease) > 0
            async with client.lock("job", ttl=30, wait=1) as token:
                assert token > 0
            await client.put("k", "v", lease=lease)
            assert await client.counter("c").incr(3) == 3
            return client

    client = asyncio.run(scenario())
    assert set(RECIPE_METHODS) <= set(client.entered)
    assert set(client.sends_outside) <= {"Status"}, "only leader lookups go around _call"


def test_the_limit_an_invalid_argument_names_reaches_the_exception():
    from tandemkv.client._retry import error_from_rpc
    from tandemkv.server.api.edge import status_for_error

    code, message, metadata = status_for_error(errors.InvalidArgument("value is 40000 bytes",
                                                                      limit="VALUE_SIZE_BYTES_MAX"))
    raised = error_from_rpc(FakeRpcError(code, message, metadata), b"")
    assert isinstance(raised, errors.InvalidArgument) and raised.limit == "VALUE_SIZE_BYTES_MAX"
    assert "VALUE_SIZE_BYTES_MAX" in raised.message
    code, message, metadata = status_for_error(errors.InvalidArgument("key is empty"))
    assert error_from_rpc(FakeRpcError(code, message, metadata), b"").limit is None
