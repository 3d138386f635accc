"""Cron expressions for recurring jobs: parse five fields and find the next
minute they match, in UTC. Part of the pure state machine: no clock (the
caller gives the time), and written here rather than taken from a library
so that every member, whatever else is installed, computes the same next
run.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12), day
of week (0-7, 0 and 7 are Sunday). Each is `*`, a number, a range `a-b`,
any of those with a step `/n`, or a comma list of them. As in Vixie cron,
when both day fields are restricted a day matches if either does. Macros:
@yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
"""

from __future__ import annotations

import datetime
from typing import NamedTuple

from tandemkv import limits
from tandemkv.errors import InvalidArgument

_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@hourly": "0 * * * *"}
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))
# Days the search for the next run may look ahead: long enough for
# "0 0 29 2 *" (a leap day) after any date.
SEARCH_DAYS_MAX = 8 * 366
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MINUTE_MS = 60_000
# Past this (about the year 9000) no next run is computed, far from
# datetime's limit.
_LATEST_MS = 223_000_000_000_000


class Schedule(NamedTuple):
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is *
    any_weekday: bool  # day of week is *


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if span == "*":
                start, end = low, high
            elif "-" in span:
                start, end = (int(x) for x in span.split("-", 1))
            else:
                start = end = int(span)
        except ValueError:
            raise InvalidArgument(f"cron {name} field {text!r}: use *, N, A-B, */N or A-B/N, "
                                  "comma-separated") from None
        if step < 1 or not low <= start <= end <= high:
            raise InvalidArgument(f"cron {name} field {text!r}: values must be {low}-{high}, "
                                  "ranges low-high, steps 1 or more")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse(expression: str) -> Schedule:
    """The schedule of a five-field expression or a macro; InvalidArgument
    naming the field that is wrong."""
    if len(expression.encode()) > limits.JOB_CRON_EXPRESSION_BYTES_MAX:
        raise InvalidArgument(f"cron expression is over JOB_CRON_EXPRESSION_BYTES_MAX="
                              f"{limits.JOB_CRON_EXPRESSION_BYTES_MAX} bytes",
                              limit="JOB_CRON_EXPRESSION_BYTES_MAX")
    words = _MACROS.get(expression.strip(), expression).split()
    if len(words) != 5:
        raise InvalidArgument(f"cron expression {expression!r} has {len(words)} fields; give five "
                              "(minute hour day-of-month month day-of-week) or a macro such as @hourly")
    sets = [_field(word, *spec) for word, spec in zip(words, _FIELDS)]
    weekdays = frozenset(day % 7 for day in sets[4])
    return Schedule(sets[0], sets[1], sets[2], sets[3], weekdays, words[2] == "*", words[4] == "*")


def _day_matches(schedule: Schedule, day: datetime.datetime) -> bool:
    if day.month not in schedule.months:
        return False
    by_date = day.day in schedule.days
    by_weekday = (day.isoweekday() % 7) in schedule.weekdays
    if schedule.any_day or schedule.any_weekday:
        return by_date and by_weekday
    return by_date or by_weekday


def next_run_ms(schedule: Schedule, after_ms: int) -> int | None:
    """The first matching minute strictly after `after_ms` (epoch ms, UTC),
    as epoch ms; None if none comes within SEARCH_DAYS_MAX days."""
    if not 0 <= after_ms < _LATEST_MS:
        return None
    start = _EPOCH + datetime.timedelta(milliseconds=(after_ms // _MINUTE_MS + 1) * _MINUTE_MS)
    day = start.replace(hour=0, minute=0)
    for _ in range(SEARCH_DAYS_MAX + 1):
        if _day_matches(schedule, day):
            for hour in sorted(schedule.hours):
                for minute in sorted(schedule.minutes):
                    moment = day.replace(hour=hour, minute=minute)
                    if moment >= start:
                        return (moment - _EPOCH) // datetime.timedelta(milliseconds=1)
        day += datetime.timedelta(days=1)
    return None
