"""The retry policy: which failures are retried, how long to wait between
attempts, and when to give up. A `Retry` is a plain object with explicit
limits and an injectable sleep and clock, so tests never wait for real.

What is retried: UNAVAILABLE (definitely not applied) and
DEADLINE_EXCEEDED (outcome unknown). A write keeps its request id on every
attempt, so the server applies it at most once. If any attempt of a write
ended with an unknown outcome, giving up raises `OutcomeUnknown` (never
`Unavailable`), because an earlier attempt may have applied it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from typing import Awaitable, Callable

import grpc

from tandemkv import errors
from tandemkv.client._tls import explain_handshake, handshake_refused
from tandemkv.errors import ERROR_METADATA_KEY, LEADER_METADATA_KEY, LIMIT_METADATA_KEY

# A removed node applied nothing: another endpoint may serve the call.
RETRYABLE_ERRORS = (errors.Unavailable, errors.OutcomeUnknown, errors.NodeRemoved)


def retryable(error: errors.TandemKVError) -> bool:
    """Whether another attempt may succeed: a refused TLS handshake is an
    Unavailable that every attempt would meet again, so it is raised at
    once with what to change rather than at the retry deadline."""
    return isinstance(error, RETRYABLE_ERRORS) and not getattr(error, "handshake_refused", False)


@dataclasses.dataclass(frozen=True)
class Retry:
    """How one SDK call retries.

    - `attempts_max`: attempts in all, the first one included.
    - `deadline_s`: overall budget of one call, retries and waits included.
      The defaults go together: 40 attempts whose waits average half
      their ceiling wait about 18 s in all, close to the 20 s deadline,
      so a call rides out a leader election that a loaded machine slows
      to several election timeouts (12 attempts gave up after about 4 s).
    - `attempt_timeout_s`: gRPC deadline of one attempt (cut to what is
      left of `deadline_s`).
    - backoff, with full jitter: the wait after attempt n (0-based) is
      drawn uniformly below its ceiling,
      `min(backoff_max_s, backoff_initial_s * backoff_multiplier ** n)`,
      so clients that failed together (a leader change) do not retry
      together; a redirect to a newly learned leader is tried at once.
    - `jitter`: the uniform source in [0, 1) of those draws; pass a seeded
      `random.Random(seed).random` to replay, or `lambda: 1.0` for none.
    - `sleep` / `async_sleep` / `clock`: injectable for tests.
    """

    attempts_max: int = 40
    deadline_s: float = 20.0
    attempt_timeout_s: float = 5.0
    backoff_initial_s: float = 0.05
    backoff_multiplier: float = 2.0
    backoff_max_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if self.attempts_max < 1:
            raise ValueError("Retry.attempts_max must be at least 1")
        if self.deadline_s <= 0 or self.attempt_timeout_s <= 0:
            raise ValueError("Retry.deadline_s and attempt_timeout_s must be positive")
        if self.backoff_initial_s < 0 or self.backoff_multiplier < 1 or self.backoff_max_s < 0:
            raise ValueError("Retry backoff: need initial >= 0, multiplier >= 1, max >= 0")

    def backoff_ceiling_s(self, attempt: int) -> float:
        return min(self.backoff_max_s, self.backoff_initial_s * self.backoff_multiplier ** attempt)

    def backoff_s(self, attempt: int) -> float:
        """The wait after attempt `attempt` (0-based): a fresh draw below
        its ceiling."""
        fraction = min(1.0, max(0.0, self.jitter()))
        return self.backoff_ceiling_s(attempt) * fraction


NO_RETRY = Retry(attempts_max=1)

# The SDK's one table from a gRPC code to the error it raises (the server's
# table, `tandemkv.server.api.edge`, goes the other way). Where two classes
# report one status, the general one is raised: FAILED_PRECONDITION is a
# `FailedPrecondition` (not `NotAcquired`), OUT_OF_RANGE an `OutOfRange`
# (not `Compacted`). A code not here becomes a plain `TandemKVError`.
ERROR_BY_STATUS_CODE: dict[grpc.StatusCode, type[errors.TandemKVError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.OUT_OF_RANGE: errors.OutOfRange,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.OutcomeUnknown,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
}


def error_from_rpc(error: grpc.RpcError, request_id: bytes) -> errors.TandemKVError:
    """The `tandemkv.errors` exception for a failed RPC, with the leader
    hint (UNAVAILABLE) or the request id (outcome unknown) attached."""
    code = error.code()
    # A failed TLS handshake (or TLS on one side only) says what to pass.
    message = explain_handshake(error.details() or code.name)
    if code == grpc.StatusCode.UNAVAILABLE and _from_transport(error, message):
        # Lost after the request may have left: a write may have applied.
        return errors.OutcomeUnknown(
            f"connection lost during the call ({message}); it may have applied: retry with "
            "the same request id", request_id=request_id or None)
    exception = ERROR_BY_STATUS_CODE.get(code, errors.TandemKVError)(message)
    if code == grpc.StatusCode.UNAVAILABLE and handshake_refused(message):
        exception.handshake_refused = True
    if code == grpc.StatusCode.FAILED_PRECONDITION and _trailing(error, ERROR_METADATA_KEY) == "NodeRemoved":
        exception = errors.NodeRemoved(message)
    if isinstance(exception, errors.Unavailable):
        exception.leader_hint = _leader_hint(error)
    if isinstance(exception, errors.OutcomeUnknown):
        exception.request_id = request_id or None
    if isinstance(exception, errors.InvalidArgument):
        exception.limit = _trailing(error, LIMIT_METADATA_KEY)  # the named limit it broke, if any
    return exception


def _trailing(error: grpc.RpcError, wanted: str) -> str | None:
    try:
        metadata = error.trailing_metadata() or ()
    except Exception:  # noqa: BLE001 - a broken call has no metadata
        return None
    for key, value in metadata:
        if key == wanted and value:
            return value
    return None


def _leader_hint(error: grpc.RpcError) -> str | None:
    return _trailing(error, LEADER_METADATA_KEY)


# gRPC's words for a call that never left because no connection was made
# (a name that does not resolve included: "errors resolving host:port").
NEVER_SENT_MARKERS = ("failed to connect to all addresses", "DNS resolution failed", "errors resolving")


def _from_transport(error: grpc.RpcError, message: str) -> bool:
    """An UNAVAILABLE the transport made after the request may have been
    sent (not TandemKV's "not applied", and not a failure to connect)."""
    if _trailing(error, ERROR_METADATA_KEY) is not None:
        return False
    return not any(marker in message for marker in NEVER_SENT_MARKERS)


class Attempts:
    """Bookkeeping of one call's attempts: decides whether to go on and
    which error to raise when giving up."""

    def __init__(self, retry: Retry, request_id: bytes, write: bool):
        self.retry = retry
        self.request_id = request_id
        self.write = write
        self.deadline = retry.clock() + retry.deadline_s
        self.count = 0
        self.ambiguous = False
        self.last_error: errors.TandemKVError | None = None

    def timeout_s(self) -> float | None:
        """This attempt's gRPC timeout, or None when no attempt is left."""
        remaining_s = self.deadline - self.retry.clock()
        if self.count >= self.retry.attempts_max or remaining_s <= 0:
            return None
        return min(self.retry.attempt_timeout_s, remaining_s)

    def failed(self, error: errors.TandemKVError, redirected: bool) -> float | None:
        """Records a failed attempt; the wait before the next one, or None
        to give up (then raise `final_error()`)."""
        self.count += 1
        self.last_error = error
        if not retryable(error):
            return None
        if isinstance(error, errors.OutcomeUnknown) and self.write:
            self.ambiguous = True
        delay_s = 0.0 if redirected else self.retry.backoff_s(self.count - 1)
        if self.count >= self.retry.attempts_max or self.retry.clock() + delay_s >= self.deadline:
            return None
        return delay_s

    def final_error(self) -> errors.TandemKVError:
        last = self.last_error
        if not self.write and (last is None or isinstance(last, errors.OutcomeUnknown)):
            # A read changes nothing, so its lost answer is no unknown outcome.
            what = "no attempt fitted in the retry deadline" if last is None else last.message
            return errors.Unavailable(f"{what}; the read changed nothing: safe to retry")
        if last is None:
            return errors.OutcomeUnknown("no attempt fitted in the retry deadline",
                                         request_id=self.request_id or None)
        if self.ambiguous and not isinstance(last, errors.OutcomeUnknown):
            return errors.OutcomeUnknown(
                f"gave up after {self.count} attempts; an earlier attempt may have applied "
                f"the write (last error: {last.message}); retry with the same request id",
                request_id=self.request_id or None,
            )
        if isinstance(last, RETRYABLE_ERRORS) and self.count > 1:
            last.message = f"{last.message} (gave up after {self.count} attempts)"
            last.args = (last.message,)
        return last
