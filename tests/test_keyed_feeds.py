"""Per-key subscriptions and per-key storage of keyed tables, case by case:
a key feed coalesces a key changed twice into its latest value, wakes its
reader once per burst, and past its bound drops what is pending and says
`resync` (never a silent gap); the registry offers a change only to feeds
of that key or a prefix of it; the store writes one record per key, loads
a table's keys in key order without a neighbour's, and a drop deletes
them all."""

from __future__ import annotations

import pytest

from tandemkv.errors import NotFound
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.storage import CrdtStore, KeyedTableInfo
from tandemkv.server.available.subscriptions import KeyChange, KeyFeed, KeyFeeds


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def test_a_key_changed_twice_is_sent_once_with_its_latest_value():
    wakes = Wakes()
    feed = KeyFeed("t", wakes, prefix=b"a")
    feed.offer([KeyChange(b"a1", 1), KeyChange(b"a2", 2)])
    feed.offer([KeyChange(b"a1", 3)])
    assert wakes.count == 1  # one wake per burst the reader has not taken
    batch = feed.take()
    assert not batch.resync and batch.changes == [KeyChange(b"a1", 3), KeyChange(b"a2", 2)]
    assert feed.take() is None


def test_past_its_bound_a_feed_drops_what_is_pending_and_says_resync():
    feed = KeyFeed("t", Wakes(), prefix=b"", pending_max=3)
    feed.offer([KeyChange(b"k%d" % i, i) for i in range(3)])
    feed.offer([KeyChange(b"k9", 9)])
    batch = feed.take()
    assert batch.resync and batch.changes == [] and feed.overflows == 1
    feed.offer([KeyChange(b"k10", 10)])
    assert feed.take() == (False, [KeyChange(b"k10", 10)])


def test_a_failed_feed_raises_once_then_is_over():
    feed = KeyFeed("t", Wakes(), key=b"k")
    feed.offer([KeyChange(b"k", 1)])
    feed.fail(NotFound("dropped"))
    with pytest.raises(NotFound):
        feed.take()
    assert feed.over and feed.take() is None


def test_the_registry_offers_a_change_to_the_feeds_that_follow_it_only():
    feeds = KeyFeeds()
    exact = KeyFeed("t", Wakes(), key=b"room:1")
    prefix = KeyFeed("t", Wakes(), prefix=b"room:")
    other_table = KeyFeed("u", Wakes(), prefix=b"")
    for feed in (exact, prefix, other_table):
        feeds.add(feed)
    subscribed = feeds.subscribed([("t", b"room:1"), ("t", b"room:2"), ("t", b"user:1")])
    assert subscribed == {exact: [("t", b"room:1")], prefix: [("t", b"room:1"), ("t", b"room:2")]}
    exact.close()
    feeds.remove(exact)
    assert exact not in feeds.subscribed([("t", b"room:1")])
    feeds.end_all()
    assert prefix.over and other_table.over


def test_the_store_keeps_a_record_per_key_and_a_drop_deletes_them(tmp_path):
    store = CrdtStore(tmp_path, durable=False)
    try:
        store.save_keyed({"ab": KeyedTableInfo(TableKind.OR_SET, 7), "a": KeyedTableInfo(TableKind.OR_SET, 8)},
                         [("ab", b"k2", b"s2"), ("ab", b"k1", b"s1"), ("a", b"bk", b"other")])
        assert store.load_keyed_tables() == {"ab": KeyedTableInfo(TableKind.OR_SET, 7),
                                             "a": KeyedTableInfo(TableKind.OR_SET, 8)}
        assert list(store.load_keys("ab")) == [(b"k1", b"s1"), (b"k2", b"s2")]
        assert list(store.load_keys("a")) == [(b"bk", b"other")]  # "a" + "bk" is not "ab" + "k"
        store.save_keyed({"ab": None}, [])
        assert list(store.load_keys("ab")) == [] and list(store.load_keys("a")) == [(b"bk", b"other")]
        assert set(store.load_keyed_tables()) == {"a"}
    finally:
        store.close()


def test_a_table_dropped_and_created_again_in_one_save_starts_empty(tmp_path):
    store = CrdtStore(tmp_path, durable=False)
    try:
        store.save_keyed({"t": KeyedTableInfo(TableKind.OR_SET, 3)}, [("t", b"old", b"s")])
        store.save_keyed({"t": KeyedTableInfo(TableKind.AW_LWW_MAP, 9)}, [("t", b"new", b"s2")], dropped={"t"})
        assert store.load_keyed_tables() == {"t": KeyedTableInfo(TableKind.AW_LWW_MAP, 9)}
        assert list(store.load_keys("t")) == [(b"new", b"s2")]
    finally:
        store.close()
