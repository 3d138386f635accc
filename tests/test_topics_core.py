"""Durable topics in the pure state machine: offsets, exactly-once, retention
and replay, over the in-memory view and the LMDB view alike.

Method: commands applied at increasing indexes through the node's codec
(tests.support.applier), read back through the core's reader; table-style
cases, then hypothesis runs a random mix of publishes, retries and clock
advances against a model of what each topic must still hold; last, a
snapshot carries the topics, and an image from before them installs.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandemkv import limits
from tandemkv.errors import InvalidArgument, ResourceExhausted
from tandemkv.server.storage import snapshot
from tandemkv.server.storage.lmdb_topics import TOPIC_DB_NAMES
from tandemkv.server.storage.state_store import StateStore
from tandemkv.server.strong import commands, topics
from tandemkv.server.strong.coordination import lease_clock
from tandemkv.server.strong.view import MemoryView
from tandemkv.v1 import topics_pb2
from tests.support.applier import Applier, make_view

VIEWS = ["memory", "lmdb"]


def publish(applier: Applier, topic: bytes, message: bytes, *, request_id: bytes = b"",
            ts_ms: int | None = None, **retention) -> topics_pb2.TopicPublishResponse:
    request = topics_pb2.TopicPublishRequest(topic=topic, message=message, **retention)
    return applier.write(request, request_id, ts_ms)


def read(applier: Applier, topic: bytes, from_offset: int = 0, limit: int = 0) -> topics_pb2.TopicReadResponse:
    request = topics_pb2.TopicReadRequest(topic=topic, from_offset=from_offset, limit=limit)
    return topics.read(applier.view, request, applier.index)


def advance(applier: Applier, elapsed_ms: int) -> None:
    """Lease ticks of one leader move the lease clock, on which messages
    age, by `elapsed_ms` (each tick by at most LEASE_TICK_ADVANCE_MS_MAX)."""
    applier.tick("leader", 0)  # a first tick from a proposer advances nothing
    while elapsed_ms > 0:
        step = min(elapsed_ms, limits.LEASE_TICK_ADVANCE_MS_MAX)
        applier.tick("leader", step)
        elapsed_ms -= step


def apply_noop(applier: Applier, ts_ms: int | None = None) -> None:
    """An entry that carries nothing but the proposer's time (a read barrier's no-op)."""
    applier.raw(commands.encode_noop(applier.ts_ms if ts_ms is None else ts_ms))


def offsets(response: topics_pb2.TopicReadResponse) -> list[int]:
    return [m.offset for m in response.messages]


@pytest.fixture(params=VIEWS)
def applier(request, tmp_path):
    with make_view(request.param, tmp_path) as view:
        yield Applier(view)


def test_a_topic_starts_at_its_first_publishs_index_and_counts_on_by_one(applier):
    applier.write(topics_pb2.TopicPublishRequest(topic=b"other", message=b"x"))
    first = publish(applier, b"t", b"a")
    assert first.offset == applier.index == 2
    assert [publish(applier, b"t", b"%d" % i).offset for i in range(3)] == [3, 4, 5]
    page = read(applier, b"t")
    assert offsets(page) == [2, 3, 4, 5]
    assert [m.message for m in page.messages] == [b"a", b"0", b"1", b"2"]
    assert (page.first_offset, page.next_offset, page.base_offset) == (2, 6, 2)


def test_a_retried_publish_returns_its_first_offset_and_appends_nothing(applier):
    rid = os.urandom(limits.REQUEST_ID_BYTES)
    first = publish(applier, b"t", b"once", request_id=rid)
    publish(applier, b"t", b"next")
    again = publish(applier, b"t", b"once", request_id=rid)
    assert again.offset == first.offset
    assert [m.message for m in read(applier, b"t").messages] == [b"once", b"next"]


def test_a_message_is_stamped_with_the_log_clock_which_never_goes_back(applier):
    assert publish(applier, b"t", b"a", ts_ms=50_000).publish_ms == 50_000
    # A proposer whose clock is behind does not move the log's time back.
    assert publish(applier, b"t", b"b", ts_ms=10_000).publish_ms == 50_000


def test_retention_by_count_keeps_the_newest_messages(applier):
    for i in range(10):
        publish(applier, b"t", b"%d" % i, retain_messages=3)
    page = read(applier, b"t")
    assert [m.message for m in page.messages] == [b"7", b"8", b"9"]
    assert page.first_offset == page.next_offset - 3


def test_retention_by_age_drops_old_messages_when_any_entry_applies(applier):
    publish(applier, b"old", b"a", retain_ms=5_000)
    advance(applier, 2_000)
    publish(applier, b"old", b"b")
    advance(applier, 2_999)
    assert len(read(applier, b"old").messages) == 2  # 4,999 ms old: kept
    advance(applier, 1)
    assert [m.message for m in read(applier, b"old").messages] == [b"b"]
    advance(applier, 2_000)
    gone = read(applier, b"old")
    assert not gone.messages and gone.first_offset == gone.next_offset == applier.index + 1


def test_a_proposer_whose_wall_clock_runs_ahead_ages_nothing(applier):
    publish(applier, b"t", b"kept", ts_ms=1_000, retain_ms=60_000)
    apply_noop(applier, ts_ms=1_000 + 10 * 24 * 3600 * 1000)  # ten days ahead
    publish(applier, b"t", b"next")
    assert [m.message for m in read(applier, b"t").messages] == [b"kept", b"next"]


def test_a_read_from_a_pruned_offset_names_the_first_retained_one(applier):
    sent = [publish(applier, b"t", b"%d" % i, retain_messages=2).offset for i in range(5)]
    page = read(applier, b"t", from_offset=sent[0])
    assert page.first_offset == sent[3] > sent[0]
    assert offsets(page) == sent[3:]


def test_a_forgotten_topics_next_life_starts_past_every_offset_it_used(applier):
    used = [publish(applier, b"t", b"%d" % i, retain_ms=1_000).offset for i in range(3)]
    advance(applier, 1_000)
    assert applier.view.topic_log().meta_get(b"t") is None  # forgotten: no record at all
    reborn = publish(applier, b"t", b"new")
    assert reborn.offset > max(used)
    page = read(applier, b"t", from_offset=used[-1] + 1)
    assert page.base_offset == page.first_offset == reborn.offset
    assert offsets(page) == [reborn.offset]


def test_an_empty_topic_reads_as_nothing_held_with_offsets_no_publish_precedes(applier):
    page = read(applier, b"never")
    assert not page.messages
    assert page.first_offset == page.next_offset == applier.index + 1
    assert publish(applier, b"never", b"x").offset >= page.next_offset


def test_reads_stop_at_their_limit_and_at_the_byte_bound_with_more(applier):
    for i in range(5):
        publish(applier, b"t", b"%d" % i)
    page = read(applier, b"t", limit=2)
    assert len(page.messages) == 2 and page.more
    rest = read(applier, b"t", from_offset=page.messages[-1].offset + 1)
    assert len(rest.messages) == 3 and not rest.more
    big = b"x" * limits.PUBSUB_MESSAGE_BYTES_MAX
    per_page = limits.TOPIC_READ_BYTES_MAX // len(big)
    for _ in range(per_page + 2):
        publish(applier, b"big", big)
    page = read(applier, b"big")
    assert len(page.messages) == per_page and page.more


@pytest.mark.parametrize("request_fields, limit", [
    ({"topic": b""}, "PUBSUB_TOPIC_BYTES_MAX"),
    ({"topic": b"t" * (limits.PUBSUB_TOPIC_BYTES_MAX + 1)}, "PUBSUB_TOPIC_BYTES_MAX"),
    ({"topic": b"t", "message": b"m" * (limits.PUBSUB_MESSAGE_BYTES_MAX + 1)}, "PUBSUB_MESSAGE_BYTES_MAX"),
    ({"topic": b"t", "retain_messages": limits.TOPIC_RETAINED_MESSAGES_MAX + 1}, "TOPIC_RETAINED_MESSAGES_MAX"),
    ({"topic": b"t", "retain_ms": limits.TOPIC_RETENTION_MS_MAX + 1}, "TOPIC_RETENTION_MS_MAX"),
])
def test_a_publish_past_a_limit_is_an_error_result_naming_it(applier, request_fields, limit):
    with pytest.raises(InvalidArgument, match=limit):
        applier.write(topics_pb2.TopicPublishRequest(**request_fields))
    assert applier.view.topic_log().expiry_first() is None  # nothing stored


def test_publishes_stop_at_the_space_quota_and_go_on_once_retention_frees_space(applier):
    applier.space_quota_bytes = 20_000
    message = b"m" * 1_000
    refused = None
    for i in range(40):
        try:
            publish(applier, b"t", message, retain_ms=1_000)
        except ResourceExhausted as error:
            refused = error
            break
    assert refused is not None and "space quota" in str(refused)
    advance(applier, 1_000)  # every message aged out
    assert publish(applier, b"t", message).offset == applier.index


def test_the_longest_topic_fits_every_stored_key(applier):
    topic = b"\xff" * limits.PUBSUB_TOPIC_BYTES_MAX
    assert publish(applier, topic, b"m").offset == applier.index
    assert [m.message for m in read(applier, topic).messages] == [b"m"]


def test_topics_sharing_a_prefix_never_see_each_others_messages(applier):
    publish(applier, b"a", b"short")
    publish(applier, b"a\x00\x00", b"longer")
    publish(applier, b"ab", b"sibling")
    assert [m.message for m in read(applier, b"a").messages] == [b"short"]
    assert [m.message for m in read(applier, b"ab").messages] == [b"sibling"]


def test_the_space_counted_is_what_the_records_hold_and_returns_to_zero(tmp_path):
    with make_view("lmdb", tmp_path) as view:
        applier = Applier(view)
        for i in range(30):
            publish(applier, b"t%d" % (i % 4), b"m" * i, retain_ms=1_000, retain_messages=5)
        assert view.space_used() == view.count_space()[0] > 0
        advance(applier, 1_000)
        assert view.topic_log().expiry_first() is None  # every topic aged out
        assert view.space_used() == view.count_space()[0]


# -- properties ------------------------------------------------------------

TOPICS = [b"a", b"b", b"a/b"]
_step = st.one_of(
    st.tuples(st.just("publish"), st.sampled_from(TOPICS), st.integers(0, 3), st.integers(0, 400)),
    st.tuples(st.just("retry"), st.integers(0, 50), st.just(0), st.just(0)),
    st.tuples(st.just("advance"), st.just(b""), st.just(0), st.integers(0, 1_500)),
)
RETAIN_MESSAGES = {b"a": 3, b"b": 50, b"a/b": 1}
RETAIN_MS = 1_000


class _Model:
    """Every acknowledged publish, by topic: (offset, message, publish_ms)."""

    def __init__(self):
        self.sent: dict[bytes, list[tuple[int, bytes, int]]] = {t: [] for t in TOPICS}
        self.answers: list[tuple[bytes, topics_pb2.TopicPublishResponse, bytes]] = []
        # The lease clock at each publish, by (topic, offset): where its age starts.
        self.aged_from: dict[tuple[bytes, int], int] = {}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_step, min_size=10, max_size=80))
def test_offsets_stay_contiguous_retries_apply_once_retention_keeps_its_promise(steps):
    applier, model = Applier(MemoryView()), _Model()
    for kind, topic, size, delta_ms in steps:
        if kind == "publish":
            rid, message = os.urandom(limits.REQUEST_ID_BYTES), os.urandom(size)
            answer = publish(applier, topic, message, request_id=rid, ts_ms=applier.ts_ms + delta_ms,
                             retain_messages=RETAIN_MESSAGES[topic], retain_ms=RETAIN_MS)
            history = model.sent[topic]
            assert not history or answer.offset > history[-1][0], "offsets never go back"
            history.append((answer.offset, message, answer.publish_ms))
            model.aged_from[(topic, answer.offset)] = lease_clock(applier.view)
            model.answers.append((topic, answer, rid))
        elif kind == "retry" and model.answers:
            topic, first, rid = model.answers[size % len(model.answers)]
            held_before = applier.view.topic_log().meta_get(topic)
            again = publish(applier, topic, b"ignored", request_id=rid, retain_messages=1, retain_ms=1)
            assert again.offset == first.offset
            assert applier.view.topic_log().meta_get(topic) == held_before
        else:
            advance(applier, delta_ms)
        _check_every_topic(applier, model)


def _check_every_topic(applier: Applier, model: _Model) -> None:
    clock_ms = lease_clock(applier.view)
    for topic, history in model.sent.items():
        young = [h for h in history if model.aged_from[(topic, h[0])] + RETAIN_MS > clock_ms]
        page = read(applier, topic, limit=limits.TOPIC_READ_MESSAGES_MAX)
        held = [(m.offset, m.message, m.publish_ms) for m in page.messages]
        # Held messages are the acknowledged ones from first_offset on, with no hole.
        assert held == [h for h in history if h[0] >= page.first_offset]
        assert offsets(page) == list(range(page.first_offset, page.next_offset))
        # Retention never drops a message both among the newest and young enough.
        owed = set(history[-RETAIN_MESSAGES[topic]:]) & set(young)
        assert owed <= set(held), (owed, held)
        if history and not held:
            assert history[-1] not in young, "only age empties a topic"
        # Replay from any retained offset yields the exact suffix.
        for start in offsets(page):
            suffix = read(applier, topic, from_offset=start)
            assert [(m.offset, m.message) for m in suffix.messages] == [(o, m) for o, m, _ in held if o >= start]


# -- snapshots ---------------------------------------------------------------

def test_a_snapshot_carries_the_topics_and_an_image_without_them_installs_as_none(tmp_path):
    source = StateStore(tmp_path / "source", 64 << 20)
    source.begin_batch()
    applier = Applier(source.batch_view())
    sent = [publish(applier, b"t", b"%d" % i).offset for i in range(5)]
    source.commit_batch()
    path = str(tmp_path / "snapshot.bin")
    snapshot.write_snapshot(path, source, (b"last", applier.index, 1), (b"prev", applier.index - 1, 1), ["n0"])
    source.close()

    target = StateStore(tmp_path / "target", 64 << 20)
    snapshot.read_snapshot(path, target)
    with target.read_view() as view:
        page = topics.read(view, topics_pb2.TopicReadRequest(topic=b"t"), view.last_applied())
        assert offsets(page) == sent
        assert view.space_used() == view.count_space()[0]

    # An image written before the topic tables existed: they come out empty.
    older = StateStore(tmp_path / "older", 64 << 20)
    with older.env.begin(write=True) as txn:
        for name in TOPIC_DB_NAMES:
            txn.drop(older.dbs[name], delete=True)
    old_path = str(tmp_path / "old.bin")
    snapshot.write_snapshot(old_path, older, (b"last", 9, 1), (b"prev", 8, 1), ["n0"])
    older.close()
    snapshot.read_snapshot(old_path, target)
    with target.read_view() as view:
        assert view.topic_log().meta_get(b"t") is None
        assert not read(Applier(view), b"t").messages
    target.close()
