"""Coalescing queued writes into log entries. Pure: no Raft, no I/O.

Under load many writes wait for the Raft tick thread at once. Proposed one
entry each, every write pays for a pickle, a log record, a slot in each
append-entries message and an apply call on every node. `group_entries`
turns each run of consecutive batchable writes into one `CommandBatch` entry,
which pays those once; `fan_out` hands each caller its own result back. A
node with one write waiting proposes it alone, exactly as before, so
batching adds no latency when idle.

Order is kept: writes enter the log in the order they were queued, and a
command that cannot be batched ends the run before it.
"""

from __future__ import annotations

from typing import Callable, Iterable

from tandemkv import limits
from tandemkv.v1 import raft_pb2

from tandemkv.server.strong.state_machine import COMMAND_FORMAT_VERSION

Callback = Callable[[object, int], None]
# (encoded Command, callback(result, fail_reason), may share an entry)
Pending = tuple[bytes, Callback, bool]

# Bytes protobuf adds around each command of a batch (a tag and a length of
# at most three bytes, for commands up to COMMAND_SIZE_BYTES_MAX), and around
# the whole batch (format version, batch tag and length).
_PER_COMMAND_OVERHEAD_BYTES = 4
_BATCH_OVERHEAD_BYTES = 16


def group_entries(pending: Iterable[Pending],
                  commands_max: int = limits.RAFT_ENTRY_COMMANDS_MAX,
                  bytes_max: int = limits.COMMAND_SIZE_BYTES_MAX) -> list[tuple[bytes, Callback]]:
    """The log entries to propose for `pending`, in order, each with the
    callback that answers every write it holds."""
    entries: list[tuple[bytes, Callback]] = []
    run: list[tuple[bytes, Callback]] = []
    run_bytes = _BATCH_OVERHEAD_BYTES

    for command, callback, batchable in pending:
        size = len(command) + _PER_COMMAND_OVERHEAD_BYTES
        if run and (not batchable or len(run) >= commands_max or run_bytes + size > bytes_max):
            entries.append(_entry(run))
            run, run_bytes = [], _BATCH_OVERHEAD_BYTES
        if batchable:
            run.append((command, callback))
            run_bytes += size
        else:
            entries.append((command, callback))
    if run:
        entries.append(_entry(run))
    return entries


def _entry(run: list[tuple[bytes, Callback]]) -> tuple[bytes, Callback]:
    if len(run) == 1:
        return run[0]
    batch = raft_pb2.Command(format_version=COMMAND_FORMAT_VERSION)
    batch.batch.commands.extend(command for command, _ in run)
    return batch.SerializeToString(), fan_out([callback for _, callback in run])


def fan_out(callbacks: list[Callback]) -> Callback:
    """One callback for a batch entry that answers each write with its own
    result, or passes pysyncobj's failure (or a missing result, from a
    replayed entry) on to all of them."""

    def answer(result, fail_reason) -> None:
        results = _split(result, len(callbacks))
        if results is None:
            for callback in callbacks:
                callback(None, fail_reason)
            return
        for callback, own in zip(callbacks, results):
            callback(own, fail_reason)

    return answer


def _split(result: bytes | None, expected: int) -> list[bytes] | None:
    if result is None:  # pysyncobj failed the entry, or it was applied before
        return None
    results = raft_pb2.CommandResult.FromString(result).batch.results
    # A batch always answers every command; anything else is not a result
    # this batch can hand out, and its callers learn the outcome is unknown.
    return list(results) if len(results) == expected else None
