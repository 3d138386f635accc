"""The one exception tree of TandemKV, shared by the server, the embedded
`Node` and the SDK, and the one table that maps it to gRPC status codes.

Expected operating errors are these exceptions; programmer errors are
assertions. Each message says what to do next.
"""

from __future__ import annotations

import grpc


class TandemKVError(Exception):
    """Base of every error TandemKV raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(TandemKVError):
    """The request is malformed or breaks a named limit; fix it, don't retry."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, limit: str | None = None):
        super().__init__(message)
        self.limit = limit


class FailedPrecondition(TandemKVError):
    """The state does not allow the operation (e.g. the wrong type)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class OutOfRange(TandemKVError):
    """The result would leave its range (e.g. int64 counter overflow)."""

    code = grpc.StatusCode.OUT_OF_RANGE


class NotFound(TandemKVError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(TandemKVError):
    """The name is taken. From the registry, `owner` is the current owner's
    value and `token` its fencing token (None when unknown)."""

    code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, message: str, owner: bytes | None = None, token: int | None = None):
        super().__init__(message)
        self.owner = owner
        self.token = token


class NotAcquired(TandemKVError):
    """A lock or an election was not won within the wait. `token` is the
    current holder's fencing token (None when unknown). Nothing is held."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, token: int | None = None):
        super().__init__(message)
        self.token = token


class Compacted(TandemKVError):
    """A watch asked for revisions older than the retained history. Re-read
    the range, then watch again from `compact_revision + 1` (or later)."""

    code = grpc.StatusCode.OUT_OF_RANGE

    def __init__(self, message: str, compact_revision: int = 0):
        super().__init__(message)
        self.compact_revision = compact_revision


class Unavailable(TandemKVError):
    """Definitely not applied (no leader, no quorum, queue full, node
    stopping): safe to retry, on this node or on `leader_hint`."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str, leader_hint: str | None = None):
        super().__init__(message)
        self.leader_hint = leader_hint


class OutcomeUnknown(TandemKVError):
    """The write may or may not have been applied (timeout, leader change
    while in flight). Retry with the same request id: the retry returns the
    first result and never applies twice."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED

    def __init__(self, message: str, request_id: bytes | None = None):
        super().__init__(message)
        self.request_id = request_id


class ResourceExhausted(TandemKVError):
    """Overloaded, or the store is full; back off, or free space."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unauthenticated(TandemKVError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(TandemKVError):
    code = grpc.StatusCode.PERMISSION_DENIED


# Trailing metadata the server sets and the SDK reads: the leader's client
# address (with UNAVAILABLE), and the error class of every status TandemKV
# itself produced (a status without it came from the transport).
LEADER_METADATA_KEY = "tandemkv-leader"
ERROR_METADATA_KEY = "tandemkv-error"


ERROR_BY_STATUS_CODE: dict[grpc.StatusCode, type[TandemKVError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        FailedPrecondition,
        OutOfRange,
        NotFound,
        AlreadyExists,
        Unavailable,
        OutcomeUnknown,
        ResourceExhausted,
        Unauthenticated,
        PermissionDenied,
    )
}


def error_for_status(code: grpc.StatusCode, message: str) -> TandemKVError:
    """The exception a client raises for a gRPC status the server sent."""
    cls = ERROR_BY_STATUS_CODE.get(code, TandemKVError)
    return cls(message)
