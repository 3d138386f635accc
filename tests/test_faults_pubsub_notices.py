"""How the pub/sub fault checker (tests/faults/pubsub_check.py) spends a
`Lagged` notice: a notice says how many messages a subscriber's buffer
dropped, not which, so a hole with a notice short of it is explained
whenever the messages the notice does not cover are ones a fault explains,
wherever they stand in the hole. Hand-built histories; no cluster.

The shape is that of a CI run (seed 427403559) that failed with 246
"unexplained" losses: the stalling subscriber on n2 missed 7,441 burst
messages of n1 between two arrivals, published from before a partition of
n2 until after it; the notice there counted 7,195. Spending the notice on
the oldest messages first left the newest 246, published when no fault
touched n1 or n2, with no explanation, although 246 of the messages in
flight when the partition began could have been the ones the relay lost.
"""

from __future__ import annotations

from tests.faults.pubsub_check import check_best_effort
from tests.faults.pubsub_history import Event, Fault, Publish, Segment, payload_of

BURST = "burst-n1"
# n2 cut off from n1 and n3 from 24 s to 27.5 s; nothing else touches n1 or n2.
PARTITION = Fault("partition-minority", ("n2",), 24.0, 27.5)


def burst(first: int, last: int, start_s: float) -> list[Publish]:
    """Messages `first`..`last` of the burst publisher on n1, 1 ms apart from `start_s`."""
    return [Publish(BURST, n, "burst/0", "n1", start_s + (n - first) / 1000, start_s + (n - first) / 1000 + 0.001,
                    "ok") for n in range(first, last + 1)]


def arrivals(numbers: range, at_s: float) -> list[Event]:
    return [Event(at_s, "message", "burst/0", payload_of(BURST, n), stamp=("n1", 7, 1, n)) for n in numbers]


def slow_segment(missed: int) -> Segment:
    """Got 1..100 early; then, after its stall, a notice of `missed` and 301..400."""
    events = arrivals(range(1, 101), 23.5) + [Event(41.0, "lagged", missed=missed)] + arrivals(range(301, 401), 41.0)
    return Segment("slow", "n2", ("burst/0",), open_s=1.0, end_s=45.0, end="closed", drained=True, slow=True,
                   events=events)


def publishes() -> list[Publish]:
    # 1..200 published at 23 s, just before the partition (in flight when it
    # began: the subscriber passed them only at 41 s); 201..400 at 32.6 s.
    return burst(1, 200, 23.0) + burst(201, 400, 32.6)


def test_a_short_notice_is_spent_on_the_losses_no_fault_explains():
    # 200 missing (101..300), a notice of 190: ten lost elsewhere. Those can
    # be ten of 101..200, which the partition explains; 201..300 are the notice's.
    verdict = check_best_effort(publishes(), [slow_segment(190)], [PARTITION])
    assert verdict.ok, verdict.violations
    assert verdict.counts["lost:lagged"] == 190 and verdict.counts["lost:partition-minority"] == 10
    assert verdict.counts["lost"] == 200


def test_a_notice_short_of_the_losses_no_fault_explains_still_fails():
    # Without the partition nothing explains the ten the notice does not cover.
    verdict = check_best_effort(publishes(), [slow_segment(190)], [])
    assert verdict.counts["violation:unexplained-loss"] == 10
    assert "the notices where it would have come counted 190" in verdict.violations[0]
    # Nor can the partition cover more than the messages it explains: a notice
    # of 90 leaves 201..300 (100, no fault on their path) ten short.
    verdict = check_best_effort(publishes(), [slow_segment(90)], [PARTITION])
    assert verdict.counts["violation:unexplained-loss"] == 10
    assert {text.split()[1] for text in verdict.violations} == {payload_of(BURST, n) for n in range(291, 301)}


def test_a_full_notice_explains_every_loss_and_is_counted_first():
    verdict = check_best_effort(publishes(), [slow_segment(200)], [PARTITION])
    assert verdict.ok and verdict.counts["lost:lagged"] == 200 and not verdict.counts["lost:partition-minority"]


def test_notices_are_matched_to_the_holes_they_stand_in_across_publishers():
    # Two publishers interleaved; one notice of 1 stands in both holes (p-a's
    # 2 and p-b's 2), a second notice of 1 only in p-b's. Spent in the
    # order published (p-b's first), the first notice went to p-b and left
    # p-a's hole bare; the matching covers both.
    def sent(publisher: str, start_s: float) -> list[Publish]:
        return [Publish(publisher, n, "live/0", "n1", start_s + n, start_s + n + 0.1, "ok") for n in (1, 2, 3)]

    def got(publisher: str, n: int) -> Event:
        return Event(20.0, "message", "live/0", payload_of(publisher, n), stamp=("n1", 7, ord(publisher[-1]), n))

    events = [got("p-a", 1), got("p-b", 1), Event(20.0, "lagged", missed=1), got("p-a", 3),
              Event(20.0, "lagged", missed=1), got("p-b", 3)]
    segment = Segment("live-1", "n2", ("live/0",), open_s=5.0, end_s=40.0, end="closed", events=events)
    verdict = check_best_effort(sent("p-a", 10.0) + sent("p-b", 9.5), [segment], [])
    assert verdict.ok, verdict.violations
    assert verdict.counts["lost:lagged"] == 2
