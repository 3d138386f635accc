"""The API edge: what every gRPC handler does around one node call.

This module owns the order of checks for a request (validate against the
named limits, check the remaining deadline, call the node) and the one
mapping from `tandemkv.errors` to a gRPC status, message and trailing
metadata (`GRPC_CODE_BY_STATUS`: the errors carry a status name, this
table is where the server turns it into a gRPC code). It knows nothing
about individual RPCs or about Raft.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from typing import Any, Callable, Protocol

import grpc
import grpc.aio
from google.protobuf.message import Message

from tandemkv import errors, limits
from tandemkv.errors import ERROR_METADATA_KEY, LEADER_METADATA_KEY, LIMIT_METADATA_KEY, Status
from tandemkv.server.strong.validation import check_request


log = logging.getLogger(__name__)

# The server's one table from the status an error names to the gRPC code
# it is reported with (the SDK's table, `tandemkv.client._retry`, goes
# back). Every `Status` is here; tests/test_status_tables.py keeps it so.
GRPC_CODE_BY_STATUS: dict[Status, grpc.StatusCode] = {
    Status.UNKNOWN: grpc.StatusCode.UNKNOWN,
    Status.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Status.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Status.OUT_OF_RANGE: grpc.StatusCode.OUT_OF_RANGE,
    Status.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Status.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    Status.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Status.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    Status.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Status.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Status.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
}


class NodeCalls(Protocol):
    """The part of `tandemkv.server.Node` the servicers use. The CRDT
    servicer uses `node.crdt`, and Cluster.Status and the health follower
    read `node.available` (the `AvailablePlane`, None while it is not
    running) with getattr, so a node without an available plane need not
    have it."""

    def propose(self, request: Message, *, timeout_s: float) -> Message: ...

    def query(self, request: Message, *, timeout_s: float) -> Message: ...

    def batch(self, ops: list[Message], *, timeout_s: float) -> list[Any]: ...

    def status(self) -> Any: ...

    def lock_acquire(self, request: Message, *, timeout_s: float) -> Message: ...

    def campaign(self, request: Message, *, timeout_s: float) -> Message: ...

    def observe(self, election: bytes, stop: Any = None) -> Any: ...

    def watch(self, request: Message, stop: Any = None) -> Any: ...

    def watch_session(self, wake: Callable[[], None]) -> Any: ...


def status_for_error(error: BaseException) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """The gRPC code, message and trailing metadata that report `error`.

    The code comes from the status the exception class names
    (`GRPC_CODE_BY_STATUS`); anything else is a bug and becomes INTERNAL
    without leaking internals."""
    if isinstance(error, errors.TandemKVError):
        metadata: tuple[tuple[str, str], ...] = ((ERROR_METADATA_KEY, type(error).__name__),)
        leader_hint = getattr(error, "leader_hint", None)
        if leader_hint:
            metadata += ((LEADER_METADATA_KEY, leader_hint),)
        metadata += tuple(getattr(error, "trailing_metadata", ()))
        message = error.message
        limit = getattr(error, "limit", None)
        if limit:
            metadata += ((LIMIT_METADATA_KEY, limit),)
            if limit not in message:
                message = f"{message} (limit: {limit})"
        return GRPC_CODE_BY_STATUS[error.status], message, metadata
    return grpc.StatusCode.INTERNAL, f"internal error ({type(error).__name__}); see the server log", ()


def node_timeout_s(context: grpc.ServicerContext) -> float:
    """How long the node may take: the caller's remaining deadline (capped at
    DEADLINE_S_MAX, which is also the deadline of a call that sets
    none) minus a margin. Raises `DeadlineTooShort` (DEADLINE_EXCEEDED,
    nothing proposed) when less than DEADLINE_S_MIN is left."""
    remaining_s = context.time_remaining()
    if remaining_s is None or remaining_s > limits.DEADLINE_S_MAX:
        remaining_s = limits.DEADLINE_S_MAX
    if remaining_s < limits.DEADLINE_S_MIN:
        raise DeadlineTooShort(
            f"the call's remaining deadline ({remaining_s * 1000:.1f} ms) is below "
            f"DEADLINE_S_MIN ({limits.DEADLINE_S_MIN * 1000:.0f} ms); "
            "nothing was proposed, retry with a longer deadline"
        )
    margin_s = min(limits.DEADLINE_MARGIN_S_MAX, remaining_s * limits.DEADLINE_MARGIN_FRACTION)
    return remaining_s - margin_s


class DeadlineTooShort(errors.TandemKVError):
    """The call arrived with too little deadline left; nothing was done."""

    status = Status.DEADLINE_EXCEEDED


async def handle(
    context: grpc.aio.ServicerContext,
    request: Message,
    call: Callable[..., Any],
) -> Message:
    """Validate `request`, check the deadline, then `call(request, timeout_s=...)`:
    awaited when it is a coroutine function (the node's `*_async` calls,
    which hold no thread while they wait), else run on the event loop's
    executor (its threads are the server's call threads).

    Every expected failure is reported through `status_for_error`; the
    node is never called for a request that fails validation or the
    deadline check."""
    try:
        check_request(request)
        timeout_s = node_timeout_s(context)
        if inspect.iscoroutinefunction(call):
            return await call(request, timeout_s=timeout_s)
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(call, request, timeout_s=timeout_s))
    except grpc.aio.AbortError:
        raise
    except Exception as error:  # noqa: BLE001 - every error becomes a status
        if not isinstance(error, errors.TandemKVError):
            log.exception("unexpected error serving %s", type(request).__name__)
        await abort(context, error)
        raise AssertionError("context.abort returned")  # pragma: no cover


async def abort(context: grpc.aio.ServicerContext, error: BaseException) -> None:
    """Ends the call with `error`'s status (raises grpc.aio.AbortError)."""
    code, message, metadata = status_for_error(error)
    await context.abort(code, message, trailing_metadata=metadata)
