"""Topics are not catalogued: 100,000 of them cost memory in proportion to
the subscriptions that hold them, lookups do not slow down as they grow, and
nothing of a topic stays once nobody holds it.

Method: build the hub's state for 100,000 topics three ways (one subscriber
per topic, one subscriber holding them all, prefixes), publish once to each
topic and check every delivery exactly; memory is measured with tracemalloc
and bounded per topic; the work of a lookup is bounded by reading the
index's structure (how many probes one lookup makes), never by a clock.
"""

from __future__ import annotations

import tracemalloc

from tandemkv import limits
from tandemkv.server.available.pubsub import GapCounter, Hub, Lagged, Message

TOPICS = 100_000
# Bytes one more topic may cost a subscriber that holds many (measured: ~90).
INDEX_BYTES_PER_TOPIC_MAX = 512


def topic(i: int) -> bytes:
    return b"topic:%06d" % i


def test_one_subscriber_per_topic_each_gets_exactly_its_own_and_nothing_stays_after():
    hub = Hub("n1", 1, subscribers_max=TOPICS)
    subscribers = [hub.subscribe(topics=(topic(i),)) for i in range(TOPICS)]
    publisher = hub.open_publisher()
    for i in range(TOPICS):
        published = hub.publish(publisher, topic(i), b"%d" % i)
        assert published.delivered == 1 and published.readable == (subscribers[i],)
    for i in (0, 1, TOPICS // 2, TOPICS - 1):
        [message] = hub.take(subscribers[i], 10)
        assert message.topic == topic(i) and message.payload == b"%d" % i
    assert hub.status()["buffered_messages"] == TOPICS - 4
    for subscriber in subscribers:
        hub.unsubscribe(subscriber)
    assert hub.status()["subscriptions"] == 0 and hub.status()["buffered_bytes"] == 0
    assert not hub._index._exact and not hub._index._prefixed


def test_a_subscriber_holding_100000_topics_costs_memory_by_count_and_accounts_for_every_message():
    tracemalloc.start()
    try:
        hub = Hub("n1", 1)
        before = tracemalloc.get_traced_memory()[0]
        subscriber = hub.subscribe(topics=tuple(topic(i) for i in range(TOPICS)))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= INDEX_BYTES_PER_TOPIC_MAX * TOPICS, f"{held / TOPICS:.0f} bytes per topic"
    publisher = hub.open_publisher()
    counter = GapCounter()
    for i in range(TOPICS):
        hub.publish(publisher, topic(i), b"")
        if i % 10_000 == 9_999:  # a reader that falls behind, then catches up
            for event in hub.take(subscriber, TOPICS):
                counter.observe(event)
    assert counter.received + counter.lagged == TOPICS
    assert counter.lagged == TOPICS - 10 * limits.PUBSUB_SUBSCRIBER_BUFFER_MESSAGES_MAX
    assert counter.out_of_order == 0
    # The publisher's numbers stay bounded: it went on as new sessions.
    assert len(publisher._last_seq) <= limits.PUBSUB_PUBLISHER_TOPICS_MAX
    assert publisher.id.session > 1


def test_100000_prefixes_of_one_length_cost_one_probe_per_lookup():
    hub = Hub("n1", 1)
    subscriber = hub.subscribe(prefixes=tuple(topic(i) + b":" for i in range(TOPICS)))
    # A lookup probes the exact map once and the prefix map once per
    # distinct prefix length: one here, whatever the number of prefixes.
    assert hub._index._lengths == [len(topic(0)) + 1]
    publisher = hub.open_publisher()
    assert hub.publish(publisher, topic(TOPICS - 1) + b":x", b"").delivered == 1
    assert hub.publish(publisher, topic(TOPICS - 1) + b"x", b"").delivered == 0
    [message] = hub.take(subscriber, 10)
    assert isinstance(message, Message) and not isinstance(message, Lagged)
