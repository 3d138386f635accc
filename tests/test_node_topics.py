"""A durable subscription's cursor, case by case: where it starts, when a
hole before the first retained offset is a gap its reader is told of, and
when it is not (a topic that was absent when the cursor was placed); and
the hub's bound on subscriptions.

Method: read answers built by hand (the shapes the core's `read` returns)
fed to `_Cursor.events`; the hub without its thread.
"""

from __future__ import annotations

from unittest import mock

import pytest

from tandemkv import limits
from tandemkv.errors import ResourceExhausted
from tandemkv.server.node.topics import TopicGap, TopicHub, _Cursor
from tandemkv.v1 import topics_pb2


def page(first: int, next_offset: int, base: int | None = None, held: range | None = None):
    response = topics_pb2.TopicReadResponse(first_offset=first, next_offset=next_offset,
                                            base_offset=first if base is None else base)
    for offset in held if held is not None else range(first, next_offset):
        response.messages.add(offset=offset, message=b"%d" % offset)
    return response


def shapes(events) -> list:
    return [e if isinstance(e, TopicGap) else e.offset for e in events]


def test_from_the_first_retained_owes_nothing_before_it():
    cursor = _Cursor(b"t", 0)
    assert shapes(cursor.events(page(40, 43, base=10))) == [40, 41, 42]
    assert cursor.position == 43


def test_from_an_offset_given_a_pruned_start_is_a_gap_before_the_next_message():
    cursor = _Cursor(b"t", 12)
    assert shapes(cursor.events(page(40, 42, base=10))) == [TopicGap(12, 40), 40, 41]


def test_from_the_next_message_the_first_answer_only_places_the_cursor():
    cursor = _Cursor(b"t", None)
    assert cursor.request().from_offset > 2**62  # asks for where the topic stands, not its messages
    assert cursor.events(page(40, 43)) == []
    assert cursor.position == 43
    assert shapes(cursor.events(page(40, 45, held=range(43, 45)))) == [43, 44]


def test_a_topic_absent_when_placed_that_lost_nothing_since_owes_no_gap():
    cursor = _Cursor(b"t", None)
    cursor.events(page(100, 100))  # absent: every position is the revision after the read
    assert shapes(cursor.events(page(130, 132))) == [130, 131]


def test_a_topic_absent_when_placed_that_lost_messages_since_is_a_gap():
    cursor = _Cursor(b"t", None)
    cursor.events(page(100, 100))
    assert shapes(cursor.events(page(135, 136, base=130))) == [TopicGap(100, 135), 135]


def test_placed_on_a_held_topic_a_hole_after_the_placement_is_a_gap():
    cursor = _Cursor(b"t", None)
    cursor.events(page(40, 43))
    # Nothing read since; the topic aged out and came back.
    assert shapes(cursor.events(page(90, 91))) == [TopicGap(43, 90), 90]


def test_after_a_message_was_delivered_any_hole_is_a_gap():
    cursor = _Cursor(b"t", 0)
    cursor.events(page(5, 7))
    # The topic aged out and came back: its new life starts past the cursor.
    assert shapes(cursor.events(page(50, 51))) == [TopicGap(7, 50), 50]


def test_messages_before_the_cursor_are_never_given_twice():
    cursor = _Cursor(b"t", 0)
    cursor.events(page(5, 7))
    assert shapes(cursor.events(page(5, 9))) == [7, 8]


def test_the_hub_refuses_subscriptions_past_its_bound_and_forgets_removed_ones():
    hub = TopicHub(mock.Mock(), head=0)
    with mock.patch.object(limits, "TOPIC_SUBSCRIPTIONS_MAX", 2):
        first, second = mock.Mock(), mock.Mock()
        hub.add(b"a", first)
        hub.add(b"b", second)
        with pytest.raises(ResourceExhausted, match="TOPIC_SUBSCRIPTIONS_MAX"):
            hub.add(b"c", mock.Mock())
        hub.remove(b"a", first)
        hub.remove(b"a", first)  # twice: counted once
        hub.add(b"c", mock.Mock())
    assert hub.count == 2
