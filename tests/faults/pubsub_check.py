"""Checks of a pub/sub history under faults: pure (no sockets, no threads),
so they run again on a saved history and are tested on hand-built ones.

A history is what the pub/sub workloads recorded (pubsub_history.py:
publishes, subscription segments and their events, the faults).

Durable (`check_durable`): per topic, offsets are one order every reader
agrees on (an offset always carries the same message, a message sits at one
offset, on every node and in every replay); within a subscription offsets
follow each other with no hole and no repeat, a hole only behind a retention
gap; a resumed subscription starts where it was asked to; every
acknowledged message is delivered to every subscriber that read past its
offset (or stands inside a retention gap, counted); publishes acknowledged
one after the other got increasing offsets; and each subscriber (and each
node's final replay) reached the last acknowledged offset.

Best-effort (`check_best_effort`): at every subscription, one publisher's
messages arrive in the order published, each at most once, and only
messages someone sent. A message acknowledged while a subscription was open
that never reached it is a loss; each loss must be explained by a fault of
the schedule that touches the publishing node, the subscriber's node or the
link between them while the message was in flight, or by the
subscription's `Lagged` notices (how many, not which); the rest are
violations. Losses are counted by what explains them.
"""

from __future__ import annotations

import bisect
import collections

from .pubsub_history import Fault, Publish, Segment, Verdict, holds, parse_payload, payload_of

# A message whose path was seen past it (a later message of its publisher
# arrived) up to this long before a fault began may still have been in a
# frame on the wire, or in a buffer, when it began.
FAULT_EXPLAINS_BEFORE_S = 1.0
# ...and one published this long after the heal may meet the connection the
# fault broke before the relay notices and opens another.
FAULT_EXPLAINS_AFTER_S = 2.0
PROCESS_FAULTS = ("kill", "pause")


# -- durable ---------------------------------------------------------------

def check_durable(publishes: list[Publish], segments: list[Segment]) -> Verdict:
    verdict = Verdict()
    by_payload = {p.payload: p for p in publishes}
    acked = [p for p in publishes if p.outcome == "ok"]
    verdict.counts["publishes"] = len(publishes)
    verdict.counts["acknowledged"] = len(acked)
    _check_offsets_agree(verdict, by_payload, segments)
    _check_real_time_order(verdict, acked)
    sessions: dict[str, list[Segment]] = collections.defaultdict(list)
    for segment in segments:
        sessions[segment.subscriber].append(segment)
        _check_segment_sequence(verdict, segment)
    for subscriber, session in sessions.items():
        _check_session(verdict, subscriber, sorted(session, key=lambda s: s.open_s), acked)
    return verdict


def _check_offsets_agree(verdict: Verdict, by_payload: dict[str, Publish], segments: list[Segment]) -> None:
    """One message per (topic, offset) everywhere; one offset per message;
    an acknowledged offset is where its message is read; only sent messages."""
    at_offset: dict[tuple[str, int], str] = {}
    offset_of: dict[str, tuple[str, int]] = {}
    for p in by_payload.values():
        if p.outcome == "ok":
            known = at_offset.setdefault((p.topic, p.offset), p.payload)
            if known != p.payload:
                verdict.violate("offset-acknowledged-twice", f"{p.topic}@{p.offset} acknowledged to {known} and "
                                                             f"to {p.payload}")
            offset_of[p.payload] = (p.topic, p.offset)
    for segment in segments:
        for event in segment.events:
            if event.kind != "message":
                continue
            verdict.counts["delivered"] += 1
            place = (event.topic, event.offset)
            sent = by_payload.get(event.payload)
            if sent is None or sent.topic != event.topic:
                verdict.violate("never-sent", f"{segment.subscriber} on {segment.node} read {event.payload!r} at "
                                               f"{place}, which no publisher sent to that topic")
                continue
            if sent.outcome == "fail":
                verdict.violate("failed-publish-delivered", f"{event.payload} was answered as not applied, "
                                                            f"yet {segment.subscriber} read it at {place}")
            known = at_offset.setdefault(place, event.payload)
            if known != event.payload:
                verdict.violate("replay-differs", f"{place} holds {known!r} but {segment.subscriber} on "
                                                  f"{segment.node} read {event.payload!r} there")
            first_place = offset_of.setdefault(event.payload, place)
            if first_place != place:
                verdict.violate("appended-twice", f"{event.payload} read at {first_place} and at {place}")


def _check_real_time_order(verdict: Verdict, acked: list[Publish]) -> None:
    """A publish acknowledged before another was invoked has a lower offset."""
    by_topic: dict[str, list[Publish]] = collections.defaultdict(list)
    for p in acked:
        by_topic[p.topic].append(p)
    for topic, topic_publishes in by_topic.items():
        done = sorted(topic_publishes, key=lambda p: p.complete_s)
        index, highest = 0, None
        for p in sorted(topic_publishes, key=lambda p: p.invoke_s):
            while index < len(done) and done[index].complete_s < p.invoke_s:
                if highest is None or done[index].offset > highest.offset:
                    highest = done[index]
                index += 1
            if highest is not None and highest.offset >= p.offset:
                verdict.violate("real-time-order", f"{topic}: {highest.payload} was acknowledged at offset "
                                                   f"{highest.offset} before {p.payload} was sent, which got "
                                                   f"offset {p.offset}")


def _check_segment_sequence(verdict: Verdict, segment: Segment) -> None:
    """Offsets follow each other from where the subscription was asked to
    start (0: the first retained, wherever that is); a hole only behind a gap."""
    expected = segment.from_offset or None
    for event in segment.events:
        if event.kind == "gap":
            verdict.counts["retention_gaps"] += 1
            verdict.counts["retention_gap_offsets"] += event.first_offset - event.offset
            if expected is not None and event.offset != expected:
                verdict.violate("gap-misplaced", f"{segment.subscriber}: gap from {event.offset} where offset "
                                                 f"{expected} was next")
            expected = event.first_offset
            continue
        if event.kind != "message":
            verdict.violate("unexpected-event", f"{segment.subscriber}: a durable subscription yielded {event}")
            continue
        if expected is not None and event.offset < expected:
            verdict.violate("repeated-or-reordered", f"{segment.subscriber} on {segment.node}: offset "
                                                     f"{event.offset} after {expected - 1}")
        elif expected is not None and event.offset > expected:
            verdict.violate("silent-hole", f"{segment.subscriber} on {segment.node}: offsets {expected} to "
                                           f"{event.offset - 1} skipped without a gap")
        expected = event.offset + 1


def _check_session(verdict: Verdict, subscriber: str, session: list[Segment], acked: list[Publish]) -> None:
    """Resumes start where asked (a replay re-reads what was read, the same);
    every acknowledged offset the subscriber passed was read or lies in a gap;
    the subscriber reached the last acknowledged offset."""
    topics = {topic for segment in session for topic in segment.topics}
    assert len(topics) == 1, f"a durable subscriber reads one topic: {subscriber} has {topics}"
    topic = topics.pop()
    read: set[int] = set()
    gaps: list[tuple[int, int]] = []
    reached = -1
    for index, segment in enumerate(session):
        if index > 0:
            resumed_at = segment.from_offset or 0
            verdict.counts["resumes"] += 1
            if resumed_at < reached + 1:
                verdict.counts["replays"] += 1
                verdict.counts["replayed_offsets_asked"] += reached + 1 - resumed_at
            elif resumed_at > reached + 1 and reached >= 0:
                verdict.violate("harness-skipped", f"{subscriber} resumed at {resumed_at} after reading to {reached}")
        for event in segment.events:
            if event.kind == "gap":
                gaps.append((event.offset, event.first_offset))
                reached = max(reached, event.first_offset - 1)
            elif event.kind == "message":
                read.add(event.offset)
                reached = max(reached, event.offset)
    mine = [p for p in acked if p.topic == topic]
    for p in mine:
        if p.offset > reached:
            continue
        if p.offset in read:
            verdict.counts["acknowledged_read"] += 1
        elif any(start <= p.offset < end for start, end in gaps):
            verdict.counts["acknowledged_in_retention_gap"] += 1
        else:
            verdict.violate("acknowledged-lost", f"{p.payload} at {topic}@{p.offset} (acknowledged at "
                                                 f"{p.complete_s} s) never reached {subscriber}, which read "
                                                 f"up to {reached}")
    last = max((p.offset for p in mine), default=-1)
    if last > reached:
        verdict.violate("not-caught-up", f"{subscriber} read {topic} up to {reached}; the last acknowledged "
                                         f"offset is {last}")


# -- best-effort -----------------------------------------------------------

def check_best_effort(publishes: list[Publish], segments: list[Segment], faults: list[Fault]) -> Verdict:
    verdict = Verdict()
    by_payload = {p.payload: p for p in publishes}
    verdict.counts["publishes"] = len(publishes)
    verdict.counts["acknowledged"] = sum(p.outcome == "ok" for p in publishes)
    acked_by_topic: dict[str, list[Publish]] = collections.defaultdict(list)
    for p in sorted(publishes, key=lambda p: p.invoke_s):
        if p.outcome == "ok":
            acked_by_topic[p.topic].append(p)
    for segment in segments:
        delivered = _check_order(verdict, segment, by_payload)
        sent_while_open = []
        for topic, acked in acked_by_topic.items():
            if holds(segment, topic):
                first = bisect.bisect_right([p.invoke_s for p in acked], segment.open_s)
                sent_while_open += [p for p in acked[first:] if p.complete_s <= segment.end_s]
        _check_losses(verdict, segment, sent_while_open, delivered, faults)
    return verdict


def _check_losses(verdict: Verdict, segment: Segment, acked: list[Publish], delivered: dict[str, float],
                  faults: list[Fault]) -> None:
    """Every message of `acked` (sent while `segment` was open, to a topic
    it holds, and acknowledged before it ended) that it did not get is a
    loss if the segment got a later message of the same publisher (a hole)
    or was drained at the end of the run (it had every chance); otherwise it
    was still in flight when the segment ended, and is only counted. Each
    loss needs a Lagged notice where it would have come, or a fault on its
    path while it was in flight (`_explain`). A notice says how many went,
    not which, so it goes first to the losses no fault explains (`_cover`),
    then to the others: a hole of k with a notice of n < k is explained when
    k - n of its messages are ones a fault explains, whichever they are."""
    # Per publisher: (number, when it arrived, its place in the stream).
    arrivals: dict[str, list[tuple[int, float, int]]] = collections.defaultdict(list)
    # [place in the stream, messages it still accounts for, messages it said went], in stream order
    notices: list[list[int]] = []
    for place, event in enumerate(segment.events):
        if event.kind == "lagged":
            notices.append([place, event.missed, event.missed])
        elif event.kind == "message" and delivered.get(event.payload) == event.at_s:
            publisher, seq = parse_payload(event.payload) or ("", 0)
            arrivals[publisher].append((seq, event.at_s, place))
    for publisher_arrivals in arrivals.values():
        publisher_arrivals.sort()
    verdict.counts["lagged_notices"] += len(notices)
    verdict.counts["lagged_missed"] += sum(notice[2] for notice in notices)
    # (place of its publisher's previous arrival, of its next, the loss, the fault kind that explains it)
    losses: list[tuple[int, int, Publish, str | None]] = []
    for p in acked:
        verdict.counts["expected"] += 1
        if p.payload in delivered:
            delay = delivered[p.payload] - p.complete_s
            if not segment.slow:
                verdict.counts["delivered_within_1s"] += delay <= 1.0
                verdict.delays.append(delay)
            continue
        mine = arrivals.get(p.publisher, [])
        index = bisect.bisect_left(mine, (p.seq,))
        if index == len(mine) and not segment.drained:
            verdict.counts["in_flight_when_closed"] += 1
            continue
        # It would have come between its publisher's previous and next
        # message in the stream (a notice there may account for it); until
        # that next one arrived the path was not past it (a fault may).
        after = mine[index - 1][2] if index > 0 else -1
        before = mine[index][2] if index < len(mine) else len(segment.events)
        passed_s = max(p.complete_s, mine[index][1] if index < len(mine) else segment.end_s)
        losses.append((after, before, p, _explain(p, passed_s, segment, faults)))
    unexplained = _cover([loss for loss in losses if loss[3] is None], notices)
    left_to_faults = _cover([loss for loss in losses if loss[3] is not None], notices)
    for _, _, p, fault in losses:
        if p.payload in unexplained:
            in_hole = sum(notice[2] for notice in _notices_between(notices, *unexplained[p.payload]))
            spent = (f" (the notices where it would have come counted {in_hole}, all taken by other losses "
                     "there)") if in_hole else ""
            verdict.violate("unexplained-loss", f"{p.payload} on {p.topic} (published on {p.node} at "
                                                f"{p.invoke_s}-{p.complete_s} s) never reached "
                                                f"{segment.subscriber} on {segment.node} (open "
                                                f"{segment.open_s}-{segment.end_s} s"
                                                f"{', drained' if segment.drained else ''}), and no fault or "
                                                f"Lagged notice explains it{spent}")
            continue
        verdict.counts["lost"] += 1
        verdict.counts[f"lost:{fault if p.payload in left_to_faults else 'lagged'}"] += 1


def _cover(losses: list[tuple[int, int, Publish, str | None]], notices: list[list[int]]) -> dict[str, tuple]:
    """Spends the notices' counts on `losses`, each on a notice between its
    publisher's previous and next arrival; returns those left uncovered
    (payload -> (after, before)). Holes are intervals of the stream and
    notices points in it: taking holes by where they end, each from the
    first notice left in it, covers as many as any matching could."""
    uncovered: dict[str, tuple] = {}
    for after, before, p, _ in sorted(losses, key=lambda loss: (loss[1], loss[0])):
        notice = next((n for n in _notices_between(notices, after, before) if n[1] > 0), None)
        if notice is None:
            uncovered[p.payload] = (after, before)
        else:
            notice[1] -= 1
    return uncovered


def _notices_between(notices: list[list[int]], after: int, before: int) -> list[list[int]]:
    """The notices standing strictly between stream places `after` and `before`."""
    first = bisect.bisect_right(notices, [after, float("inf")])
    last = bisect.bisect_left(notices, [before, -1])
    return notices[first:last]


def _check_order(verdict: Verdict, segment: Segment, by_payload: dict[str, Publish]) -> dict[str, float]:
    """Per publisher (ours, and the node's stamp) on a topic, numbers only
    rise; each message once; only messages sent to a topic the segment
    holds. Returns the payloads delivered, with when."""
    delivered: dict[str, float] = {}
    last_seq: dict[tuple[str, str], int] = {}
    last_stamp: dict[tuple[tuple, str], int] = {}
    for event in segment.events:
        if event.kind != "message":
            continue
        verdict.counts["delivered"] += 1
        sent = by_payload.get(event.payload)
        if sent is None or sent.topic != event.topic or not holds(segment, event.topic):
            verdict.violate("never-sent", f"{segment.subscriber} on {segment.node} got {event.payload!r} on "
                                          f"{event.topic!r}, which nobody sent there or it does not hold")
            continue
        if sent.outcome == "fail":
            verdict.violate("failed-publish-delivered", f"{event.payload} was answered as not taken, yet "
                                                        f"{segment.subscriber} got it")
        if event.payload in delivered:
            verdict.violate("duplicate", f"{segment.subscriber} on {segment.node} got {event.payload} twice")
            continue
        delivered[event.payload] = event.at_s
        key = (sent.publisher, sent.topic)
        if last_seq.get(key, 0) >= sent.seq:
            verdict.violate("publisher-order", f"{segment.subscriber} on {segment.node} got {event.payload} "
                                               f"after {payload_of(sent.publisher, last_seq[key])} on {sent.topic}")
        last_seq[key] = max(last_seq.get(key, 0), sent.seq)
        if event.stamp:
            stamp_key = (tuple(event.stamp[:3]), event.topic)
            if last_stamp.get(stamp_key, 0) >= event.stamp[3]:
                verdict.violate("stamp-order", f"{segment.subscriber}: publisher {stamp_key[0]} seq "
                                               f"{event.stamp[3]} after {last_stamp[stamp_key]} on {event.topic}")
            last_stamp[stamp_key] = max(last_stamp.get(stamp_key, 0), event.stamp[3])
    return delivered


def _explain(p: Publish, passed_s: float, segment: Segment, faults: list[Fault]) -> str | None:
    """The kind of the fault that took the message, or None: of the faults
    that touched its path while it was in flight (from its publish until
    `passed_s`, when the path was seen past it), the first to begin after
    it was published, else the one under way when it was. A message stalled
    behind a healed partition that a kill then takes is the kill's."""
    on_path = [fault for fault in sorted(faults, key=lambda f: f.start_s)
               if fault.start_s - FAULT_EXPLAINS_BEFORE_S <= passed_s
               and p.invoke_s <= (float("inf") if fault.end_s is None else fault.end_s) + FAULT_EXPLAINS_AFTER_S
               and touches(fault, p.node, segment.node)]
    later = [fault for fault in on_path if fault.start_s >= p.invoke_s - FAULT_EXPLAINS_BEFORE_S]
    return (later[0] if later else on_path[-1]).kind if on_path else None


def touches(fault: Fault, source: str, target: str) -> bool:
    """Whether `fault` can stop a message from node `source` reaching a
    subscriber on node `target`: a kill or pause of either, or a cut of the
    link between them (a one-way cut stalls the TCP stream both ways)."""
    if fault.kind in PROCESS_FAULTS:
        return source in fault.targets or target in fault.targets
    if source == target:
        return False
    if fault.kind in ("partition-minority", "partition-leader"):
        return (source in fault.targets) != (target in fault.targets)
    if fault.kind in ("partition-bridge", "partition-one-way"):
        return {source, target} == set(fault.targets)
    return fault.kind == "partition-ring"
