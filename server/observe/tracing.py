"""OpenTelemetry spans for the calls a node serves (`serve --tracing`,
optional extra `otel`: `pip install 'tandemkv[otel]'`).

One SERVER span per RPC, started by the gRPC dispatcher's observer hook
as the call arrives and ended when it is done: named by the method
(`tandemkv.v1.KV/Put`), a child of the caller's span when the call carries
W3C trace context in its metadata (`traceparent`, as any OpenTelemetry
instrumented gRPC client sends), with the attributes `rpc.system`,
`rpc.service`, `rpc.method`, `rpc.grpc.status_code`, and for a request
that names them `tandemkv.request_id` (hex) and `tandemkv.key`, and
`tandemkv.outcome` (the status code's name). Spans go to the global tracer
provider: configure it (exporter, sampler) the way OpenTelemetry's SDK is
configured, e.g. by running the node under `opentelemetry-instrument`.
"""

from __future__ import annotations

from typing import Any

from tandemkv.server.observe.context import CURRENT_SPAN


def tracing_missing() -> str | None:
    """Why tracing cannot be on here (None: it can)."""
    try:
        import opentelemetry.propagate  # noqa: F401
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return "tracing needs OpenTelemetry: pip install 'tandemkv[otel]' (opentelemetry-api and -sdk)"
    return None


class RpcTracer:
    """Spans for RPCs; `call_started` is the dispatcher's observer hook (the
    request's id and key are added by `context.bind_request`)."""

    def __init__(self, tracer_provider: Any = None) -> None:
        from opentelemetry import propagate, trace

        from tandemkv.server.observe.metrics import code_name

        self._code_name = code_name
        self._code_numbers = _code_numbers()
        self._trace = trace
        self._propagate = propagate
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer("tandemkv.server")

    def call_started(self, path: str, context: Any, streaming: bool) -> None:
        service, _, method = path.lstrip("/").partition("/")
        carrier = {key: value for key, value in (context.invocation_metadata() or ())
                   if isinstance(value, str)}
        parent = self._propagate.extract(carrier)
        span = self._tracer.start_span(f"{service}/{method}", context=parent, kind=self._trace.SpanKind.SERVER,
                                       attributes={"rpc.system": "grpc", "rpc.service": service,
                                                   "rpc.method": method, "tandemkv.streaming": streaming})
        CURRENT_SPAN.set(span)  # this call's task: bind_request tags it with the request
        numbers = self._code_numbers

        def done(finished: Any) -> None:
            name = self._code_name(finished.code())
            if finished.cancelled() and name == "OK":
                name = "CANCELLED"
            span.set_attribute("tandemkv.outcome", name)
            span.set_attribute("rpc.grpc.status_code", numbers.get(name, 2))
            if name != "OK":
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, name))
            span.end()
        context.add_done_callback(done)


def _code_numbers() -> dict[str, int]:
    import grpc

    return {status.name: status.value[0] for status in grpc.StatusCode}


def combined(*observers: Any):
    """One observer hook calling each of `observers` that is not None (None if none is)."""
    present = [observer for observer in observers if observer is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def observe(path: str, context: Any, streaming: bool) -> None:
        for observer in present:
            observer(path, context, streaming)
    return observe
