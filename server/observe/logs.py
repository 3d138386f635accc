"""A node's log lines: one event per line, `text` (default) or `json`
(`serve --log-format`), every line tagged with the node's name and, where
known, its Raft term and the request id of the call being served
(context.py). In JSON a line is always one event: a traceback is the
event's `exception` field. Text is for people and keeps Python's layout
(a traceback, or the thread stacks SIGUSR1 logs, spans lines).
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import IO

from tandemkv.server.observe.context import REQUEST_ID, TAGS

LOG_FORMATS = ("text", "json")


def parse_log_format(text: str) -> str:
    word = text.strip().lower()
    if word not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}, got {text!r}")
    return word


class NodeTagFilter(logging.Filter):
    """Adds `node`, `term` and `request_id` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = TAGS.node
        record.term = TAGS.term
        record.request_id = REQUEST_ID.get()
        return True


# grpcio's asyncio server logs an ERROR with a traceback on this logger when
# a call's last message or status cannot be sent because the client left
# first (it cancelled, its deadline passed, its connection closed).
GRPC_CORE_LOGGER = "grpc._cython.cygrpc"


class ClientLeftFilter(logging.Filter):
    """Turns grpcio's report of a client that left before its call's status
    was sent (an `ExecuteBatchError`) into one INFO line: that is the
    client's doing, not a fault of the node, and a traceback would say
    otherwise."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and type(error).__name__ == "ExecuteBatchError":
            said = record.getMessage()
            record.msg, record.args = "a client left before its call's status was sent (%s)", (said,)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "node": getattr(record, "node", TAGS.node),
            "logger": record.name,
            "message": record.getMessage(),
        }
        term = getattr(record, "term", 0)
        if term:
            event["term"] = term
        request_id = getattr(record, "request_id", "")
        if request_id:
            event["request_id"] = request_id
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        return json.dumps(event, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(node)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        # The request tag goes on the event's first line, before any traceback.
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", "")
        if request_id:
            line += f" [request {request_id}]"
        return line


def configure(level: str, log_format: str, node: str, stream: IO[str]) -> None:
    """The process's logging: one handler on `stream`, tagged with `node`."""
    TAGS.node = node
    handler = logging.StreamHandler(stream)
    handler.addFilter(NodeTagFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    grpc_core = logging.getLogger(GRPC_CORE_LOGGER)
    if not any(isinstance(f, ClientLeftFilter) for f in grpc_core.filters):
        grpc_core.addFilter(ClientLeftFilter())
