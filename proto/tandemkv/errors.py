"""The one exception tree of TandemKV, shared by the server, the embedded
`Node` and the SDK.

Expected operating errors are these exceptions; programmer errors are
assertions. Each message says what to do next. Each class names the
status it reports (`Status`, gRPC's names as plain strings) and knows
nothing of gRPC itself, so the pure cores that raise these errors load no
gRPC: the API edge maps a name to a gRPC code (one table,
`tandemkv.server.api.edge`), and the SDK maps a gRPC code back to a class
(one table, `tandemkv.client._retry`).
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """The status an error reports, spelled as gRPC spells its codes."""

    UNKNOWN = "UNKNOWN"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"


class TandemKVError(Exception):
    """Base of every error TandemKV raises on purpose."""

    status: Status = Status.UNKNOWN

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(TandemKVError):
    """The request is malformed or breaks a named limit; fix it, don't retry."""

    status = Status.INVALID_ARGUMENT

    def __init__(self, message: str, limit: str | None = None):
        super().__init__(message)
        self.limit = limit


class FailedPrecondition(TandemKVError):
    """The state does not allow the operation (e.g. the wrong type)."""

    status = Status.FAILED_PRECONDITION


class NodeRemoved(FailedPrecondition):
    """The node asked was removed from the cluster and serves nothing;
    nothing was applied. The SDK tries another endpoint."""


class OutOfRange(TandemKVError):
    """The result would leave its range (e.g. int64 counter overflow)."""

    status = Status.OUT_OF_RANGE


class NotFound(TandemKVError):
    status = Status.NOT_FOUND


class AlreadyExists(TandemKVError):
    """The name is taken. From the registry, `owner` is the current owner's
    value and `token` its fencing token (None when unknown)."""

    status = Status.ALREADY_EXISTS

    def __init__(self, message: str, owner: bytes | None = None, token: int | None = None):
        super().__init__(message)
        self.owner = owner
        self.token = token


class NotAcquired(TandemKVError):
    """A lock or an election was not won within the wait. `token` is the
    current holder's fencing token (None when unknown). Nothing is held."""

    status = Status.FAILED_PRECONDITION

    def __init__(self, message: str, token: int | None = None):
        super().__init__(message)
        self.token = token


class Compacted(TandemKVError):
    """A watch asked for revisions older than the retained history. Re-read
    the range, then watch again from `compact_revision + 1` (or later)."""

    status = Status.OUT_OF_RANGE

    def __init__(self, message: str, compact_revision: int = 0):
        super().__init__(message)
        self.compact_revision = compact_revision


class Unavailable(TandemKVError):
    """Definitely not applied (no leader, no quorum, queue full, node
    stopping): safe to retry, on this node or on `leader_hint`."""

    status = Status.UNAVAILABLE

    def __init__(self, message: str, leader_hint: str | None = None):
        super().__init__(message)
        self.leader_hint = leader_hint


class OutcomeUnknown(TandemKVError):
    """The write may or may not have been applied (timeout, leader change
    while in flight). Retry with the same request id: the retry returns the
    first result and never applies twice."""

    status = Status.DEADLINE_EXCEEDED

    def __init__(self, message: str, request_id: bytes | None = None):
        super().__init__(message)
        self.request_id = request_id


class ResourceExhausted(TandemKVError):
    """Overloaded, or the store is full; back off, or free space."""

    status = Status.RESOURCE_EXHAUSTED


class Unauthenticated(TandemKVError):
    status = Status.UNAUTHENTICATED


class PermissionDenied(TandemKVError):
    status = Status.PERMISSION_DENIED


# Trailing metadata the server sets and the SDK reads: the leader's client
# address (with UNAVAILABLE), and the error class of every status TandemKV
# itself produced (a status without it came from the transport).
LEADER_METADATA_KEY = "tandemkv-leader"
ERROR_METADATA_KEY = "tandemkv-error"
# The named limit an INVALID_ARGUMENT broke (`InvalidArgument.limit`), when one did.
LIMIT_METADATA_KEY = "tandemkv-limit"
