"""What the commands of one log entry share while the state machine applies
it, and the exception that abandons a command with an error result."""

from __future__ import annotations

from tandemkv.v1 import kv_pb2, raft_pb2, watch_pb2

from .view import StoreView


class ApplyContext:
    """What the commands of one log entry share: the view, the entry's Raft
    index (their revision), the log clock (written back once per entry), how
    many commands ran and how many watch events they emitted so far."""

    def __init__(self, view: StoreView, index: int, clock_ms: int):
        self.view = view
        self.index = index
        self.clock_ms = clock_ms
        self.commands = 0
        self.events = 0

    def emit(self, event_type: int, kv: kv_pb2.KeyValue, prev_kv: kv_pb2.KeyValue | None) -> None:
        event = watch_pb2.Event(type=event_type, kv=kv, prev_kv=prev_kv)
        self.view.event_put(self.index, self.events, event.SerializeToString())
        self.events += 1


class CommandFailed(Exception):
    """Raised inside the state machine to abandon a command with an error
    result; caught by the state machine, never escapes `apply_entry`."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.error = raft_pb2.CommandError(code=code, message=message)
