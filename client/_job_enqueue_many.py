"""`enqueue_many`'s plan, shared by `Jobs.enqueue_many` and
`AsyncJobs.enqueue_many`: the items cut into EnqueueMany requests, in
order, and the ids the answers bring. No I/O: the shells send the
requests one after another and feed each answer back.

Why several requests: one EnqueueMany is one Raft entry, so the server
takes at most JOB_ENQUEUE_MANY_JOBS_MAX jobs in one, and its command must
encode to at most COMMAND_SIZE_BYTES_MAX bytes (256 KiB, far tighter than
GRPC_MESSAGE_BYTES_MAX). A request here is cut before either would be
passed. Each request is all-or-none on its own, with its own request id
(a retry after an unknown outcome is the same request, applied once); a
failure after the first leaves the earlier requests' jobs enqueued, and
the error says so (`failed`).

Everything the server checks per item (args and unique_key sizes, the
room a job takes in a request) is checked here before anything is sent,
so a bad item late in the list does not leave the ones before it
enqueued; what every item shares (queue, priority, ...) the server checks
on the first request, before anything applies.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from tandemkv import limits
from tandemkv.client import _jobs_ops as ops
from tandemkv.client._operations import Operation, new_request_id
from tandemkv.client._results import BytesLike
from tandemkv.errors import InvalidArgument, OutcomeUnknown, TandemKVError
from tandemkv.v1 import jobs_pb2 as J

# Bytes an EnqueueMany command takes beyond its queue's bytes and its jobs:
# the request's request id and field headers, and the Raft command around
# it (format version, request id, clock, space quota, headers): 72 at most
# today (tests/test_job_enqueue_many.py encodes the largest), with room to spare.
ENQUEUE_MANY_ENVELOPE_BYTES_MAX = 128


def _varint_bytes(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def job_bytes(job: J.JobEnqueueRequest) -> int:
    """What one job adds to an EnqueueMany request: its field's tag (jobs
    is field 2: one byte), its length and its encoding."""
    size = job.ByteSize()
    return 1 + _varint_bytes(size) + size


def request_bytes_max(queue: bytes) -> int:
    """The jobs' bytes one request of `queue` may carry."""
    return limits.COMMAND_SIZE_BYTES_MAX - ENQUEUE_MANY_ENVELOPE_BYTES_MAX - len(queue)


def chunk_bounds(sizes: list[int], bytes_max: int) -> list[tuple[int, int]]:
    """The items (by their encoded `sizes`) as [start, end) runs, in order,
    each at most JOB_ENQUEUE_MANY_JOBS_MAX items and `bytes_max` bytes.
    Every size must fit alone (checked before)."""
    bounds: list[tuple[int, int]] = []
    start, used = 0, 0
    for index, size in enumerate(sizes):
        assert size <= bytes_max, (index, size, bytes_max)
        if index > start and (index - start == limits.JOB_ENQUEUE_MANY_JOBS_MAX or used + size > bytes_max):
            bounds.append((start, index))
            start, used = index, 0
        used += size
    if sizes:
        bounds.append((start, len(sizes)))
    return bounds


def _check_item(index: int, job: J.JobEnqueueRequest, size: int, bytes_max: int) -> None:
    if len(job.args) > limits.JOB_ARGS_BYTES_MAX:
        raise InvalidArgument(f"items[{index}] is {len(job.args)} bytes, over JOB_ARGS_BYTES_MAX="
                              f"{limits.JOB_ARGS_BYTES_MAX}; nothing was enqueued", limit="JOB_ARGS_BYTES_MAX")
    if len(job.unique_key) > limits.JOB_UNIQUE_KEY_BYTES_MAX:
        raise InvalidArgument(f"unique_keys[{index}] is {len(job.unique_key)} bytes, over "
                              f"JOB_UNIQUE_KEY_BYTES_MAX={limits.JOB_UNIQUE_KEY_BYTES_MAX}; nothing was enqueued",
                              limit="JOB_UNIQUE_KEY_BYTES_MAX")
    # JOB_ARGS_BYTES_MAX is half a command: an item within its limits always fits one request.
    assert size <= bytes_max, (index, size, bytes_max)


class EnqueueMany:
    """One `enqueue_many` call: its requests (`operations`, built once, each
    with its own request id) and the ids answered so far (`ids`)."""

    def __init__(self, queue: BytesLike, items: Sequence[BytesLike], *, unique_keys: Sequence[BytesLike] | None = None,
                 run_at: float | datetime.datetime | None = None, priority: int = 0, max_attempts: int = 0,
                 timeout_s: float | None = None, max_lost_claims: int = 0):
        items = list(items)
        # One request holding every job, built by the SDK's one EnqueueMany
        # operation; the requests sent are its runs of jobs.
        whole = ops.enqueue_many(queue, items, unique_keys=None if unique_keys is None else list(unique_keys),
                                 run_at=run_at, priority=priority, max_attempts=max_attempts,
                                 timeout_s=timeout_s, max_lost_claims=max_lost_claims)
        queue_bytes = whole.request.queue
        bytes_max = request_bytes_max(queue_bytes)
        sizes = [job_bytes(job) for job in whole.request.jobs]
        for index, (job, size) in enumerate(zip(whole.request.jobs, sizes)):
            _check_item(index, job, size, bytes_max)
        self.total = len(items)
        self.bounds = chunk_bounds(sizes, bytes_max)
        self.operations: list[Operation] = [
            dataclasses.replace(whole, request=J.JobEnqueueManyRequest(
                queue=queue_bytes, jobs=whole.request.jobs[start:end], request_id=new_request_id()))
            for start, end in self.bounds]
        self.ids: list[int] = []
        self.answered = 0  # requests answered, in order

    def enqueued(self, ids: list[int]) -> None:
        """The answer of the next request: its jobs' ids, in its items' order."""
        start, end = self.bounds[self.answered]
        assert len(ids) == end - start, (len(ids), start, end)
        self.ids.extend(ids)
        self.answered += 1

    def failed(self, error: TandemKVError) -> None:
        """Notes on `error`, raised by the request after `ids`, what the call
        did before it: `error.enqueued_ids` (the ids of items 0 .. n-1, in
        order; empty when nothing was), and a note saying which items were
        enqueued, which were not, and which may have been."""
        error.enqueued_ids = list(self.ids)  # type: ignore[attr-defined]
        if len(self.bounds) < 2:
            return
        done = len(self.ids)
        start, end = self.bounds[self.answered]
        before = (f"items 0..{done - 1} were enqueued (jobs {self.ids[0]}..{self.ids[-1]}, in "
                  "error.enqueued_ids)" if done else "no item was enqueued")
        if isinstance(error, OutcomeUnknown):
            failed = f"items {start}..{end - 1} (the failed request) may or may not have been"
        else:
            failed = f"items {start}..{end - 1} (the failed request) were not"
        after = f"; items {end}..{self.total - 1} were not sent" if end < self.total else ""
        error.add_note(f"enqueue_many of {self.total} items in {len(self.bounds)} requests: {before}; "
                       f"{failed}{after}")
