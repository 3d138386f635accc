"""The SDK's core: everything a call decides, and no I/O.

Which endpoint an attempt goes to, the request it carries (with its
request id, the same on every attempt), what a failed attempt means
(retry, redirect, give up with which error) and how long to wait before
the next one: all of it is decided here, once, for `Client` and
`AsyncClient` alike. The core never opens a channel, never sleeps and
never awaits; it knows neither threads nor asyncio.

A call is a generator of actions (a plan). The shell that drives it does
what each action says and sends the outcome back in:

- `Send(endpoint, operation, timeout_s)`: one RPC attempt. The shell
  sends the answer back, or throws the `grpc.RpcError` into the plan.
- `Sleep(seconds, retry)`: wait, with the policy's injected sleep.
- `Call(operation, retry)`: one whole operation, retries included (a
  recipe's step: a lock's acquire, a CRDT read). The shell runs it through
  its single entry point for operations (`_call`) and sends the decoded
  answer back, or throws the `tandemkv.errors` exception into the plan.
- `Invoke(function)`: a step given as a function (`CrdtTables.ensure`'s
  `call`); the shell calls it, and awaits what it returns in asyncio.
- `Renew()`: the call was refused because its token no longer works; the
  shell authenticates again (`_auth_session`) and sends back whether the
  call may be repeated with the new token (at most once per call).

When the plan returns, its value is the call's result; what it raises is
the call's error. Streams are no plan (their items reach the user while
they run): they consult a `Reconnects` object instead.

Rules of this module: it imports no grpc channel, socket, thread or
asyncio code (`grpc.RpcError` is only caught); every loop is bounded by a
`Retry` policy or by the endpoints it walks.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Generator, Union

import grpc

from tandemkv import errors
from tandemkv.client import _operations as ops
from tandemkv.client._auth_core import renewable_refusal
from tandemkv.client._results import NodeInfo
from tandemkv.client._retry import Attempts, Retry, error_from_rpc, retryable
from tandemkv.client._routing import LocalEndpoints, Router
from tandemkv.limits import STATUS_NODES_MAX, STATUS_TIMEOUT_S_MAX


@dataclasses.dataclass(frozen=True)
class Send:
    """One attempt of `operation` on `endpoint`, with a gRPC deadline."""

    endpoint: str
    operation: ops.Operation
    timeout_s: float


@dataclasses.dataclass(frozen=True)
class Sleep:
    """A wait between attempts, slept with `retry`'s injected sleep."""

    seconds: float
    retry: Retry


@dataclasses.dataclass(frozen=True)
class Call:
    """One operation with its own retries (`retry`: None for the client's)."""

    operation: ops.Operation
    retry: Retry | None = None


@dataclasses.dataclass(frozen=True)
class Invoke:
    """A step a caller supplied as a function: the shell calls it (and, in
    asyncio, awaits what it returns); a `tandemkv.errors` exception is
    thrown into the plan like a `Call`'s."""

    function: Callable[[], Any]


@dataclasses.dataclass(frozen=True)
class Renew:
    """Get a new token (the last one was refused as expired or ended);
    the shell answers True when the call may be repeated with it."""


Action = Union[Send, Sleep, Call, Invoke, Renew]
Plan = Generator[Action, Any, Any]


class Walk:
    """A plan as a shell walks it: `next()` is the next action (None when
    the plan is over: its value is then in `result`); before the next
    `next()`, the shell puts what the action gave in `outcome` or what it
    raised in `failure`."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.outcome: Any = None
        self.failure: BaseException | None = None
        self.result: Any = None

    def next(self) -> Action | None:
        try:
            if self.failure is None:
                action = self.plan.send(self.outcome)
            else:
                action = self.plan.throw(self.failure)
        except StopIteration as done:
            self.result = done.value
            return None
        self.outcome, self.failure = None, None
        return action


class LeaderAttempts(Attempts):
    """The attempts of a strong-plane call: to the leader when it is known
    (looked up first when it is not), redirected at once to a leader a
    failure names, otherwise backing off per the `Retry` policy."""

    def __init__(self, router: Router, retry: Retry, operation: ops.Operation):
        super().__init__(retry, operation.request_id, operation.write)
        self.router = router

    def prepare(self, timeout_s: float) -> Plan:
        if self.router.leader is None:
            yield from find_leader(self.router, min(timeout_s, STATUS_TIMEOUT_S_MAX))

    def pick(self) -> str:
        return self.router.pick()

    def answered(self, endpoint: str) -> None:
        self.router.answered(endpoint)

    def failed_at(self, endpoint: str, error: errors.TandemKVError) -> float | None:
        """The wait before the next attempt, or None to give up."""
        return self.failed(error, self.router.failed(endpoint, error))


class SweepAttempts:
    """The attempts of an available-plane call (CRDT tables): no leader,
    any node answers. Sweeps the endpoints from the one that answered
    last, moving to the next at once on UNAVAILABLE; backs off after each
    full sweep; `attempts_max` sweeps at the most. An unknown outcome is
    retried only for an idempotent operation (a CRDT counter increment
    carries no request id: a retry could count twice)."""

    def __init__(self, local: LocalEndpoints, retry: Retry, idempotent: bool):
        self.local = local
        self.retry = retry
        self.idempotent = idempotent
        self.order = local.order()
        self.deadline = retry.clock() + retry.deadline_s
        self.count = 0
        self.last_error: errors.TandemKVError | None = None

    def timeout_s(self) -> float | None:
        remaining_s = self.deadline - self.retry.clock()
        return min(self.retry.attempt_timeout_s, remaining_s) if remaining_s > 0 else None

    def prepare(self, timeout_s: float) -> Plan:
        yield from ()  # no leader to look up

    def pick(self) -> str:
        return self.order[self.count % len(self.order)]

    def answered(self, endpoint: str) -> None:
        self.local.answered(endpoint)

    def failed_at(self, endpoint: str, error: errors.TandemKVError) -> float | None:
        self.count += 1
        self.last_error = error
        retryable = isinstance(error, errors.Unavailable) or (
            self.idempotent and isinstance(error, errors.OutcomeUnknown))
        if not retryable:
            return None
        sweeps, rest = divmod(self.count, len(self.order))
        if rest:
            return 0.0  # the next endpoint of this sweep, at once
        if sweeps >= self.retry.attempts_max:
            return None
        return self.retry.backoff_s(sweeps - 1)

    def final_error(self) -> errors.TandemKVError:
        return self.last_error or errors.Unavailable("no attempt fitted in the retry deadline")


def attempts_for(operation: ops.Operation, retry: Retry, router: Router,
                 local: LocalEndpoints) -> LeaderAttempts | SweepAttempts:
    if operation.local:
        return SweepAttempts(local, retry, operation.idempotent)
    return LeaderAttempts(router, retry, operation)


def unary(operation: ops.Operation, attempts: LeaderAttempts | SweepAttempts) -> Plan:
    """The one retry loop: attempts of `operation` until one answers
    (returns the decoded answer) or `attempts` gives up (raises its
    final error). Every attempt carries the same request. A refusal a new
    token may fix is followed by one `Renew` and, if it renewed, the same
    attempt again (once per call: no loop on a server that refuses)."""
    renewed = False
    while (timeout_s := attempts.timeout_s()) is not None:
        yield from attempts.prepare(timeout_s)
        endpoint = attempts.pick()
        try:
            response = yield Send(endpoint, operation, timeout_s)
        except grpc.RpcError as rpc_error:
            error = error_from_rpc(rpc_error, operation.request_id)
        else:
            attempts.answered(endpoint)
            return operation.decode(response)
        if not renewed and renewable_refusal(error, operation):
            renewed = True
            if (yield Renew()):
                continue
        delay_s = attempts.failed_at(endpoint, error)
        if delay_s is None:
            break
        yield Sleep(delay_s, attempts.retry)
    raise attempts.final_error()


def find_leader(router: Router, timeout_s: float) -> Plan:
    """Asks each endpoint in turn (removed nodes last) for the leader
    until one names one that is not known to be removed."""
    for endpoint in router.order():
        try:
            response = yield Send(endpoint, ops.status(), timeout_s)
        except grpc.RpcError:
            continue
        if response.leader_client_address and response.leader_client_address not in router.removed:
            router.learn_leader(response.leader_client_address)
            return


def cluster_status(endpoints: list[str]) -> Plan:
    """Every node's view: the `endpoints` and every member they report
    (STATUS_NODES_MAX at the most); a node that does not answer is listed
    with its error."""
    seen: dict[str, NodeInfo] = {}
    pending = list(endpoints)
    while pending and len(seen) < STATUS_NODES_MAX:
        endpoint = pending.pop(0)
        if endpoint in seen:
            continue
        try:
            response = yield Send(endpoint, ops.status(), STATUS_TIMEOUT_S_MAX)
        except grpc.RpcError as error:
            seen[endpoint] = NodeInfo(endpoint=endpoint, error=error_from_rpc(error, b"").message)
            continue
        seen[endpoint] = ops.node_info(endpoint, response)
        pending.extend(ops.member_endpoints(response))
    return ops.cluster_status(list(seen.values()))


class Reconnects:
    """When and where a broken stream (a watch, an election observer) is
    opened again: on the endpoint the router picks, after a backoff that
    grows with consecutive failures; `attempts_max` consecutive failures,
    or an error retrying cannot fix, end the stream with that error."""

    def __init__(self, router: Router, retry: Retry):
        self.router = router
        self.retry = retry
        self.failures = 0

    def endpoint(self) -> str:
        return self.router.pick()

    def received(self) -> None:
        """The stream delivered: the count of consecutive failures restarts."""
        self.failures = 0

    @staticmethod
    def ended(endpoint: str) -> errors.TandemKVError:
        """The error of a stream the server closed without a status."""
        return errors.Unavailable(f"{endpoint} ended the stream (stopping?)")

    @staticmethod
    def broke(endpoint: str, rpc_error: grpc.RpcError) -> errors.TandemKVError:
        """The error of a stream that failed (CANCELLED by the server: it stops)."""
        if rpc_error.code() == grpc.StatusCode.CANCELLED:
            return errors.Unavailable(f"{endpoint} cancelled the stream (stopping?)")
        return error_from_rpc(rpc_error, b"")

    def failed(self, endpoint: str, error: errors.TandemKVError) -> float:
        """The wait before the stream is opened again; raises `error`
        when the stream ends here."""
        self.failures += 1
        if not retryable(error) or self.failures >= self.retry.attempts_max:
            raise error
        self.router.failed(endpoint, error)
        return self.retry.backoff_s(self.failures - 1)
