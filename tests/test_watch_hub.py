"""The watch hub alone (no node): matching by key, prefix and range, order,
no overlap with the history a late watch reads itself, explicit overflow
instead of a gap, the hub-wide byte budget, cancel, the watch limit, and
asyncio readers woken once per loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tandemkv import limits
from tandemkv.errors import ResourceExhausted
from tandemkv.server.node.watch_hub import LoopWaker, Overflowed, WatchHub
from tandemkv.server.strong.reads import prefix_end


def _events(first_revision: int, keys: list[bytes], size: int = 8):
    return [(first_revision + i, key, b"e" * size) for i, key in enumerate(keys)]


def _never():
    pass


def test_watches_get_exactly_the_events_of_their_keys_in_order():
    hub = WatchHub(head=10)
    exact = hub.subscribe(b"a", b"a\x00", 0, _never)
    prefix = hub.subscribe(b"a", prefix_end(b"a"), 0, _never)
    ranged = hub.subscribe(b"b", b"d", 0, _never)
    everything = hub.subscribe(b"", None, 0, _never)
    hub.publish(15, _events(11, [b"a", b"ab", b"b", b"c", b"d"]))
    assert [e[0] for e in exact.take()[0]] == [11]
    assert [e[0] for e in prefix.take()[0]] == [11, 12]
    assert [e[0] for e in ranged.take()[0]] == [13, 14]
    assert [e[0] for e in everything.take()[0]] == [11, 12, 13, 14, 15]
    assert exact.take()[0] == [], "take empties the buffer"


def test_a_watch_from_the_past_reads_history_up_to_the_head_and_the_hub_buffers_after():
    hub = WatchHub(head=20)
    late = hub.subscribe(b"k", b"k\x00", 5, _never)
    assert late.caught_up_through == 20, "the reader reads revisions 5..20 from the history"
    hub.publish(21, [(20, b"k", b"old"), (21, b"k", b"new")])
    assert [e[0] for e in late.take()[0]] == [21], "nothing the history read already gave"
    future = hub.subscribe(b"k", b"k\x00", 30, _never)
    hub.publish(30, _events(22, [b"k"] * 9))
    assert [e[0] for e in future.take()[0]] == [30], "revisions before the one asked for are skipped"


def test_a_slow_watch_overflows_explicitly_and_the_others_keep_up(monkeypatch):
    monkeypatch.setattr(limits, "WATCH_BUFFER_EVENTS_MAX", 3)
    hub = WatchHub()
    slow, quick = hub.subscribe(b"k", b"k\x00", 0, _never), hub.subscribe(b"k", b"k\x00", 0, _never)
    hub.publish(2, _events(1, [b"k", b"k"]))
    assert len(quick.take()[0]) == 2
    hub.publish(5, _events(3, [b"k"] * 3))
    assert slow.take()[0] == Overflowed(1), "the first revision the slow watch was not given"
    assert [e[0] for e in quick.take()[0]] == [3, 4, 5]
    assert slow.take()[0] == Overflowed(1), "an overflowed watch stays over"
    assert hub.buffered_bytes == 0


def test_the_hub_wide_byte_budget_overflows_the_watch_that_would_pass_it(monkeypatch):
    monkeypatch.setattr(limits, "WATCH_HUB_BUFFERED_BYTES_MAX", 100)
    hub = WatchHub()
    first, second = hub.subscribe(b"k", b"k\x00", 0, _never), hub.subscribe(b"k", b"k\x00", 0, _never)
    hub.publish(1, [(1, b"k", b"x" * 60)])
    taken = [first.take()[0], second.take()[0]]
    assert sorted(map(type, taken), key=str) == sorted([list, Overflowed], key=str), taken
    assert Overflowed(1) in taken
    assert hub.buffered_bytes == 0


def test_take_says_how_far_the_watch_has_been_given_everything():
    hub = WatchHub(head=3)
    watch = hub.subscribe(b"k", b"k\x00", 0, _never)
    hub.publish(7, _events(4, [b"other", b"k"]))
    assert watch.take() == ([(5, b"k", b"e" * 8)], 7)


def test_overflow_all_sends_every_watch_back_to_the_history():
    hub = WatchHub(head=1)
    watches = [hub.subscribe(key, key + b"\x00", 0, _never) for key in (b"a", b"b")]
    hub.publish(2, [(2, b"a", b"e")])
    hub.overflow_all(3)
    assert [w.take()[0] for w in watches] == [Overflowed(2), Overflowed(3)]
    assert hub.buffered_bytes == 0


def test_cancel_stops_delivery_and_frees_the_slot(monkeypatch):
    monkeypatch.setattr(limits, "WATCHES_OPEN_MAX", 2)
    hub = WatchHub()
    a = hub.subscribe(b"p", prefix_end(b"p"), 0, _never)
    hub.subscribe(b"q", b"q\x00", 0, _never)
    with pytest.raises(ResourceExhausted, match="WATCHES_OPEN_MAX"):
        hub.subscribe(b"r", b"r\x00", 0, _never)
    hub.publish(1, _events(1, [b"p1"]))
    a.cancel()
    a.cancel()
    assert hub.count == 1 and hub.buffered_bytes == 0
    hub.publish(2, _events(2, [b"p2"]))
    hub.subscribe(b"r", b"r\x00", 0, _never)
    assert hub.count == 2


def test_ten_thousand_watches_of_one_key_each_get_every_event():
    hub = WatchHub()
    woken = []
    watches = [hub.subscribe(b"hot", b"hot\x00", 0, lambda: woken.append(1)) for _ in range(10_000)]
    for revision in range(1, 6):
        hub.publish(revision, [(revision, b"hot", b"v")])
    assert len(woken) == 50_000
    assert all([e[0] for e in w.take()[0]] == [1, 2, 3, 4, 5] for w in watches)


def test_asyncio_readers_are_woken_with_one_callback_per_loop_burst():
    async def run():
        loop = asyncio.get_running_loop()
        waker = LoopWaker(loop)
        hub = WatchHub()
        readers = [asyncio.Event() for _ in range(500)]
        watches = [hub.subscribe(b"k", b"k\x00", 0, waker.waker_for(event)) for event in readers]
        calls = []
        original = loop.call_soon_threadsafe
        loop.call_soon_threadsafe = lambda *args: (calls.append(args), original(*args))
        publisher = threading.Thread(target=hub.publish, args=(1, [(1, b"k", b"v")]))
        publisher.start()
        publisher.join()
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in readers)), timeout=10)
        assert len(calls) == 1
        assert all(len(w.take()[0]) == 1 for w in watches)

    asyncio.run(run())


def test_take_in_slices_keeps_revisions_whole():
    hub = WatchHub()
    watch = hub.subscribe(b"", None, 0, _never)
    hub.publish(3, [(1, b"a", b"e"), (1, b"b", b"e"), (2, b"a", b"e"), (2, b"b", b"e"), (3, b"a", b"e")])
    first, through = watch.take(1)
    assert [e[0] for e in first] == [1, 1] and through == 1
    second, through = watch.take(3)
    assert [e[0] for e in second] == [2, 2, 3] and through == 3
    assert hub.buffered_bytes == 0
