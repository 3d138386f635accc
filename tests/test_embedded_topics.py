"""Durable topics on embedded nodes: three members in this process.

Covers what the pure tests cannot: publishes through Raft on any node,
reads and subscriptions on followers, the leader stopped mid-stream (no
acknowledged message lost, order kept), a subscriber resuming from its
offset, a gap announced, a subscription past one page, an asyncio
subscription that holds no thread, and a wiped follower rebuilt from a
snapshot that carries the topics.

Method: the `Cluster` harness of test_embedded_node.py; a sync subscriber
runs on a thread of the test and is bounded by a join timeout; every wait
has a deadline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time

import pytest

from tandemkv import limits
from tandemkv.errors import InvalidArgument, OutcomeUnknown, Unavailable
from tandemkv.server.node.topics import TopicGap
from tandemkv.v1 import kv_pb2
from tests.test_embedded_node import READY_S, Cluster


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.stop()


class Subscriber:
    """A sync subscription drained on its own thread until it has `want`
    messages (or its stop is set)."""

    def __init__(self, node, topic: bytes, from_offset, want: int):
        self.events: list = []
        self.stop = threading.Event()
        self._args = (node, topic, from_offset, want)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        node, topic, from_offset, want = self._args
        for event in node.topics.subscribe(topic, from_offset, stop=self.stop):
            self.events.append(event)
            if len(self.messages()) >= want:
                return

    def messages(self) -> list:
        return [e for e in self.events if not isinstance(e, TopicGap)]

    def join(self) -> None:
        self._thread.join(READY_S)
        self.stop.set()
        assert not self._thread.is_alive(), f"subscriber stuck with {len(self.messages())} messages"


def publish_until_acknowledged(node, topic: bytes, message: bytes) -> int:
    """Publishes, retrying with the same request id through an election
    (exactly once: a retry of an applied publish returns its offset)."""
    request_id = os.urandom(limits.REQUEST_ID_BYTES)
    deadline = time.monotonic() + READY_S
    while True:
        try:
            return node.topics.publish(topic, message, request_id=request_id, timeout_s=2.0).offset
        except (Unavailable, OutcomeUnknown):
            assert time.monotonic() < deadline, "no publish acknowledged while a majority runs"
            time.sleep(0.05)


def _followers(cluster):
    leader = cluster.leader()
    return leader, [n for n in cluster.nodes.values() if n is not leader]


def test_nothing_acknowledged_is_lost_and_order_holds_when_the_leader_stops(cluster):
    leader, followers = _followers(cluster)
    watcher = Subscriber(followers[0], b"orders", 0, want=60)
    acked = [(leader.topics.publish(b"orders", b"order %d" % i).offset, b"order %d" % i) for i in range(30)]
    cluster.stop(leader.config.name)
    survivor = followers[1]
    for i in range(30, 60):
        acked.append((publish_until_acknowledged(survivor, b"orders", b"order %d" % i), b"order %d" % i))
    watcher.join()
    offsets = [offset for offset, _ in acked]
    assert offsets == list(range(offsets[0], offsets[0] + 60)), "one offset each, in publish order"
    for node in followers:
        page = node.topics.read(b"orders")
        assert [(m.offset, m.message) for m in page.messages] == acked
    assert [(m.offset, m.message) for m in watcher.messages()] == acked
    assert not any(isinstance(e, TopicGap) for e in watcher.events)


def test_a_subscriber_that_reconnects_resumes_from_its_offset_with_nothing_lost(cluster):
    leader, followers = _followers(cluster)
    sent = [leader.topics.publish(b"feed", b"%d" % i).offset for i in range(10)]
    first = Subscriber(followers[0], b"feed", 0, want=4)
    first.join()
    resume_at = first.messages()[-1].offset + 1
    sent += [leader.topics.publish(b"feed", b"%d" % i).offset for i in range(10, 15)]
    second = Subscriber(followers[1], b"feed", resume_at, want=11)
    second.join()
    assert [m.offset for m in first.messages() + second.messages()] == sent
    assert not any(isinstance(e, TopicGap) for e in second.events)


def test_a_subscriber_behind_retention_is_told_the_gap_before_the_next_message(cluster):
    leader, followers = _followers(cluster)
    sent = [leader.topics.publish(b"tight", b"%d" % i, retain_messages=3).offset for i in range(8)]
    cluster.wait_applied(followers[0], sent[-1])  # it reads its own applied state
    late = Subscriber(followers[0], b"tight", sent[0], want=3)
    late.join()
    # Retention keeps the newest 3, and may keep more until a later entry
    # prunes (docs/durable-topics.md: never fewer): at least sent[0..3] went
    # (the last publish's entry pruned to three before it appended its
    # own). The gap covers every dropped message and no kept one; other
    # entries (lease ticks, other topics) may sit between two publishes, so
    # it may end anywhere after the last dropped offset up to the first kept.
    gap = late.events[0]
    assert isinstance(gap, TopicGap) and gap.from_offset == sent[0]
    assert sent[3] < gap.first_offset <= sent[5]
    kept = [offset for offset in sent if offset >= gap.first_offset]
    assert [m.offset for m in late.events[1:]] == kept[:3]  # the subscriber stops at 3


def test_a_subscription_from_the_next_message_skips_what_was_acknowledged_before(cluster):
    leader, followers = _followers(cluster)
    leader.topics.publish(b"news", b"before")
    watcher = Subscriber(followers[0], b"news", None, want=1)
    for attempt in range(200):  # until the subscription is placed and sees one
        if watcher.messages():
            break
        leader.topics.publish(b"news", b"after %d" % attempt)
        watcher._thread.join(0.05)
    watcher.join()
    assert watcher.messages()[0].message.startswith(b"after ")


def test_a_subscription_reads_on_past_one_page(cluster):
    leader, followers = _followers(cluster)
    start = leader.topics.publish(b"bulk", b"before").offset + 1
    count = 1_100  # more than TOPIC_READ_MESSAGES_MAX

    async def publish_all():
        for first in range(0, count, 100):
            await asyncio.gather(*(leader.topics.publish_async(b"bulk", b"%d" % i)
                                   for i in range(first, min(count, first + 100))))

    watcher = Subscriber(followers[0], b"bulk", start, want=count)
    asyncio.run(publish_all())
    watcher.join()
    assert [m.offset for m in watcher.messages()] == list(range(start, start + count))


def test_an_asyncio_subscription_waits_on_the_loop_and_gets_every_message(cluster):
    leader, followers = _followers(cluster)
    node = followers[0]

    async def run():
        got = []

        async def consume():
            async for event in node.topics.subscribe_async(b"live", 0):
                got.append(event)
                if len(got) == 20:
                    return

        threads_before = threading.active_count()
        consumer = asyncio.create_task(consume())
        sent = [(await leader.topics.publish_async(b"live", b"%d" % i)).offset for i in range(20)]
        await asyncio.wait_for(consumer, READY_S)
        # One hub thread per node at most, whatever the subscriptions.
        assert threading.active_count() <= threads_before + 1
        return sent, got

    sent, got = asyncio.run(run())
    assert [m.offset for m in got] == sent


def test_a_bad_topic_is_refused_with_the_limit_named(cluster):
    node = cluster.leader()
    with pytest.raises(InvalidArgument, match="PUBSUB_TOPIC_BYTES_MAX"):
        node.topics.publish(b"", b"x")
    with pytest.raises(InvalidArgument, match="PUBSUB_MESSAGE_BYTES_MAX"):
        node.topics.publish(b"t", b"x" * (1 << 20))
    with pytest.raises(InvalidArgument, match="PUBSUB_TOPIC_BYTES_MAX"):
        next(node.topics.subscribe(b""))


def test_a_wiped_follower_rebuilds_its_topics_from_a_snapshot(cluster):
    leader, followers = _followers(cluster)
    sent = [leader.topics.publish(b"kept", b"%d" % i).offset for i in range(20)]
    cluster.compact_all()
    sent.append(leader.topics.publish(b"kept", b"after the snapshot").offset)
    name = followers[0].config.name
    cluster.stop(name)
    shutil.rmtree(cluster.base / name)
    cluster.start(name)
    node = cluster.nodes[name]
    cluster.wait_applied(node, leader.status().applied_index)
    page = node.topics.read(b"kept", consistency=kv_pb2.STALE)
    assert [m.offset for m in page.messages] == sent


def test_an_idle_topic_ages_out_on_the_leaders_lease_ticks(cluster):
    leader, followers = _followers(cluster)
    sent = leader.topics.publish(b"brief", b"gone soon", retain_ms=1_000).offset
    # No lease exists: the leader ticks because a topic holds messages.
    deadline = time.monotonic() + READY_S
    while leader.topics.read(b"brief").messages:
        assert time.monotonic() < deadline, "the topic never aged out"
        time.sleep(0.05)
    for node in followers:
        cluster.wait_applied(node, leader.status().applied_index)
        page = node.topics.read(b"brief", consistency=kv_pb2.STALE)
        assert not page.messages and page.first_offset > sent
