"""The relay's pure part: per-peer queues, frames and the receiver's count of
what a stream lost.

Method: table tests of framing and counting, then hypothesis runs one
origin's queue to one receiver through a link that loses frames (a broken
connection) and overflows the queue at random; the property: the receiver
delivers each publisher's messages in order, each at most once, and every
message it did not deliver is counted, as dropped by the queue or lost in
transit, and shows as the same jump in the publishers' numbers once a later message
arrives.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tandemkv.server.available.pubsub import GapCounter, Hub, InboundStreams, Message, OutboundQueue, RelayFrame
from tandemkv.server.available.pubsub.messages import MESSAGE_OVERHEAD_BYTES


def messages(count: int, size: int = 10) -> list[Message]:
    hub = Hub("origin", 3)
    publisher = hub.open_publisher()
    return [hub.publish(publisher, b"t", bytes(size)).message for _ in range(count)]


def test_frames_carry_consecutive_runs_within_the_bytes_bound_and_at_least_one_message():
    size = 1 + 100 + MESSAGE_OVERHEAD_BYTES
    queue = OutboundQueue(messages_max=100, bytes_max=1 << 20, frame_bytes_max=3 * size)
    batch = messages(7, 100)
    assert [queue.put(m) for m in batch] == [True] + [False] * 6
    frames = [queue.next_frame() for _ in range(3)]
    assert [(f.first_seq, len(f.messages), f.overflowed) for f in frames] == [(1, 3, 0), (4, 3, 0), (7, 1, 0)]
    assert queue.next_frame() is None and queue.queued_bytes == 0
    tiny = OutboundQueue(frame_bytes_max=1)
    tiny.put(batch[0])
    assert tiny.next_frame().messages == (batch[0],)


def test_a_full_queue_drops_the_oldest_and_the_next_frame_says_how_many():
    queue = OutboundQueue(messages_max=3)
    batch = messages(10)
    for message in batch:
        queue.put(message)
    frame = queue.next_frame()
    assert (frame.first_seq, frame.messages, frame.overflowed) == (8, tuple(batch[7:]), 7)
    assert queue.overflowed_total == 7
    queue.put(batch[0])
    assert (queue.next_frame().first_seq, queue.status()["overflowed"]) == (11, 7)


def test_the_receiver_counts_holes_drops_repeats_and_starts_a_restarted_receiver_at_the_first_frame():
    batch = messages(10)
    streams = InboundStreams()
    state = streams.open("origin", 3, from_start=True)
    assert streams.accept(state, RelayFrame(3, tuple(batch[2:4]), overflowed=1)) == tuple(batch[2:4])
    assert (state.overflowed, state.lost_in_transit, state.next_seq) == (1, 1, 5)
    assert streams.accept(state, RelayFrame(4, tuple(batch[3:6]), 0)) == tuple(batch[4:6])  # overlap
    assert streams.accept(state, RelayFrame(2, (batch[1],), 0)) == () and state.stale_frames == 1
    restarted = InboundStreams().open("origin", 3, from_start=False)
    assert InboundStreams().accept(restarted, RelayFrame(9, tuple(batch[8:]), 0)) == tuple(batch[8:])
    assert (restarted.lost_in_transit, restarted.overflowed, restarted.next_seq) == (0, 0, 11)


def test_the_receiver_keeps_a_bounded_number_of_origins_forgetting_the_longest_unheard():
    streams = InboundStreams(origins_max=2)
    for incarnation in (1, 2, 3):
        streams.open("origin", incarnation, from_start=True)
    assert sorted(streams.status()) == ["origin/0000000000000002", "origin/0000000000000003"]


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.one_of(
    st.tuples(st.just("publish"), st.integers(1, 6), st.sampled_from([b"a", b"b"]), st.integers(0, 2)),
    st.tuples(st.just("send"), st.booleans()),   # True: the frame is lost with its connection
    st.tuples(st.just("reconnect"),)), max_size=60),
    queue_messages_max=st.integers(1, 5), frame_bytes_max=st.integers(1, 600))
def test_every_message_is_delivered_in_order_at_most_once_or_counted_as_lost(steps, queue_messages_max,
                                                                             frame_bytes_max):
    hub = Hub("origin", 3)
    publishers = [hub.open_publisher() for _ in range(3)]
    queue = OutboundQueue(messages_max=queue_messages_max, frame_bytes_max=frame_bytes_max)
    streams = InboundStreams()
    state = streams.open("origin", 3, from_start=True)
    delivered, published, counter = [], 0, GapCounter(from_start=True)
    for step in steps:
        if step[0] == "publish":
            _, count, topic, which = step
            for _ in range(count):
                queue.put(hub.publish(publishers[which], topic, b"m").message)
                published += 1
        elif step[0] == "send":
            frame = queue.next_frame()
            if frame is not None and not step[1]:
                for message in streams.accept(state, frame):
                    delivered.append(message)
                    counter.observe(message)
        else:
            state = streams.open("origin", 3, from_start=False)
    # A loss shows once something after it arrives: one last message of every
    # (publisher, topic) pair, over a link that now loses nothing.
    for publisher in publishers:
        for topic in (b"a", b"b"):
            queue.put(hub.publish(publisher, topic, b"last").message)
            published += 1
            while (frame := queue.next_frame()) is not None:
                for message in streams.accept(state, frame):
                    delivered.append(message)
                    counter.observe(message)
    assert len(set(map(id, delivered))) == len(delivered)
    assert counter.out_of_order == 0
    lost = published - len(delivered)
    assert state.overflowed + state.lost_in_transit == lost == counter.missing
    # A frame lost in transit takes its count of overflowed messages with it:
    # those are then counted as lost in transit.
    assert state.overflowed <= queue.overflowed_total
