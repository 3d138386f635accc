"""Commands from any thread into the Raft log, and their outcomes back to
the callers (a mixin of RaftMember).

A caller's command waits in a queue (bounded by
limits.RAFT_QUEUE_COMMANDS_MAX; a full queue answers QUEUE_FULL at once)
and a pipe wakes the tick thread, once per drain rather than once per
command. On its next tick the tick thread turns every queued command into
log entries (`group_entries`, which packs runs of KV and counter writes
into one entry each) and proposes them together: adaptive batching, i.e.
low latency when idle and large batches when busy.

An outcome reached while the tick thread applies a batch is held until
that batch's write transaction has committed (member.py's
`_SyncObj__applyLogEntries`), so a caller is never told of a write that a
crash could still lose or a read could not see yet; futures of one event
loop are then resolved with one call into it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
from typing import Callable

from pysyncobj.config import FAIL_REASON

from tandemkv import limits
from tandemkv.server.raft.contract import Outcome
from tandemkv.server.raft.transport import FlushingTransport

# pysyncobj's failure codes as Outcomes (a code it might add is an unknown outcome).
_OUTCOMES = {getattr(FAIL_REASON, outcome.name): outcome for outcome in Outcome}
_UNKNOWN = Outcome.UNKNOWN_OUTCOME

# What pysyncobj calls back with (result, failure code) once it is done with a command.
Callback = Callable[[object, int], None]
# (encoded command, callback, batchable) -> [(log entry, callback)], in order
GroupEntries = Callable[[list[tuple[bytes, Callback, bool]]], list[tuple[bytes, Callback]]]


class CommandSubmission:
    """Needs the member's replicated `apply` and its transport's wake-up
    pipe; `_init_submission` runs before SyncObj's constructor."""

    apply: Callable[..., object]
    _transport: Callable[[], FlushingTransport]

    def _init_submission(self, group_entries: GroupEntries) -> None:
        self._group_entries = group_entries
        # Told of each round of proposals, (commands, log entries), on the
        # tick thread: the node's metrics (Replica.observe); None: not told.
        self.on_proposed: Callable[[int, int], None] | None = None
        # Commands queued by callers for the tick thread (deque: thread-safe).
        self._pending: collections.deque = collections.deque()
        # The tick thread while it applies a batch: outcomes reached on it wait.
        self._batch_thread_id: int | None = None
        self._deferred: list[tuple[Callback, object, int]] = []
        self._deferred_async: dict[asyncio.AbstractEventLoop, list] = {}
        self._wakeup_pending = False

    def submit(self, command: bytes, batchable: bool) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()

        def resolve(result, failure_code):
            try:
                future.set_result((result, _OUTCOMES.get(failure_code, _UNKNOWN)))
            except concurrent.futures.InvalidStateError:
                pass  # the waiter gave up (timeout); the outcome is dropped

        self._queue(command, self._after_commit(resolve), batchable)
        return future

    def submit_async(self, command: bytes, loop: asyncio.AbstractEventLoop,
                     batchable: bool) -> asyncio.Future:
        future = loop.create_future()

        def resolve(result, failure_code):
            outcome = (result, _OUTCOMES.get(failure_code, _UNKNOWN))
            if self._batch_thread_id == threading.get_ident():
                self._deferred_async.setdefault(loop, []).append((future, outcome))
            else:
                loop.call_soon_threadsafe(_resolve_many, [(future, outcome)])

        self._queue(command, resolve, batchable)
        return future

    def _queue(self, command: bytes, callback: Callback, batchable: bool) -> None:
        if len(self._pending) >= limits.RAFT_QUEUE_COMMANDS_MAX:
            callback(None, FAIL_REASON.QUEUE_FULL)
            return
        self._pending.append((command, callback, batchable))
        # One wake-up is enough while the tick thread has not drained the
        # queue yet; a pipe write per command costs a syscall each.
        if not self._wakeup_pending:
            self._wakeup_pending = True
            self._transport().wakeup.notify()

    def _propose_pending(self) -> None:
        """Hands the queued commands to pysyncobj as log entries (tick thread)."""
        pending = self._pending
        taken = [pending.popleft() for _ in range(len(pending))]
        if taken:
            entries = self._group_entries(taken)
            for entry, callback in entries:
                self.apply(entry, callback=callback)
            if self.on_proposed is not None:
                self.on_proposed(len(taken), len(entries))

    def _after_commit(self, callback: Callback) -> Callback:
        def deferred(result, failure_code):
            if self._batch_thread_id == threading.get_ident():
                self._deferred.append((callback, result, failure_code))
            else:
                callback(result, failure_code)
        return deferred

    def _release_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for callback, result, failure_code in deferred:
            callback(result, failure_code)
        by_loop, self._deferred_async = self._deferred_async, {}
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_many, items)
            except RuntimeError:
                pass  # that loop is closed; nobody waits any more


def _resolve_many(items) -> None:
    for future, outcome in items:
        if not future.done():
            future.set_result(outcome)
