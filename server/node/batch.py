"""Batched calls: many independent operations in one call, each with its own
request id and its own result or error.

A batch is not atomic (`txn` is): each write applies exactly once on its own,
each read answers on its own, and one failing operation fails only itself.
What a batch saves is the per-call cost: its writes are queued together, so
the replica packs them into as few log entries as it can and one fsync
covers them, and all its linearizable reads wait on one read barrier.

Order: operations of one batch are concurrent with each other, as calls
sent at the same moment are; a read of a batch observes every write
acknowledged before the batch arrived, and may or may not observe the
batch's own writes. A caller that needs an order sends the later call after
the earlier one's answer.

The plan (validate, submit the writes, join the barrier) is shared by the
blocking and the asyncio entry points; only the waiting differs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from typing import Any, Sequence

from google.protobuf.message import Message

from tandemkv import limits
from tandemkv.errors import InvalidArgument, OutcomeUnknown, TandemKVError, Unavailable
from tandemkv.server.node.deadlines import deadline_of, read_timed_out, seconds_left
from tandemkv.server.strong import commands
from tandemkv.v1 import kv_pb2

BatchResult = Message | TandemKVError


@dataclasses.dataclass
class _Slot:
    """One operation of a batch on its way: a refusal known before anything
    was proposed, a write waiting on its outcome, or a read waiting on the
    batch's barrier."""

    error: TandemKVError | None = None
    write: Any = None  # the future of a write's outcome
    request_id: bytes = b""
    reader: Any = None
    request: Message | None = None


class NodeBatches:
    """Mixin of `Node`: `batch` and `batch_async`. Needs the node's write and
    read steps (`_submit_write`, `_write_response`, `_check_read`, ...)."""

    def batch(self, ops: Sequence[Message], *, timeout_s: float | None = None) -> list[BatchResult]:
        """Runs `ops` (write and read requests, as `propose` and `query` take
        them) and returns one response or `TandemKVError` per op, in order."""
        deadline = self._batch_deadline(ops, timeout_s)
        slots, barrier = self._plan_batch(ops, loop=None)
        barrier_outcome = None
        if barrier is not None:
            try:
                barrier_outcome = barrier.result(timeout=seconds_left(deadline))
            except concurrent.futures.TimeoutError:
                barrier_outcome = _TIMED_OUT
        outcomes = []
        for slot in slots:
            if slot.write is None:
                outcomes.append(None)
                continue
            try:
                outcomes.append(slot.write.result(timeout=seconds_left(deadline)))
            except concurrent.futures.TimeoutError:
                outcomes.append(_TIMED_OUT)
        return self._answers(slots, outcomes, barrier_outcome)

    async def batch_async(self, ops: Sequence[Message], *,
                          timeout_s: float | None = None) -> list[BatchResult]:
        """`batch` for asyncio callers: waits without holding a thread."""
        deadline = self._batch_deadline(ops, timeout_s)
        loop = asyncio.get_running_loop()
        slots, barrier = self._plan_batch(ops, loop=loop)
        pending = [slot.write for slot in slots if slot.write is not None]
        if barrier is not None:
            pending.append(barrier)
        if pending:
            await asyncio.wait(pending, timeout=seconds_left(deadline))
        barrier_outcome = None if barrier is None else _done_outcome(barrier)
        outcomes = [None if slot.write is None else _done_outcome(slot.write) for slot in slots]
        return self._answers(slots, outcomes, barrier_outcome)

    # -- the shared steps --
    @staticmethod
    def _batch_deadline(ops: Sequence[Message], timeout_s: float | None) -> float:
        if not ops:
            raise InvalidArgument("a batch needs at least one operation")
        if len(ops) > limits.BATCH_OPS_MAX:
            raise InvalidArgument(
                f"a batch of {len(ops)} operations is over BATCH_OPS_MAX={limits.BATCH_OPS_MAX}; "
                "split it", limit="BATCH_OPS_MAX")
        return deadline_of(timeout_s)

    def _plan_batch(self, ops: Sequence[Message], loop: asyncio.AbstractEventLoop | None):
        """Validates every op, submits the writes and, when a linearizable
        read is among the ops, joins the read barrier once. Returns the slots
        and the barrier's future (None when no read needs it)."""
        slots: list[_Slot] = []
        needs_barrier = False
        for op in ops:
            slot = _Slot()
            try:
                if type(op) in commands.WRITE_FIELDS:
                    slot.write, slot.request_id = self._submit_write(op, loop)
                else:
                    slot.reader, slot.request = self._check_read(op), op
                    needs_barrier |= op.consistency == kv_pb2.LINEARIZABLE
            except TandemKVError as error:
                slot.error = error
            slots.append(slot)
        barrier = None
        if needs_barrier:
            group = self._require_barrier().join()
            barrier = group if loop is None else self._async_barrier(group)
        return slots, barrier

    def _answers(self, slots: list[_Slot], outcomes: list, barrier_outcome) -> list[BatchResult]:
        """Every op's answer, within BATCH_RESPONSE_BYTES_MAX: past it, an
        answer is replaced by a retryable error (the first always fits: one
        answer is at most RANGE_RESPONSE_BYTES_MAX for a read, WRITE_RESULT_BYTES_MAX for a write)."""
        answers: list[BatchResult] = []
        budget = limits.BATCH_RESPONSE_BYTES_MAX
        for slot, outcome in zip(slots, outcomes):
            answer = self._settle(slot, outcome, barrier_outcome)
            if isinstance(answer, Message):
                size = answer.ByteSize()
                if answers and size > budget:
                    answer = _did_not_fit(slot, size)
                else:
                    budget -= size
            answers.append(answer)
        return answers

    def _settle(self, slot: _Slot, outcome, barrier_outcome) -> BatchResult:
        """The response or error of one op, once its waits are over."""
        if slot.error is not None:
            return slot.error
        try:
            if slot.write is not None:
                if outcome is _TIMED_OUT:
                    return self._timed_out(slot.request_id)
                return self._write_response(outcome, slot.request_id)
            if slot.request.consistency == kv_pb2.LINEARIZABLE:
                if barrier_outcome is _TIMED_OUT:
                    return read_timed_out()
                self._check_barrier(barrier_outcome)
            return self._read_local(slot.reader, slot.request)
        except TandemKVError as error:
            return error


# Marks a wait that ran out of time (an outcome is a tuple, never this).
_TIMED_OUT = object()


def _did_not_fit(slot: _Slot, size: int) -> TandemKVError:
    where = f"its {size}-byte answer did not fit in BATCH_RESPONSE_BYTES_MAX={limits.BATCH_RESPONSE_BYTES_MAX}"
    if slot.write is not None:
        return OutcomeUnknown(f"the write applied but {where}; send it again with the same request id "
                              "for its answer", request_id=slot.request_id)
    return Unavailable(f"the read was not answered: {where}; send it again in a smaller batch")


def _done_outcome(future: asyncio.Future):
    if not future.done():
        return _TIMED_OUT
    return future.result()


