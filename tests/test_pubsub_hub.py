"""The pure pub/sub hub: who a topic reaches, bounded buffers that say what
they dropped, publisher numbers, and the limits with the errors they give.

Method: table tests of single behaviours, then hypothesis drives random
subscribes, subscription changes, publishes (with publish_from's skip and
local-only), takes and unsubscribes against a model that knows every
message each subscriber should see; the property: each subscriber's stream
is exactly its expected messages in order, where a `Lagged(n)` stands in
place of the next n of them and nothing is missing without one.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandemkv import limits
from tandemkv.errors import InvalidArgument, NotFound, ResourceExhausted
from tandemkv.server.available.pubsub import GapCounter, Hub, Lagged, Message, SubscriberBuffer
from tandemkv.server.available.pubsub.messages import MESSAGE_OVERHEAD_BYTES


def payloads(items):
    return [item.payload if isinstance(item, Message) else item for item in items]


def test_a_topic_reaches_its_exact_and_prefix_subscribers_once_each():
    hub = Hub("n1", 1)
    publisher = hub.open_publisher()
    exact = hub.subscribe(topics=(b"room:1",))
    prefixed = hub.subscribe(prefixes=(b"room:",))
    both = hub.subscribe(topics=(b"room:1",), prefixes=(b"room", b"r"))
    everything = hub.subscribe(prefixes=(b"",))
    other = hub.subscribe(topics=(b"room:2",), prefixes=(b"room:1x",))
    published = hub.publish(publisher, b"room:1", b"hi")
    assert published.delivered == 4
    assert sorted(published.readable) == sorted([exact, prefixed, both, everything])
    for subscriber in (exact, prefixed, both, everything):
        assert payloads(hub.take(subscriber, 10)) == [b"hi"]
    assert hub.take(other, 10) == []


def test_publish_from_skips_one_subscriber_and_local_only_uses_its_own_numbers():
    hub = Hub("n1", 1)
    publisher = hub.open_publisher()
    sender = hub.subscribe(topics=(b"t",))
    listener = hub.subscribe(topics=(b"t",))
    first = hub.publish(publisher, b"t", b"1", skip=sender)
    local = hub.publish(publisher, b"t", b"2", local_only=True)
    second = hub.publish(publisher, b"t", b"3")
    assert first.delivered == 1 and (first.message.seq, second.message.seq) == (1, 2)
    assert local.message.seq == 1 and local.message.publisher != first.message.publisher
    assert payloads(hub.take(sender, 10)) == [b"2", b"3"]
    counter = GapCounter(from_start=True)
    for item in hub.take(listener, 10):
        counter.observe(item)
    assert (counter.received, counter.missing, counter.out_of_order) == (3, 0, 0)


def test_a_full_buffer_drops_the_oldest_and_says_how_many_in_their_place():
    buffer = SubscriberBuffer(messages_max=3, bytes_max=1 << 20)
    messages = [Message(b"t", bytes([i]), None, i + 1) for i in range(10)]  # type: ignore[arg-type]
    assert buffer.push(messages[0]) is True
    assert [buffer.push(m) for m in messages[1:]] == [False] * 9
    assert buffer.take(2) == [Lagged(7), messages[7], messages[8]]
    assert buffer.take(10) == [messages[9]]
    assert not buffer.readable and buffer.missed_total == 7 and buffer.delivered_total == 3


def test_the_bytes_bound_drops_too_and_a_take_can_be_bounded_in_bytes():
    size = 100 + 1 + MESSAGE_OVERHEAD_BYTES
    buffer = SubscriberBuffer(messages_max=100, bytes_max=3 * size)
    messages = [Message(b"t", bytes(100), None, i + 1) for i in range(5)]  # type: ignore[arg-type]
    for message in messages:
        buffer.push(message)
    assert len(buffer) == 3 and buffer.buffered_bytes == 3 * size
    assert buffer.take(10, bytes_max=size) == [Lagged(2), messages[2]]
    assert buffer.take(10, bytes_max=1) == [messages[3]]  # always at least one


def test_a_publisher_numbers_each_topic_and_starts_a_new_session_past_its_topic_bound():
    hub = Hub("n1", 9, publisher_topics_max=2)
    publisher = hub.open_publisher()
    stamps = [hub.publish(publisher, topic, b"").message for topic in (b"a", b"b", b"a", b"c", b"a")]
    assert [(m.publisher.session, m.seq) for m in stamps] == [(1, 1), (1, 1), (1, 2), (2, 1), (2, 1)]
    assert {m.publisher.node for m in stamps} == {"n1"} and {m.publisher.incarnation for m in stamps} == {9}


@pytest.mark.parametrize("call, limit", [
    (lambda hub, p: hub.publish(p, b"x" * (limits.PUBSUB_TOPIC_BYTES_MAX + 1), b""), "PUBSUB_TOPIC_BYTES_MAX"),
    (lambda hub, p: hub.publish(p, b"t", bytes(limits.PUBSUB_MESSAGE_BYTES_MAX + 1)), "PUBSUB_MESSAGE_BYTES_MAX"),
    (lambda hub, p: hub.subscribe(prefixes=(b"x" * (limits.PUBSUB_TOPIC_BYTES_MAX + 1),)),
     "PUBSUB_TOPIC_BYTES_MAX"),
])
def test_oversized_topics_and_messages_are_refused_naming_the_limit(call, limit):
    hub = Hub("n1", 1)
    with pytest.raises(InvalidArgument) as raised:
        call(hub, hub.open_publisher())
    assert raised.value.limit == limit and "at most" in raised.value.message


@pytest.mark.parametrize("call, words", [
    (lambda hub, p: hub.publish(p, b"", b"m"), "must not be empty"),
    (lambda hub, p: hub.publish(p, "text", b"m"), "encode text as UTF-8"),
    (lambda hub, p: hub.publish(p, b"t", "text"), "encode it first"),
    (lambda hub, p: hub.subscribe(topics=("text",)), "encode text as UTF-8"),
])
def test_malformed_topics_and_messages_are_refused_saying_what_to_fix(call, words):
    hub = Hub("n1", 1)
    with pytest.raises(InvalidArgument, match=words):
        call(hub, hub.open_publisher())


def test_subscriber_and_subscription_bounds_refuse_whole_requests():
    hub = Hub("n1", 1, subscribers_max=2, subscriptions_max=5)
    first = hub.subscribe(topics=(b"a", b"b"))
    with pytest.raises(ResourceExhausted, match="PUBSUB_SUBSCRIPTIONS_MAX"):
        hub.add(first, topics=(b"c", b"d"), prefixes=(b"e", b"f"))
    assert hub.topics_of(first) == (frozenset({b"a", b"b"}), frozenset())
    hub.subscribe(topics=(b"c",))
    with pytest.raises(ResourceExhausted, match="PUBSUB_SUBSCRIBERS_MAX"):
        hub.subscribe()
    hub.unsubscribe(first)
    with pytest.raises(NotFound):
        hub.take(first, 1)
    assert hub.status()["subscriptions"] == 1


def test_prefix_lookups_probe_one_entry_per_distinct_prefix_length():
    hub = Hub("n1", 1)
    subscriber = hub.subscribe(prefixes=tuple(b"user:%06d" % i for i in range(1000)) + (b"u", b"us"))
    assert hub._index._lengths == [1, 2, 11]
    assert hub.publish(hub.open_publisher(), b"user:000999:x", b"").delivered == 1
    hub.remove(subscriber, prefixes=(b"u",))
    assert hub._index._lengths == [2, 11]


# --- The property ---------------------------------------------------------

TOPICS = [b"a", b"ab", b"abc", b"b", b"ba"]
PREFIXES = [b"", b"a", b"ab", b"b", b"abc"]
OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("subscribe"), st.lists(st.sampled_from(TOPICS), max_size=2),
              st.lists(st.sampled_from(PREFIXES), max_size=2)),
    st.tuples(st.just("change"), st.integers(0, 7), st.booleans(), st.sampled_from(TOPICS),
              st.sampled_from(PREFIXES)),
    st.tuples(st.just("publish"), st.integers(0, 2), st.sampled_from(TOPICS), st.integers(0, 300),
              st.one_of(st.none(), st.integers(0, 7)), st.booleans()),
    st.tuples(st.just("take"), st.integers(0, 7), st.integers(1, 4)),
    st.tuples(st.just("unsubscribe"), st.integers(0, 7)),
), max_size=80)


def matches(topic, topics, prefixes):
    return topic in topics or any(topic.startswith(prefix) for prefix in prefixes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=OPERATIONS, messages_max=st.integers(1, 4), bytes_max=st.integers(400, 1400))
def test_every_message_for_a_subscriber_arrives_in_order_or_is_counted_by_a_lag_notice(
        operations, messages_max, bytes_max):
    hub = Hub("n1", 5, buffer_messages_max=messages_max, buffer_bytes_max=bytes_max, publisher_topics_max=3)
    publishers = [hub.open_publisher() for _ in range(3)]
    expected: dict[int, list[Message]] = {}   # subscriber -> every message it should see
    consumed: dict[int, int] = {}             # subscriber -> how many of them its stream has covered
    held: dict[int, tuple[set, set]] = {}
    live: list[int] = []
    counters: dict[int, GapCounter] = {}

    def check_take(subscriber, items):
        for item in items:
            counters[subscriber].observe(item)
            if isinstance(item, Lagged):
                assert item.missed >= 1
                consumed[subscriber] += item.missed
            else:
                assert item is expected[subscriber][consumed[subscriber]]
                consumed[subscriber] += 1
            assert consumed[subscriber] <= len(expected[subscriber])

    for operation in operations:
        kind, *args = operation
        pick = (lambda index: live[index % len(live)]) if live else None
        if kind == "subscribe":
            topics, prefixes = args
            subscriber = hub.subscribe(tuple(topics), tuple(prefixes))
            live.append(subscriber)
            expected[subscriber], consumed[subscriber] = [], 0
            held[subscriber] = (set(topics), set(prefixes))
            counters[subscriber] = GapCounter()
        elif kind == "change" and pick:
            subscriber, add, topic, prefix = pick(args[0]), args[1], args[2], args[3]
            if add:
                hub.add(subscriber, (topic,), (prefix,))
                held[subscriber][0].add(topic), held[subscriber][1].add(prefix)
            else:
                hub.remove(subscriber, (topic,), (prefix,))
                held[subscriber][0].discard(topic), held[subscriber][1].discard(prefix)
        elif kind == "publish":
            which, topic, size, skip_index, local_only = args
            skip = pick(skip_index) if (pick and skip_index is not None) else None
            published = hub.publish(publishers[which], topic, bytes(size), skip=skip, local_only=local_only)
            reached = [s for s in live if s != skip and matches(topic, *held[s])]
            assert published.delivered == len(reached)
            for subscriber in reached:
                expected[subscriber].append(published.message)
        elif kind == "take" and pick:
            subscriber = pick(args[0])
            check_take(subscriber, hub.take(subscriber, args[1]))
        elif kind == "unsubscribe" and pick:
            subscriber = pick(args[0])
            hub.unsubscribe(subscriber)
            live.remove(subscriber)
    for subscriber in live:
        while hub.readable(subscriber):
            check_take(subscriber, hub.take(subscriber, 3))
        assert consumed[subscriber] == len(expected[subscriber])
        counter = counters[subscriber]
        assert counter.out_of_order == 0
        assert counter.received + counter.lagged == len(expected[subscriber])
