"""The pub/sub fault checker (tests/faults/pubsub_check.py) on hand-built
histories: a clean one passes with the right counts, and each kind of
breakage (a lost acknowledged message, a reordering, a duplicate, a replay
that differs, an unexplained best-effort loss, ...) is reported as its own
violation. No cluster, no sockets."""

from __future__ import annotations

import pytest

from tests.faults.pubsub_check import check_best_effort, check_durable, touches
from tests.faults.pubsub_history import Event, Fault, Publish, Segment, payload_of
from tests.faults.pubsub_runner import check_history


# -- durable ---------------------------------------------------------------

def durable_publishes(count: int, first_offset: int = 100, topic: str = "t") -> list[Publish]:
    """`count` publishes by d0, one after the other, at offsets from `first_offset`."""
    return [Publish("d0", n, topic, "", float(n), n + 0.5, "ok", first_offset + n - 1) for n in range(1, count + 1)]


def read(offsets: list[int], first_offset: int = 100, topic: str = "t") -> list[Event]:
    """Messages as a reader sees them: offset k carries d0's message k - first_offset + 1."""
    return [Event(50.0, "message", topic, payload_of("d0", o - first_offset + 1), offset=o) for o in offsets]


def durable_segment(subscriber: str, events: list[Event], from_offset: int = 0, open_s: float = 0.0,
                    node: str = "n1") -> Segment:
    return Segment(subscriber, node, ("t",), durable=True, from_offset=from_offset, open_s=open_s, end_s=60.0,
                   end="closed", events=events)


def violation_kinds(verdict) -> set[str]:
    return {name.split(":", 1)[1] for name in verdict.counts if name.startswith("violation:")}


def test_a_clean_durable_history_with_a_resume_and_a_replay_passes():
    publishes = durable_publishes(6)
    segments = [
        durable_segment("a", read([100, 101, 102])),
        durable_segment("a", read([103, 104, 105]), from_offset=103, open_s=10),  # resumed where it stopped
        durable_segment("b", read([100, 101, 102, 103])),
        durable_segment("b", read([101, 102, 103, 104, 105]), from_offset=101, open_s=10),  # a replay
    ]
    verdict = check_durable(publishes, segments)
    assert verdict.ok, verdict.violations
    assert verdict.counts["acknowledged_read"] == 12  # six each
    assert verdict.counts["replays"] == 1 and verdict.counts["resumes"] == 2


def test_an_acknowledged_message_skipped_by_a_subscriber_is_reported_lost():
    verdict = check_durable(durable_publishes(4), [durable_segment("a", read([100, 101, 103]))])
    assert violation_kinds(verdict) == {"silent-hole", "acknowledged-lost"}
    assert any("d0:3" in text for text in verdict.violations)


def test_a_message_lost_between_two_segments_of_one_subscriber_is_reported():
    segments = [durable_segment("a", read([100, 101])),
                durable_segment("a", read([103]), from_offset=103, open_s=10)]
    verdict = check_durable(durable_publishes(4), segments)
    assert "acknowledged-lost" in violation_kinds(verdict)
    assert "harness-skipped" in violation_kinds(verdict)


def test_offsets_out_of_order_or_repeated_after_a_resume_are_reported():
    reordered = check_durable(durable_publishes(3), [durable_segment("a", read([100, 102, 101]))])
    assert "repeated-or-reordered" in violation_kinds(reordered)
    # Resumed at 102 (after reading 101) but handed 101 again first: a duplicate.
    repeated = check_durable(durable_publishes(3), [
        durable_segment("a", read([100, 101])),
        durable_segment("a", read([101, 102]), from_offset=102, open_s=10)])
    assert violation_kinds(repeated) == {"repeated-or-reordered"}


def test_a_replay_returning_another_message_at_an_offset_is_reported():
    changed = read([100, 101, 102])
    changed[1] = Event(50.0, "message", "t", payload_of("d0", 3), offset=101)
    verdict = check_durable(durable_publishes(3), [durable_segment("a", read([100, 101, 102])),
                                                   durable_segment("b", changed, node="n2")])
    assert "replay-differs" in violation_kinds(verdict)
    assert "appended-twice" in violation_kinds(verdict)


def test_a_retention_gap_accounts_for_the_messages_it_covers():
    events = [Event(50.0, "gap", offset=100, first_offset=102), *read([102, 103])]
    verdict = check_durable(durable_publishes(4), [durable_segment("a", events, from_offset=100)])
    assert verdict.ok, verdict.violations
    assert verdict.counts["acknowledged_in_retention_gap"] == 2
    assert verdict.counts["retention_gap_offsets"] == 2
    misplaced = [Event(50.0, "gap", offset=101, first_offset=102), *read([102, 103])]
    assert "gap-misplaced" in violation_kinds(
        check_durable(durable_publishes(4), [durable_segment("a", misplaced, from_offset=100)]))


def test_a_subscriber_that_never_reached_the_last_acknowledged_offset_is_reported():
    verdict = check_durable(durable_publishes(3), [durable_segment("a", read([100, 101]))])
    assert violation_kinds(verdict) == {"not-caught-up"}


def test_offsets_must_follow_the_order_publishes_were_acknowledged_in():
    publishes = [Publish("d0", 1, "t", "", 0.0, 1.0, "ok", 101), Publish("d0", 2, "t", "", 2.0, 3.0, "ok", 100)]
    events = [Event(5.0, "message", "t", "d0:2", offset=100), Event(5.0, "message", "t", "d0:1", offset=101)]
    verdict = check_durable(publishes, [durable_segment("a", events)])
    assert violation_kinds(verdict) == {"real-time-order"}


def test_one_offset_acknowledged_to_two_publishes_is_reported():
    publishes = durable_publishes(2) + [Publish("d1", 1, "t", "", 3.0, 3.5, "ok", 101)]
    verdict = check_durable(publishes, [durable_segment("a", read([100, 101]))])
    assert "offset-acknowledged-twice" in violation_kinds(verdict)


def test_a_message_nobody_sent_or_one_answered_as_failed_is_reported():
    publishes = durable_publishes(2) + [Publish("d0", 3, "t", "", 3.0, 3.5, "fail")]
    events = read([100, 101]) + [Event(50.0, "message", "t", "d0:3", offset=102),
                                 Event(50.0, "message", "t", "zz:1", offset=103)]
    verdict = check_durable(publishes, [durable_segment("a", events)])
    assert violation_kinds(verdict) == {"failed-publish-delivered", "never-sent"}


# -- best-effort -----------------------------------------------------------

def live_publishes(publisher: str = "p-n1", node: str = "n1", count: int = 5, topic: str = "live/0",
                   start_s: float = 10.0) -> list[Publish]:
    return [Publish(publisher, n, topic, node, start_s + n, start_s + n + 0.1, "ok") for n in range(1, count + 1)]


def got(numbers: list[int], publisher: str = "p-n1", topic: str = "live/0", node: str = "n1",
        incarnation: int = 7, delay_s: float = 0.2) -> list[Event]:
    """Deliveries of `numbers`, each `delay_s` after `live_publishes` had it answered."""
    return [Event(10.0 + n + 0.1 + delay_s, "message", topic, payload_of(publisher, n),
                  stamp=(node, incarnation, 1, n)) for n in numbers]


def live_segment(events: list[Event], node: str = "n2", drained: bool = False, prefixes: tuple = ()) -> Segment:
    return Segment("live-1", node, () if prefixes else ("live/0",), prefixes, open_s=5.0, end_s=40.0,
                   end="closed", drained=drained, events=events)


def test_a_clean_best_effort_history_passes_and_counts_what_was_in_flight():
    verdict = check_best_effort(live_publishes(), [live_segment(got([1, 2, 3, 4, 5]), prefixes=("live/",)),
                                                   live_segment(got([1, 2, 3]))], [])
    assert verdict.ok, verdict.violations
    assert verdict.counts["expected"] == 10 and verdict.counts["delivered"] == 8
    assert verdict.counts["in_flight_when_closed"] == 2  # 4 and 5 after the second one's last


def test_a_reordering_at_one_subscriber_is_reported():
    verdict = check_best_effort(live_publishes(), [live_segment(got([1, 3, 2, 4, 5]))], [])
    assert violation_kinds(verdict) == {"publisher-order", "stamp-order"}


def test_a_duplicate_is_reported():
    verdict = check_best_effort(live_publishes(), [live_segment(got([1, 2, 2, 3, 4, 5]))], [])
    assert violation_kinds(verdict) == {"duplicate"}


def test_a_loss_no_fault_explains_fails_and_one_a_fault_explains_is_counted():
    hole = live_segment(got([1, 2, 4, 5]))  # 3, published 13-13.1 s, never came
    assert violation_kinds(check_best_effort(live_publishes(), [hole], [])) == {"unexplained-loss"}
    kill = Fault("kill", ("n1",), 12.5, 15.0)  # the publisher's node
    verdict = check_best_effort(live_publishes(), [hole], [kill])
    assert verdict.ok and verdict.counts["lost:kill"] == 1
    # A fault elsewhere, or long before, explains nothing.
    elsewhere = Fault("partition-bridge", ("n1", "n3"), 12.5, 15.0)
    earlier = Fault("kill", ("n1",), 1.0, 2.0)
    assert not check_best_effort(live_publishes(), [hole], [elsewhere, earlier]).ok


def test_a_fault_explains_a_loss_only_while_the_message_was_in_flight():
    # 3 (published 13-13.1 s) lost; 4 arrived at 14.3 s: the path was past 3 by then.
    hole = live_segment(got([1, 2, 4, 5]))
    after_the_path_moved_on = Fault("kill", ("n1",), 15.5, 17.0)
    assert not check_best_effort(live_publishes(), [hole], [after_the_path_moved_on]).ok
    # The same loss with the link stalled: 4 and 5 came only at 20 s, after the kill began.
    stalled = live_segment(got([1, 2]) + [Event(20.0, "message", "live/0", payload_of("p-n1", n),
                                                stamp=("n1", 7, 1, n)) for n in (4, 5)])
    verdict = check_best_effort(live_publishes(), [stalled], [after_the_path_moved_on])
    assert verdict.ok and verdict.counts["lost:kill"] == 1
    # A cut of the link that healed just before counts it only when no later fault took it.
    healed_cut = Fault("partition-bridge", ("n1", "n2"), 10.0, 12.5)
    both = check_best_effort(live_publishes(), [stalled], [healed_cut, after_the_path_moved_on])
    assert both.counts["lost:kill"] == 1 and not both.counts["lost:partition-bridge"]
    assert check_best_effort(live_publishes(), [stalled], [healed_cut]).counts["lost:partition-bridge"] == 1


def test_a_lagged_notice_explains_as_many_losses_as_it_counts():
    events = got([1, 2]) + [Event(30.0, "lagged", missed=1)] + got([4, 5])
    assert check_best_effort(live_publishes(), [live_segment(events)], []).counts["lost:lagged"] == 1
    short = got([1]) + [Event(30.0, "lagged", missed=1)] + got([4, 5])  # two lost, one noticed
    assert violation_kinds(check_best_effort(live_publishes(), [live_segment(short)], [])) == {"unexplained-loss"}
    # A notice elsewhere in the stream does not stand for a hole it is not in.
    elsewhere = got([1, 2, 4, 5]) + [Event(30.0, "lagged", missed=1)]
    assert violation_kinds(check_best_effort(live_publishes(), [live_segment(elsewhere)], [])) == \
        {"unexplained-loss"}


def test_a_drained_subscriber_missing_the_last_messages_is_a_loss():
    verdict = check_best_effort(live_publishes(), [live_segment(got([1, 2, 3]), drained=True)], [])
    assert violation_kinds(verdict) == {"unexplained-loss"} and verdict.counts["violation:unexplained-loss"] == 2


def test_best_effort_messages_nobody_sent_there_are_reported():
    wrong_topic = [Event(30.0, "message", "live/1", "p-n1:1", stamp=("n1", 7, 1, 1))]
    assert "never-sent" in violation_kinds(check_best_effort(live_publishes(), [live_segment(wrong_topic)], []))


@pytest.mark.parametrize("kind, targets, source, target, cut", [
    ("kill", ("n1",), "n1", "n2", True),
    ("pause", ("n2",), "n1", "n2", True),
    ("pause", ("n3",), "n1", "n2", False),
    ("partition-minority", ("n1",), "n1", "n2", True),
    ("partition-minority", ("n3",), "n1", "n2", False),
    ("partition-minority", ("n1",), "n1", "n1", False),
    ("partition-bridge", ("n2", "n1"), "n1", "n2", True),
    ("partition-bridge", ("n1", "n3"), "n1", "n2", False),
    ("partition-one-way", ("n2", "n1"), "n1", "n2", True),
    ("partition-ring", ("n1", "n2", "n3"), "n3", "n1", True),
])
def test_which_faults_can_stop_a_message_between_two_nodes(kind, targets, source, target, cut):
    assert touches(Fault(kind, targets, 0.0, 1.0), source, target) is cut


def test_a_saved_history_is_checked_again_the_same_way():
    history = {
        "durable_publishes": [vars(p) for p in durable_publishes(2)],
        "best_effort_publishes": [vars(p) for p in live_publishes(count=2)],
        "segments": [vars(durable_segment("a", read([100])))] + [vars(live_segment(got([2])))],
        "faults": [{"kind": "kill", "targets": ["n3"], "start_s": 1.0, "end_s": 2.0, "note": ""}],
    }
    for segment in history["segments"]:
        segment["events"] = [vars(event) for event in segment["events"]]
    summary = check_history(history)
    assert not summary["checks_ok"]
    assert summary["durable"]["counts"]["violation:not-caught-up"] == 1
    assert summary["best_effort"]["counts"]["violation:unexplained-loss"] == 1
