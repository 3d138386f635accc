"""100,000 durable topics: no catalogue, so a topic costs storage only while
it holds messages.

Method: the pure state machine over the LMDB view (the node's store),
100,000 publishes to as many topics; each is read back; then the lease clock
passes their retention and ordinary entries age them out, a bounded number
per entry, until the topics' tables are empty again.
"""

from __future__ import annotations

from tandemkv import limits
from tandemkv.server.storage.lmdb_topics import count_topic_space
from tandemkv.server.strong import commands, topics
from tandemkv.v1 import topics_pb2
from tests.support.applier import Applier, make_view

TOPIC_COUNT = 100_000
RETAIN_MS = 60_000


def test_100000_topics_each_hold_their_messages_and_cost_nothing_once_aged_out(tmp_path):
    with make_view("lmdb", tmp_path) as view:
        applier = Applier(view)
        offsets = {}
        for i in range(TOPIC_COUNT):
            topic = b"user:%d" % i
            offsets[topic] = applier.write(topics_pb2.TopicPublishRequest(
                topic=topic, message=b"hello %d" % i, retain_ms=RETAIN_MS)).offset
        assert len(set(offsets.values())) == TOPIC_COUNT  # each publish its own entry
        for i in range(0, TOPIC_COUNT, 997):
            topic = b"user:%d" % i
            page = topics.read(view, topics_pb2.TopicReadRequest(topic=topic), applier.index)
            assert [(m.offset, m.message) for m in page.messages] == [(offsets[topic], b"hello %d" % i)]
        txn, dbs = view._txn, view._dbs
        assert txn.stat(dbs[b"topic_meta"])["entries"] == TOPIC_COUNT
        used_while_held = count_topic_space(txn, dbs)

        # The leader's lease ticks move the lease clock past the retention;
        # they and ordinary entries (read barriers' no-ops) age the topics out.
        applier.tick("leader", 0)
        for _ in range(-(-RETAIN_MS // limits.LEASE_TICK_ADVANCE_MS_MAX)):
            applier.tick("leader", limits.LEASE_TICK_ADVANCE_MS_MAX)
        entries_needed = -(-TOPIC_COUNT // limits.TOPIC_PRUNE_PER_ENTRY_MAX)
        for _ in range(entries_needed):
            applier.raw(commands.encode_noop(applier.ts_ms))
        for name in (b"topic_meta", b"topic_messages", b"topic_expiries"):
            assert txn.stat(dbs[name])["entries"] == 0, name
        # What remains is the recent-publishes table, trimmed by revision.
        assert count_topic_space(txn, dbs) < used_while_held / 2
        assert view.space_used() == view.count_space()[0]
        gone = topics.read(view, topics_pb2.TopicReadRequest(topic=b"user:7"), applier.index)
        assert not gone.messages and gone.first_offset > offsets[b"user:7"]
