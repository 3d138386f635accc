"""The deadline of one node call, and the errors of a call that ran out of
it; shared by single calls and batches."""

from __future__ import annotations

import time

from tandemkv import limits
from tandemkv.errors import OutcomeUnknown


def deadline_of(timeout_s: float | None) -> float:
    """The monotonic time a call with `timeout_s` must end by: no timeout,
    or one over DEADLINE_S_MAX, gets DEADLINE_S_MAX; one under
    DEADLINE_S_MIN is refused before anything is proposed."""
    if timeout_s is None or timeout_s > limits.DEADLINE_S_MAX:
        timeout_s = limits.DEADLINE_S_MAX
    if timeout_s < limits.DEADLINE_S_MIN:
        raise OutcomeUnknown(
            f"deadline of {timeout_s} s is below DEADLINE_S_MIN="
            f"{limits.DEADLINE_S_MIN} s; nothing was proposed")
    return time.monotonic() + timeout_s


def seconds_left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def read_timed_out() -> OutcomeUnknown:
    return OutcomeUnknown("read not confirmed by a read barrier before the deadline; reads "
                          "are safe to retry")
