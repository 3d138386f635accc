"""Recurring jobs: the cron parser and next-run search (pure, UTC), and
crons in the state machine: a due run enqueues a job at the first entry
applied at or after its time, a run is skipped while the previous one is
unfinished, delete stops it, bad expressions are refused naming the field.

Method: cases with known calendar answers for the parser; commands applied
through the node's codec (tests.support.applier) for the state machine,
the log clock moved by the time each command carries.
"""

from __future__ import annotations

import datetime

import pytest

from tandemkv import limits
from tandemkv.errors import InvalidArgument
from tandemkv.server.strong import cron, job_crons, job_reads
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import lease_pb2
from tests.support.applier import Applier, make_view


def ms(*when: int) -> int:
    moment = datetime.datetime(*when, tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)


@pytest.mark.parametrize("expression, after, expected", [
    ("*/15 * * * *", (2026, 1, 1, 10, 7), (2026, 1, 1, 10, 15)),
    ("0 0 * * *", (2026, 1, 1, 0, 0), (2026, 1, 2, 0, 0)),  # strictly after
    ("@hourly", (2026, 1, 1, 23, 59), (2026, 1, 2, 0, 0)),
    ("30 9 * * 1-5", (2026, 1, 2, 12, 0), (2026, 1, 5, 9, 30)),  # Fri noon -> Mon
    ("0 0 29 2 *", (2026, 3, 1), (2028, 2, 29)),  # the next leap day
    ("0 12 1 * 0", (2026, 2, 2), (2026, 2, 8, 12, 0)),  # day 1 OR Sunday: Sunday the 8th first
    ("0 0 * * 7", (2026, 1, 1), (2026, 1, 4)),  # 7 is Sunday
    ("5,10 8-9/1 * 12 *", (2026, 1, 1), (2026, 12, 1, 8, 5)),
])
def test_next_run_matches_the_calendar(expression, after, expected):
    assert cron.next_run_ms(cron.parse(expression), ms(*after)) == ms(*expected)


@pytest.mark.parametrize("expression, says", [
    ("* * * *", "has 4 fields"),
    ("60 * * * *", "minute field"),
    ("* 24 * * *", "hour field"),
    ("* * 0 * *", "day of month"),
    ("* * * 13 *", "month field"),
    ("*/0 * * * *", "steps 1 or more"),
    ("a * * * *", "comma-separated"),
    ("* " * 200, "JOB_CRON_EXPRESSION_BYTES_MAX"),
])
def test_a_bad_expression_is_refused_naming_what_is_wrong(expression, says):
    with pytest.raises(InvalidArgument, match=says):
        cron.parse(expression)


def test_a_date_that_never_comes_finds_no_run():
    assert cron.next_run_ms(cron.parse("0 0 31 2 *"), ms(2026, 1, 1)) is None


@pytest.fixture(params=["memory", "lmdb"])
def applier(request, tmp_path):
    with make_view(request.param, tmp_path) as view:
        applier = Applier(view)
        applier.ts_ms = ms(2026, 1, 1, 10, 0)
        yield applier


def put_cron(applier, name=b"tick", expression="*/5 * * * *", **fields) -> J.JobCron:
    job_cron = J.JobCron(name=name, queue=b"cq", expression=expression, args=b"a", **fields)
    return applier.write(J.JobCronPutRequest(cron=job_cron)).cron


def crons(applier) -> list[J.JobCron]:
    return list(job_crons.read_list(applier.view, J.JobCronListRequest(), applier.index).crons)


def queued(applier) -> list[J.Job]:
    return list(job_reads.read_list(applier.view, J.JobListRequest(queue=b"cq"), applier.index).jobs)


def test_a_due_cron_enqueues_once_per_run_and_skips_while_its_job_is_unfinished(applier):
    assert put_cron(applier).next_run_ms == ms(2026, 1, 1, 10, 5)
    applier.write(lease_pb2.LeaseGrantRequest(ttl_ms=60_000), ts_ms=ms(2026, 1, 1, 10, 4))
    assert queued(applier) == []
    lease = applier.write(lease_pb2.LeaseGrantRequest(ttl_ms=60_000), ts_ms=ms(2026, 1, 1, 10, 5)).id
    (first,) = queued(applier)
    assert first.unique_key == b"cron:tick" and first.args == b"a"
    assert crons(applier)[0].next_run_ms == ms(2026, 1, 1, 10, 10)
    assert crons(applier)[0].last_job_id == first.id
    applier.write(lease_pb2.LeaseKeepAliveRequest(id=lease), ts_ms=ms(2026, 1, 1, 10, 10))
    assert [job.id for job in queued(applier)] == [first.id]  # the first run is still unfinished
    (job,) = applier.write(J.JobClaimRequest(queue=b"cq", lease=lease)).jobs
    applier.write(J.JobCompleteRequest(id=job.id, token=job.token), ts_ms=ms(2026, 1, 1, 10, 16))
    assert [job.id for job in applier.write(J.JobClaimRequest(queue=b"cq", lease=lease, limit=5)).jobs] != []
    assert len(queued(applier)) == 2


def test_a_run_missed_while_idle_is_enqueued_once_not_caught_up(applier):
    put_cron(applier, expression="* * * * *")
    applier.write(lease_pb2.LeaseGrantRequest(ttl_ms=60_000), ts_ms=ms(2026, 1, 1, 12, 0))
    assert len(queued(applier)) == 1
    assert crons(applier)[0].next_run_ms == ms(2026, 1, 1, 12, 1)


def test_delete_stops_a_cron_and_put_replaces_one(applier):
    put_cron(applier)
    replaced = put_cron(applier, expression="@daily")
    assert replaced.next_run_ms == ms(2026, 1, 2) and len(crons(applier)) == 1
    assert applier.write(J.JobCronDeleteRequest(name=b"tick")).deleted
    assert not applier.write(J.JobCronDeleteRequest(name=b"tick")).deleted
    applier.write(lease_pb2.LeaseGrantRequest(ttl_ms=60_000), ts_ms=ms(2026, 1, 3))
    assert crons(applier) == [] and queued(applier) == []


@pytest.mark.parametrize("fields, says", [
    ({"name": b""}, "JOB_CRON_NAME_BYTES_MAX"),
    ({"name": b"n" * (limits.JOB_CRON_NAME_BYTES_MAX + 1)}, "JOB_CRON_NAME_BYTES_MAX"),
    ({"args": b"a" * (limits.JOB_CRON_ARGS_BYTES_MAX + 1)}, "JOB_CRON_ARGS_BYTES_MAX"),
    ({"expression": "61 * * * *"}, "minute field"),
    ({"priority": limits.JOB_PRIORITY_MAX + 1}, "JOB_PRIORITY_MAX"),
])
def test_a_bad_cron_is_refused(applier, fields, says):
    job_cron = J.JobCron(name=b"n", queue=b"cq", expression="* * * * *")
    for name, value in fields.items():
        setattr(job_cron, name, value)
    with pytest.raises(InvalidArgument, match=says):
        applier.write(J.JobCronPutRequest(cron=job_cron))


def test_a_cron_that_can_never_run_is_refused(applier):
    with pytest.raises(InvalidArgument, match="matches no minute"):
        put_cron(applier, expression="0 0 30 2 *")
