"""`enqueue_many`'s plan (client/_job_enqueue_many.py) and both SDK faces
driving it, with no cluster: items cut into requests within
JOB_ENQUEUE_MANY_JOBS_MAX jobs and COMMAND_SIZE_BYTES_MAX bytes (the Raft
command the node builds from each, encoded here, never passes it), in
order, each with its own request id; an item too large refused before
anything is sent; a failure part way naming what was enqueued; and the
CLI's `--from-file` reading and reporting.

Method: the plan is pure; the faces run against a stand-in client whose
`run` answers ids or raises on a chosen request. The CLI's parts are
called in-process (tests/test_cli_enqueue_many.py runs the command).
"""

from __future__ import annotations

import asyncio
import io
import os
from types import SimpleNamespace

import pytest

from tandemkv import limits
from tandemkv.client._job_enqueue_many import (
    ENQUEUE_MANY_ENVELOPE_BYTES_MAX, EnqueueMany, chunk_bounds, job_bytes, request_bytes_max,
)
from tandemkv.client._jobs import Jobs
from tandemkv.client._jobs_async import AsyncJobs
from tandemkv.errors import InvalidArgument, OutcomeUnknown, Unavailable
from tandemkv.server.cli import jobs as cli_jobs
from tandemkv.server.strong import commands

# The largest values a command's envelope fields can take.
LONGEST_QUEUE = b"q" * limits.JOB_QUEUE_BYTES_MAX
INT64_MIN, UINT64_MAX = -2**63, 2**64 - 1
WIDEST = dict(unique_keys=None, run_at=4e9, priority=limits.JOB_PRIORITY_MAX,
              max_attempts=limits.JOB_MAX_ATTEMPTS_MAX, timeout_s=limits.JOB_TIMEOUT_MS_MAX / 1000,
              max_lost_claims=limits.JOB_MAX_LOST_CLAIMS_MAX)


def command_bytes(operation) -> int:
    """The Raft command the node would propose for this request, at its widest."""
    return len(commands.encode_write(operation.request, os.urandom(limits.REQUEST_ID_BYTES), INT64_MIN,
                                     UINT64_MAX))


def test_no_items_make_no_request():
    assert EnqueueMany("q", []).operations == [] and chunk_bounds([], 100) == []


def test_items_past_the_jobs_limit_go_in_order_in_requests_of_at_most_the_limit():
    count = 2 * limits.JOB_ENQUEUE_MANY_JOBS_MAX + 7
    plan = EnqueueMany("q", [b"%d" % n for n in range(count)])
    assert plan.bounds == [(0, 1000), (1000, 2000), (2000, count)]
    sent = [job.args for operation in plan.operations for job in operation.request.jobs]
    assert sent == [b"%d" % n for n in range(count)]
    request_ids = {operation.request.request_id for operation in plan.operations}
    assert len(request_ids) == 3 and all(len(r) == limits.REQUEST_ID_BYTES for r in request_ids)


def widest_plan(items: list[bytes]) -> EnqueueMany:
    return EnqueueMany(LONGEST_QUEUE, items, **{**WIDEST, "unique_keys": [
        b"k" * limits.JOB_UNIQUE_KEY_BYTES_MAX] * len(items)})


def test_a_request_filled_to_its_byte_budget_still_fits_one_raft_command():
    budget = request_bytes_max(LONGEST_QUEUE)

    def pair_bytes(args_bytes: int) -> int:
        return 2 * job_bytes(widest_plan([b"x" * args_bytes]).operations[0].request.jobs[0])
    # The largest args two jobs can have and still share one request.
    low, high = 0, budget // 2
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if pair_bytes(middle) <= budget else (low, middle - 1)
    fits = widest_plan([b"x" * low] * 2)
    assert fits.bounds == [(0, 2)] and budget - pair_bytes(low) < 8
    assert command_bytes(fits.operations[0]) <= limits.COMMAND_SIZE_BYTES_MAX
    assert command_bytes(fits.operations[0]) - pair_bytes(low) - len(LONGEST_QUEUE) <= ENQUEUE_MANY_ENVELOPE_BYTES_MAX
    assert widest_plan([b"x" * (low + 1)] * 2).bounds == [(0, 1), (1, 2)]


def test_requests_cut_on_bytes_keep_every_item_in_order():
    for args_bytes in (30_000, 120_000):
        items = [os.urandom(args_bytes) for _ in range(12)]
        plan = widest_plan(items)
        assert len(plan.operations) > 1
        assert all(command_bytes(operation) <= limits.COMMAND_SIZE_BYTES_MAX for operation in plan.operations)
        assert [job.args for operation in plan.operations for job in operation.request.jobs] == items


@pytest.mark.parametrize("items, keys, limit", [
    ([b"a", b"x" * (limits.JOB_ARGS_BYTES_MAX + 1)], None, "JOB_ARGS_BYTES_MAX"),
    ([b"a", b"b"], [b"k", b"k" * (limits.JOB_UNIQUE_KEY_BYTES_MAX + 1)], "JOB_UNIQUE_KEY_BYTES_MAX"),
])
def test_an_item_too_large_is_refused_before_anything_is_sent(items, keys, limit):
    client = StandIn()
    with pytest.raises(InvalidArgument, match=r"\[1\]|\[3\]") as refused:
        Jobs(client).enqueue_many("q", items, unique_keys=keys)
    assert refused.value.limit == limit and "nothing was enqueued" in refused.value.message
    assert client.sent == []


def test_an_item_at_every_limit_fits_one_request_on_its_own():
    items = [b"a", b"x" * limits.JOB_ARGS_BYTES_MAX, b"b"]
    keys = [b"k1", b"u" * limits.JOB_UNIQUE_KEY_BYTES_MAX, b"k3"]
    plan = EnqueueMany(b"q" * limits.JOB_QUEUE_BYTES_MAX, items, unique_keys=keys, priority=limits.JOB_PRIORITY_MAX,
                       max_attempts=limits.JOB_MAX_ATTEMPTS_MAX, timeout_s=limits.JOB_TIMEOUT_MS_MAX / 1000,
                       max_lost_claims=limits.JOB_MAX_LOST_CLAIMS_MAX)
    assert all(command_bytes(operation) <= limits.COMMAND_SIZE_BYTES_MAX for operation in plan.operations)
    assert [job.args for operation in plan.operations for job in operation.request.jobs] == items


def test_unique_keys_must_be_one_per_item():
    with pytest.raises(ValueError, match="one per item"):
        EnqueueMany("q", [b"a", b"b"], unique_keys=[b"k"])


class StandIn:
    """A client whose `run` answers each EnqueueMany with consecutive ids
    (from 100), and raises `fail_with` on request number `fail_at`."""

    def __init__(self, fail_at: int | None = None, fail_with: Exception | None = None):
        self.sent: list = []
        self.fail_at, self.fail_with = fail_at, fail_with
        self.next_id = 100

    def answer(self, operation):
        self.sent.append(operation)
        if len(self.sent) - 1 == self.fail_at:
            raise self.fail_with
        ids = list(range(self.next_id, self.next_id + len(operation.request.jobs)))
        self.next_id += len(ids)
        return operation.decode(SimpleNamespace(jobs=[SimpleNamespace(id=i) for i in ids]))

    def run(self, operation):
        return self.answer(operation)


class AsyncStandIn(StandIn):
    async def run(self, operation):
        await asyncio.sleep(0)
        return self.answer(operation)


def enqueue_many_on(face: str, client: StandIn, items: list[bytes]) -> list[int]:
    if face == "sync":
        return Jobs(client).enqueue_many("q", items)
    return asyncio.run(AsyncJobs(client).enqueue_many("q", items))


@pytest.mark.parametrize("face", ["sync", "async"])
def test_both_faces_send_the_requests_in_order_and_answer_every_id(face):
    count = limits.JOB_ENQUEUE_MANY_JOBS_MAX + 1
    client = StandIn() if face == "sync" else AsyncStandIn()
    ids = enqueue_many_on(face, client, [b"x"] * count)
    assert ids == list(range(100, 100 + count))
    assert [len(operation.request.jobs) for operation in client.sent] == [limits.JOB_ENQUEUE_MANY_JOBS_MAX, 1]
    assert enqueue_many_on(face, StandIn() if face == "sync" else AsyncStandIn(), []) == []


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("error, says", [
    (Unavailable("no leader"), "items 1000..1999 (the failed request) were not; items 2000..2499 were not sent"),
    (OutcomeUnknown("timed out"), "items 1000..1999 (the failed request) may or may not have been"),
])
def test_a_failure_part_way_raises_naming_the_items_enqueued_before_it(face, error, says):
    client = (StandIn if face == "sync" else AsyncStandIn)(fail_at=1, fail_with=error)
    with pytest.raises(type(error)) as raised:
        enqueue_many_on(face, client, [b"x"] * 2500)
    assert raised.value.enqueued_ids == list(range(100, 1100))
    note = " ".join(raised.value.__notes__)
    assert "items 0..999 were enqueued (jobs 100..1099" in note and says in note
    assert len(client.sent) == 2  # nothing sent after the failure


def test_a_failure_of_the_only_request_enqueued_nothing():
    client = StandIn(fail_at=0, fail_with=Unavailable("no leader"))
    with pytest.raises(Unavailable) as raised:
        Jobs(client).enqueue_many("q", [b"a", b"b"])
    assert raised.value.enqueued_ids == [] and not getattr(raised.value, "__notes__", None)


# -- the CLI's parts --

def test_the_cli_reads_a_job_per_line(tmp_path, monkeypatch):
    path = tmp_path / "jobs.txt"
    path.write_bytes(b"one\r\ntwo\n\nfour\n")
    assert cli_jobs.read_job_lines(str(path)) == [b"one", b"two", b"", b"four"]
    monkeypatch.setattr("sys.stdin", SimpleNamespace(buffer=io.BytesIO(b"a\nb")))
    assert cli_jobs.read_job_lines("-") == [b"a", b"b"]
    path.write_bytes(b"ok\n" + b"x" * (limits.JOB_ARGS_BYTES_MAX + 1) + b"\n")
    with pytest.raises(ValueError, match="line 2 is .* over JOB_ARGS_BYTES_MAX"):
        cli_jobs.read_job_lines(str(path))
    path.write_bytes(b"\n" * (cli_jobs.ENQUEUE_FILE_LINES_MAX + 1))
    with pytest.raises(ValueError, match="ENQUEUE_FILE_LINES_MAX"):
        cli_jobs.read_job_lines(str(path))
    with pytest.raises(ValueError, match="No such file"):
        cli_jobs.read_job_lines(str(tmp_path / "missing"))


def test_the_cli_prints_the_ids_enqueued_before_a_failure(tmp_path, capsys):
    path = tmp_path / "jobs.txt"
    path.write_bytes(b"x\n" * (limits.JOB_ENQUEUE_MANY_JOBS_MAX + 5))
    client = SimpleNamespace(jobs=Jobs(StandIn(fail_at=1, fail_with=Unavailable("no leader"))))
    args = SimpleNamespace(queue="q", args=None, from_file=str(path), unique_key=None, priority=0, max_attempts=0,
                           max_lost_claims=0, job_timeout=None, run_in=None, run_at=None, output="text")
    with pytest.raises(Unavailable) as raised:
        cli_jobs.cmd_enqueue(client, args)
    printed = capsys.readouterr().out.split()
    assert printed == [str(n) for n in range(100, 1100)]
    assert "1000 of the 1005 jobs were enqueued before this failed" in raised.value.message
