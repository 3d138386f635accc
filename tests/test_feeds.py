"""A feed keeps the latest value for one reader: a reader that falls behind
is given the newest value, never an older one after it, and is woken once
per burst of news; a failure is raised once, an end stops the reader.

Method: the pure `Feed` with a counting wake-up, table-style; and `follow`,
its blocking shell, over a feed filled from another thread."""

from __future__ import annotations

import threading

import pytest

from tandemkv.server.feeds import Feed, follow

WAIT_S = 30.0


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def test_a_reader_that_falls_behind_is_given_only_the_latest_value():
    wakes = Wakes()
    feed: Feed[str] = Feed(wakes)
    for version, value in enumerate(["a", "b", "c"], 1):
        feed.offer(version, value)
    assert wakes.count == 1  # one wake-up for the burst
    assert feed.take() == "c"
    assert feed.take() is None


def test_an_older_version_never_replaces_a_newer_one():
    feed: Feed[str] = Feed(Wakes())
    feed.offer(5, "new")
    feed.offer(4, "old")
    feed.offer(5, "same version again")
    assert feed.take() == "new"
    feed.offer(3, "older still")
    assert feed.take() is None


@pytest.mark.parametrize("offers, taken", [
    ([(2, "x")], None),              # the same value again is no news
    ([(2, "y")], "y"),               # a new value is
    ([(2, "y"), (3, "x")], None),    # a change undone before the reader looked is no news
])
def test_with_same_a_newer_version_of_the_value_given_is_no_news(offers, taken):
    wakes = Wakes()
    feed: Feed[str] = Feed(wakes, same=lambda a, b: a == b)
    feed.offer(1, "x")
    assert feed.take() == "x"
    for version, value in offers:
        feed.offer(version, value)
    assert feed.take() == taken


def test_a_failure_is_raised_once_and_ends_the_feed():
    wakes = Wakes()
    feed: Feed[str] = Feed(wakes)
    feed.offer(1, "a")
    feed.fail(LookupError("gone"))
    assert not feed.over
    with pytest.raises(LookupError, match="gone"):
        feed.take()
    assert feed.over and feed.take() is None
    feed.offer(2, "late")
    assert feed.take() is None
    assert wakes.count == 2


def test_close_runs_on_close_once():
    closed = []
    feed: Feed[str] = Feed(Wakes(), on_close=lambda: closed.append(True))
    feed.close()
    feed.close()
    assert closed == [True] and feed.over


def test_follow_yields_the_value_now_then_each_change_and_ends_with_the_feed():
    feeds: list[Feed[int]] = []
    gave: list[int] = []
    stepped = threading.Semaphore(0)

    def open_feed(wake):
        feed: Feed[int] = Feed(wake, on_close=lambda: gave.append(-1))
        feed.offer(0, 0)
        feeds.append(feed)
        return feed

    def source():
        for version in (1, 2):
            assert stepped.acquire(timeout=WAIT_S)
            feeds[0].offer(version, version * 10)
        assert stepped.acquire(timeout=WAIT_S)
        feeds[0].end()

    thread = threading.Thread(target=source, daemon=True)
    thread.start()
    for value in follow(open_feed, lambda: False):
        gave.append(value)
        stepped.release()
    thread.join(WAIT_S)
    assert gave == [0, 10, 20, -1]  # closed once it ended
