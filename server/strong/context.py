"""What the commands of one log entry share while the state machine applies
it, and the exception that abandons a command with an error result."""

from __future__ import annotations

from tandemkv import limits
from tandemkv.v1 import kv_pb2, raft_pb2, watch_pb2

from tandemkv.server.strong.view import StoreView


class ApplyContext:
    """What the commands of one log entry share: the view, the entry's Raft
    index (their revision), the log clock (written back once per entry), how
    many commands ran and how many watch events they emitted so far."""

    def __init__(self, view: StoreView, index: int, clock_ms: int, space_quota_bytes: int = 0):
        self.view = view
        self.index = index
        self.clock_ms = clock_ms
        self.space_quota_bytes = space_quota_bytes
        self.commands = 0
        self.events = 0
        # What the running command's result may still hold.
        self.budget = ResultBudget(limits.WRITE_RESULT_BYTES_MAX)
        # Messages durable-topic retention may still drop in this entry.
        self.topic_prune_left = limits.TOPIC_PRUNE_PER_ENTRY_MAX

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


class ResultBudget:
    """Bytes one command's result may still hold (WRITE_RESULT_BYTES_MAX),
    so no result, and no dedup record, can outgrow it. Reads in a
    transaction stop at what is left (more=true); anything else past it
    fails the command."""

    def __init__(self, size_bytes_max: int):
        self.left_bytes = size_bytes_max

    def spend(self, size_bytes: int, what: str) -> None:
        self.left_bytes -= size_bytes
        if self.left_bytes < 0:
            raise CommandFailed(
                raft_pb2.INVALID_ARGUMENT,
                f"{what} would take the result past WRITE_RESULT_BYTES_MAX="
                f"{limits.WRITE_RESULT_BYTES_MAX} bytes; ask for fewer keys or no prev_kv")
