"""What a log line is tagged with beyond the record itself: the request id
of the call being served (a contextvar, so each gRPC call's task carries
its own) and the node's name and Raft term (the process's, set once and
kept current by the sampler). Pure: contextvars only."""

from __future__ import annotations

import contextvars

# The hex request id of the call the current task serves; "" outside one.
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("tandemkv_request_id", default="")
# The tracing span of the call the current task serves (tracing.py); None when not traced.
CURRENT_SPAN: contextvars.ContextVar[object | None] = contextvars.ContextVar("tandemkv_span", default=None)
# Longest key, in bytes, copied into a span attribute (keys may be large).
SPAN_KEY_BYTES_MAX = 256


def bind_request(request: object) -> None:
    """Tags this task's log lines with `request`'s request id, if it has one,
    and its span (if the call is traced) with the request id and key."""
    request_id = getattr(request, "request_id", b"")
    if request_id:
        REQUEST_ID.set(request_id.hex())
    span = CURRENT_SPAN.get()
    if span is None:
        return
    if request_id:
        span.set_attribute("tandemkv.request_id", request_id.hex())  # type: ignore[attr-defined]
    key = getattr(request, "key", None)
    if isinstance(key, bytes) and key:
        span.set_attribute("tandemkv.key",  # type: ignore[attr-defined]
                           key[:SPAN_KEY_BYTES_MAX].decode("utf-8", "backslashreplace"))


class NodeTags:
    """The node name and the last Raft term seen, for every log line of the
    process (one node per `tandemkv serve`)."""

    def __init__(self) -> None:
        self.node = ""
        self.term = 0


TAGS = NodeTags()
