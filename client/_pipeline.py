"""Auto-pipelining: concurrent operations of one client coalesce into
`Batch.Call`s while earlier sends to the same endpoint are in flight.

The rule, per endpoint (ioredis's auto-pipelining, without a timer): an
operation that finds fewer than PIPELINE_FLIGHTS_PER_ENDPOINT_MAX sends in
flight goes at once, alone, as its plain one-op RPC (no added delay); one
that finds them all busy waits in the endpoint's queue. When a send comes
back, everything queued (up to BATCH_OPS_MAX operations and
BATCH_REQUEST_BYTES_MAX encoded bytes) goes out as one `Batch.Call`, or as
the plain RPC when only one operation waited.

What coalescing keeps: each operation was already an attempt of its own
plan (`_core.unary`): its endpoint, its request with its request id, its
timeout. The pipeline only carries the attempt and hands its outcome back
as a plain send would: the response message, or a `grpc.RpcError` with the
code, message and trailing metadata a single call would have failed with
(a `BatchError` is turned back into one), so `error_from_rpc`, the retry
and the typed exception are the operation's own. A retried operation
carries the same request id, so a batch retried after an unknown outcome
applies nothing twice (the server answers a known id with the stored
result); a retry may join a different batch.

Guarantees kept: a linearizable get that travels in a batch still observes
every write acknowledged before it was sent: the server joins one read
barrier for the batch after the batch arrives, that is after every such
acknowledgement. Writes are acknowledged only once durable, as before.

This module is the shared part and does no I/O: the queue per endpoint,
which operations form the next flight, the batch request, and the hand-over
of answers. The drivers (`_pipeline_drivers`) send and wait: with gRPC
futures and threads for `Client`, with tasks for `AsyncClient`.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Any, Protocol

import grpc

from tandemkv import limits
from tandemkv.client import _operations as ops
from tandemkv.errors import ERROR_METADATA_KEY
from tandemkv.v1 import batch_pb2

# Sends (plain or batched) in flight to one endpoint before new operations
# queue. One, as ioredis does: measured on 2 cores against 1 to 4, at 4, 16
# and 256 calls in flight, more flights only meant more, smaller RPCs
# (at 256: 6.3k puts/s and 10.8k gets/s with one, 5.5-6.5k and 9.0-9.4k
# with two, 4.5k and 7.1k with three).
PIPELINE_FLIGHTS_PER_ENDPOINT_MAX = 1
# Operations waiting for one endpoint; past it an operation goes at once on
# its own (the callers themselves bound it: each waits for its answer).
PIPELINE_QUEUED_OPS_MAX = 16 * limits.BATCH_OPS_MAX
# How long past its own attempt timeout an operation in a flight waits for
# the flight's answer to be handed over before it reports an unknown outcome.
PIPELINE_HANDOVER_S_MAX = 0.5

# The operations `Batch.Call` carries: (service, method) -> BatchOp field.
BATCH_FIELDS = {
    ("KV", "Put"): "put", ("KV", "Get"): "get", ("KV", "Delete"): "delete", ("KV", "Range"): "range",
    ("Counter", "Incr"): "counter_incr", ("Counter", "Get"): "counter_get",
    ("Counter", "Set"): "counter_set", ("Counter", "CompareAndSet"): "counter_compare_and_set",
    ("Counter", "Delete"): "counter_delete", ("Registry", "Whereis"): "whereis",
}
_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
# How the auth gate names the op it refused a Batch.Call for ("batch op 2: user ...").
BATCH_REFUSAL_PREFIX = "batch op "


def batchable(operation: ops.Operation) -> bool:
    """Whether `operation` can travel in a `Batch.Call`; others go as today."""
    return (operation.service, operation.method) in BATCH_FIELDS and not operation.stream \
        and not operation.local


class Waiter(Protocol):
    """Where one operation's outcome is handed over (a driver's future)."""

    def claim(self) -> bool:
        """Marks the operation as sent; False when its caller gave up."""

    def resolve(self, response: Any) -> None: ...

    def reject(self, error: grpc.RpcError) -> None: ...


class PipelineRpcError(grpc.RpcError):
    """An operation's failure as a single call would have reported it."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple = ()):
        super().__init__(details)
        self._code, self._details, self._trailing = code, details, tuple(trailing)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailing

    @classmethod
    def from_batch_error(cls, error: batch_pb2.BatchError) -> PipelineRpcError:
        code = _STATUS_BY_NUMBER.get(error.code, grpc.StatusCode.UNKNOWN)
        return cls(code, error.message, tuple(sorted(error.metadata.items())))


def not_sent(endpoint: str, why: str) -> PipelineRpcError:
    """The error of an operation that never left: nothing applied, retry."""
    return PipelineRpcError(grpc.StatusCode.UNAVAILABLE, f"not sent to {endpoint}: {why}; retry",
                            ((ERROR_METADATA_KEY, "Unavailable"),))


def _refused_number(error: grpc.RpcError) -> int | None:
    """N of a Batch.Call refused with PERMISSION_DENIED "batch op N: ..."."""
    details = error.details() or ""
    if error.code() != grpc.StatusCode.PERMISSION_DENIED or not details.startswith(BATCH_REFUSAL_PREFIX):
        return None
    number = details[len(BATCH_REFUSAL_PREFIX):].partition(":")[0]
    return int(number) if number.isdigit() else None


def _refused_op(flight: Flight, error: grpc.RpcError) -> PipelineRpcError | None:
    """The refusal of one op of a batched flight, as its own call would
    have been refused; None for any other failure."""
    number = _refused_number(error) if flight.batched else None
    if number is None or number >= len(flight.pendings):
        return None
    message = (error.details() or "").partition(": ")[2]
    return PipelineRpcError(grpc.StatusCode.PERMISSION_DENIED, message)


@dataclasses.dataclass(eq=False)
class Pending:
    """One operation's attempt on its way through the pipeline."""

    endpoint: str
    operation: ops.Operation
    timeout_s: float
    waiter: Waiter
    deadline: float = 0.0  # time.monotonic() by which its caller stops waiting
    size_bytes: int = 0  # what it adds to an encoded BatchRequest
    sent: bool = False

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s
        self.size_bytes = _field_bytes(_field_bytes(self.operation.request.ByteSize()))

    def gave_up(self) -> PipelineRpcError:
        """The error of an operation whose caller stopped waiting: never
        sent (UNAVAILABLE, nothing applied) or sent (DEADLINE_EXCEEDED:
        it may have applied; its retry carries the same request id)."""
        if not self.sent:
            return not_sent(self.endpoint, f"waited its whole attempt timeout ({self.timeout_s:.3g} s) "
                                           "behind earlier calls")
        return PipelineRpcError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"no answer from {self.endpoint} within the attempt timeout")


def _field_bytes(payload_bytes: int) -> int:
    """Encoded size of a length-delimited field (tag below 16) of that payload."""
    return 1 + max(1, (payload_bytes.bit_length() + 6) // 7) + payload_bytes


class Flight:
    """Operations sent together to one endpoint: one plain RPC for one, a
    `Batch.Call` for several."""

    def __init__(self, endpoint: str, pendings: list[Pending]):
        assert pendings, "a flight carries at least one operation"
        self.endpoint = endpoint
        self.pendings = pendings

    @property
    def batched(self) -> bool:
        return len(self.pendings) > 1

    def timeout_s(self) -> float:
        """Until the last deadline among its operations: one near its end
        does not cut the others short (it stops waiting on its own)."""
        return max(limits.DEADLINE_S_MIN, max(p.deadline for p in self.pendings) - time.monotonic())

    def request(self) -> batch_pb2.BatchRequest:
        batch_ops = []
        for pending in self.pendings:
            operation = pending.operation
            field = BATCH_FIELDS[(operation.service, operation.method)]
            batch_ops.append(batch_pb2.BatchOp(**{field: operation.request}))
        return batch_pb2.BatchRequest(ops=batch_ops)

    def settle(self, response: Any) -> None:
        """Hands each operation its answer from the flight's response."""
        if not self.batched:
            self.pendings[0].waiter.resolve(response)
            return
        results = list(response.results)
        for pending, result in zip(self.pendings, results):
            kind = result.WhichOneof("result")
            if kind == "error":
                pending.waiter.reject(PipelineRpcError.from_batch_error(result.error))
            elif kind is None:
                pending.waiter.reject(PipelineRpcError(
                    grpc.StatusCode.INTERNAL, f"{self.endpoint} answered a batched operation with no result"))
            else:
                pending.waiter.resolve(getattr(result, kind))
        for pending in self.pendings[len(results):]:
            # The write may have applied: an unknown outcome, retried with its id.
            pending.waiter.reject(PipelineRpcError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"{self.endpoint} answered {len(results)} of {len(self.pendings)} batched operations"))

    def fail(self, error: grpc.RpcError) -> None:
        """The whole call failed: each operation fails as its own call would."""
        for pending in self.pendings:
            pending.waiter.reject(error)


@dataclasses.dataclass
class _Lane:
    flying: int = 0
    queue: collections.deque = dataclasses.field(default_factory=collections.deque)


@dataclasses.dataclass
class PipelineCounts:
    """What a client's pipeline sent: RPCs in all, and batches among them."""

    rpcs: int = 0
    batches: int = 0
    batched_ops: int = 0


class Coalescer:
    """The queues of one client, per endpoint. Thread-safe; the lock is
    never held across a send or a wait."""

    def __init__(self, flights_max: int = PIPELINE_FLIGHTS_PER_ENDPOINT_MAX):
        assert flights_max >= 1
        self.flights_max = flights_max
        self.counts = PipelineCounts()
        # Set when a server answers Batch.Call with UNIMPLEMENTED (it
        # predates batches): from then on every operation goes alone.
        self.batches_refused = False
        self._lanes: dict[str, _Lane] = collections.defaultdict(_Lane)
        self._lock = threading.Lock()

    def submit(self, pending: Pending) -> Flight | None:
        """A flight of `pending` alone for the caller to send at once, or
        None when it queued (a landing flight will carry it)."""
        with self._lock:
            lane = self._lanes[pending.endpoint]
            if lane.flying < self.flights_max or self.batches_refused:
                lane.flying += 1
            elif len(lane.queue) >= PIPELINE_QUEUED_OPS_MAX:
                lane.flying += 1  # past the queue's bound: at once, alone
            else:
                lane.queue.append(pending)
                return None
            self.counts.rpcs += 1
        pending.sent = pending.waiter.claim()
        assert pending.sent, "a caller gave up before its operation was submitted"
        return Flight(pending.endpoint, [pending])

    def landed(self, endpoint: str) -> Flight | None:
        """A send to `endpoint` came back: the next flight to send from its
        queue, or None when nothing waits."""
        expired: list[Pending] = []
        taken: list[Pending] = []
        with self._lock:
            lane = self._lanes[endpoint]
            lane.flying -= 1
            assert lane.flying >= 0, "more flights landed than were sent"
            now = time.monotonic()
            request_bytes = 0
            while lane.queue and len(taken) < limits.BATCH_OPS_MAX:
                pending = lane.queue[0]
                if taken and (request_bytes + pending.size_bytes > limits.BATCH_REQUEST_BYTES_MAX
                              or self.batches_refused):
                    break
                lane.queue.popleft()
                if pending.deadline <= now:
                    expired.append(pending)
                elif pending.waiter.claim():  # else its caller gave up
                    pending.sent = True
                    taken.append(pending)
                    request_bytes += pending.size_bytes
            if taken:
                lane.flying += 1
                self.counts.rpcs += 1
                if len(taken) > 1:
                    self.counts.batches += 1
                    self.counts.batched_ops += len(taken)
        for pending in expired:
            if pending.waiter.claim():
                pending.waiter.reject(pending.gave_up())
        return Flight(endpoint, taken) if taken else None

    def batch_failed(self, flight: Flight, error: grpc.RpcError) -> None:
        """A whole flight failed; a server without `Batch.Call` turns
        batching off and its operations are sent again alone."""
        if flight.batched and error.code() == grpc.StatusCode.UNIMPLEMENTED:
            self.batches_refused = True
            for pending in flight.pendings:
                pending.waiter.reject(not_sent(flight.endpoint, "the server has no Batch.Call"))
            return
        refused = _refused_op(flight, error)
        if refused is not None:
            # The auth gate refused the batch for one op, before anything
            # applied: that op's caller gets the refusal, the others go again.
            for number, pending in enumerate(flight.pendings):
                pending.waiter.reject(refused if number == _refused_number(error) else not_sent(
                    flight.endpoint, "another operation in its batch was refused by auth"))
            return
        flight.fail(error)

    def queued(self, endpoint: str) -> int:
        """Operations waiting for `endpoint` now."""
        with self._lock:
            return len(self._lanes[endpoint].queue)
