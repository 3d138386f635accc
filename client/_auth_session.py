"""The metadata every call of a client carries, put on by channel
interceptors: `authorization: Bearer TOKEN` for a client with credentials
(`_auth_core` decides when to authenticate; the sessions here do it), and
W3C trace context (`traceparent`) of the current OpenTelemetry span, so a
node's span of the call is a child of the caller's.

A client without credentials and without a configured OpenTelemetry
tracer provider gets no interceptor at all: its calls cost what they did.

Where a token is fetched, `Client` (threads): before each attempt of an
operation, in the caller's thread (`refresh_if_due`); an interceptor
blocks to authenticate only when no usable token is held at all (the
first call, or a stream opened after the token expired), so the gRPC
threads that send pipelined flights never wait for one. `AsyncClient`:
the interceptor awaits the token; one authentication at a time, the
others await it; a renewal before expiry runs as a task while calls go on
with the token still valid.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import threading
import time
from typing import Any, Awaitable, Callable

import grpc
import grpc.aio

from tandemkv import errors
from tandemkv.client import _operations as ops
from tandemkv.client._auth_core import AUTHENTICATE_METHOD, Credentials, TokenKeeper

Metadata = tuple[tuple[str, str], ...]
# Set while this thread or task authenticates: the calls that authentication
# makes (a leader lookup, Authenticate itself) go with what is held, or
# they would wait for the authentication they are part of.
_AUTHENTICATING: contextvars.ContextVar[bool] = contextvars.ContextVar("tandemkv_authenticating", default=False)


def _now_ms() -> float:
    return time.monotonic() * 1000.0


def _wall_ms() -> float:
    return time.time() * 1000.0


class AuthSession:
    """`Client`'s token: `authenticate(operation)` runs the client's
    `Authenticate` call (with its retries) and returns the answer."""

    def __init__(self, credentials: Credentials, authenticate: Callable[[ops.Operation], Any]):
        self.keeper = TokenKeeper(credentials)
        self._authenticate = authenticate
        self._lock = threading.Lock()

    def metadata(self) -> Metadata:
        """For an interceptor: the current token, authenticating first only
        when none usable is held."""
        if _AUTHENTICATING.get():
            return self.keeper.metadata()
        if self.keeper.due(_now_ms()) and not self.keeper.usable(_now_ms()):
            with self._lock:
                if not self.keeper.usable(_now_ms()) and self.keeper.due(_now_ms()):
                    self._renew()
        return self.keeper.metadata()

    def refresh_if_due(self) -> None:
        """Before an attempt, in the caller's thread: authenticates when a
        renewal is due; a renewal that fails while the token still works
        is left to the next call (callers carry on with the token)."""
        if _AUTHENTICATING.get() or not self.keeper.due(_now_ms()):
            return
        if self.keeper.usable(_now_ms()):
            if not self._lock.acquire(blocking=False):
                return  # another thread is renewing; this token still works
            try:
                if self.keeper.due(_now_ms()):
                    self._renew()
            except errors.TandemKVError:
                pass
            finally:
                self._lock.release()
            return
        with self._lock:
            if self.keeper.due(_now_ms()) and not self.keeper.usable(_now_ms()):
                self._renew()

    def renew_after_refusal(self) -> bool:
        """A call was refused as "authenticate again": True when it may be
        repeated (a new token is held)."""
        with self._lock:
            decision = self.keeper.renew_after_refusal(_now_ms())
            if decision == "renew":
                self._renew()
            return decision != "give up"

    def _renew(self) -> None:
        reset = _AUTHENTICATING.set(True)
        try:
            response = self._authenticate(self.keeper.authenticate())
        finally:
            _AUTHENTICATING.reset(reset)
        self.keeper.took(response, _now_ms(), _wall_ms())


class AsyncAuthSession:
    """`AsyncClient`'s token: `authenticate(operation)` is awaited."""

    def __init__(self, credentials: Credentials, authenticate: Callable[[ops.Operation], Awaitable[Any]]):
        self.keeper = TokenKeeper(credentials)
        self._authenticate = authenticate
        self._renewing: asyncio.Task | None = None

    async def metadata(self) -> Metadata:
        now_ms = _now_ms()
        if self.keeper.due(now_ms) and not _AUTHENTICATING.get():
            if self.keeper.usable(now_ms):
                self._renewal()  # in the background; this token still works
            else:
                await asyncio.shield(self._renewal())
        return self.keeper.metadata()

    async def renew_after_refusal(self) -> bool:
        decision = self.keeper.renew_after_refusal(_now_ms())
        if decision == "renew":
            await asyncio.shield(self._renewal())
        elif decision == "repeat" and self._renewing is not None:
            await asyncio.shield(self._renewing)
        return decision != "give up"

    def _renewal(self) -> asyncio.Task:
        """The authentication in progress, or a new one."""
        if self._renewing is None or self._renewing.done():
            self._renewing = asyncio.get_running_loop().create_task(self._renew())
            self._renewing.add_done_callback(_retrieve)
        return self._renewing

    async def _renew(self) -> None:
        _AUTHENTICATING.set(True)  # this task's own context: the calls it makes
        response = await self._authenticate(self.keeper.authenticate())
        self.keeper.took(response, _now_ms(), _wall_ms())


def _retrieve(task: asyncio.Task) -> None:
    """A background renewal's failure is seen by the calls that await it,
    or by the next one; it is not an unretrieved task exception."""
    if not task.cancelled():
        task.exception()


# -- trace context -------------------------------------------------------------
def tracing_configured() -> bool:
    """OpenTelemetry is installed and a tracer provider was set (the
    default proxy records nothing, so there is no span to continue)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def trace_metadata() -> Metadata:
    """`traceparent` (and `tracestate`) of the current span; nothing
    outside a recorded span."""
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if not trace.get_current_span().get_span_context().is_valid:
        return ()
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return tuple(carrier.items())


# -- interceptors ------------------------------------------------------------
class _Details(collections.namedtuple("_Details", ("method", "timeout", "metadata", "credentials",
                                                   "wait_for_ready", "compression")),
               grpc.ClientCallDetails):
    pass


class MetadataInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                          grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """`Client`'s channels: the token and trace context on every call."""

    def __init__(self, session: AuthSession | None, tracing: bool):
        self._session = session
        self._tracing = tracing

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        extra: Metadata = ()
        if self._session is not None and details.method != AUTHENTICATE_METHOD:
            extra = self._session.metadata()
        if self._tracing:
            extra = extra + trace_metadata()
        if not extra:
            return details
        return _Details(details.method, details.timeout, (*(details.metadata or ()), *extra),
                        details.credentials, getattr(details, "wait_for_ready", None),
                        getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


class _AsyncMetadata:
    def __init__(self, session: AsyncAuthSession | None, tracing: bool):
        self._session = session
        self._tracing = tracing

    async def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        extra: Metadata = ()
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        if self._session is not None and method != AUTHENTICATE_METHOD:
            extra = await self._session.metadata()
        if self._tracing:
            extra = extra + trace_metadata()
        if not extra:
            return details
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *extra)
        return details._replace(metadata=metadata)


class AsyncUnaryUnary(_AsyncMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(await self._details(client_call_details), request)


class AsyncUnaryStream(_AsyncMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(await self._details(client_call_details), request)


class AsyncStreamUnary(_AsyncMetadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return await continuation(await self._details(client_call_details), request_iterator)


class AsyncStreamStream(_AsyncMetadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await continuation(await self._details(client_call_details), request_iterator)


def sync_interceptors(session: AuthSession | None, tracing: bool) -> list[grpc.UnaryUnaryClientInterceptor]:
    """The interceptors of `Client`'s channels (none when nothing to add)."""
    return [MetadataInterceptor(session, tracing)] if session is not None or tracing else []


def async_interceptors(session: AsyncAuthSession | None, tracing: bool) -> list[Any]:
    """The interceptors of `AsyncClient`'s channels (none when nothing to add)."""
    if session is None and not tracing:
        return []
    return [kind(session, tracing) for kind in (AsyncUnaryUnary, AsyncUnaryStream, AsyncStreamUnary,
                                                AsyncStreamStream)]
