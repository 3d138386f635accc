"""Watches served from the node's watch hub, on an embedded 3-node cluster:
many watches each get every event of their keys in order; a watch whose
reader fell behind past its buffer goes back to the history and still
misses nothing; a cancelled watch frees its place in the hub; a session's
stream progress covers the watches that are caught up and names the others
(reading the history, events buffered, overflowed)."""

from __future__ import annotations

import threading

import pytest

from tandemkv import limits
from tandemkv.errors import InvalidArgument
from tandemkv.v1 import kv_pb2, watch_pb2
from tests.test_embedded_coordination import wait_until
from tests.test_embedded_node import Cluster

pytestmark = pytest.mark.timeout(120)
WRITES = 40
EVENTS_WAIT_S = 30.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("watches"))
    c.start()
    yield c
    c.stop()


def _watch(node, prefix: bytes, stop: threading.Event, **fields):
    request = watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=prefix, prefix=True), **fields)
    return node.watch(request, stop=stop)


def _collect(stream, count: int, into: list) -> None:
    for response in stream:
        into.extend((e.kv.key, e.kv.value, e.kv.mod_revision) for e in response.events)
        if len(into) >= count:
            return


def test_many_watches_each_see_every_event_of_their_keys_in_order(cluster):
    node = cluster.leader()
    stop = threading.Event()
    seen = [[] for _ in range(64)]
    readers = [threading.Thread(target=_collect, args=(_watch(node, b"many/", stop), WRITES, into))
               for into in seen]
    for reader in readers:
        reader.start()
    wait_until(lambda: node._watch_hub().count >= len(readers), EVENTS_WAIT_S, "every watch subscribed")
    for i in range(WRITES):
        node.put(b"many/%d" % (i % 5), b"%d" % i)
        node.put(b"other/%d" % i, b"not watched")
    for reader in readers:
        reader.join(timeout=EVENTS_WAIT_S)
    stop.set()
    assert all(not reader.is_alive() for reader in readers)
    expected = [(b"many/%d" % (i % 5), b"%d" % i) for i in range(WRITES)]
    for into in seen:
        assert [(k, v) for k, v, _ in into] == expected
        revisions = [r for _, _, r in into]
        assert revisions == sorted(set(revisions)), "in revision order, no duplicates"


def test_a_reader_that_fell_behind_its_buffer_misses_nothing(cluster, monkeypatch):
    monkeypatch.setattr(limits, "WATCH_BUFFER_EVENTS_MAX", 4)
    node = cluster.leader()
    hub = node._watch_hub()
    subscribed = []
    original = hub.subscribe
    monkeypatch.setattr(hub, "subscribe", lambda *args: subscribed.append(args[2]) or original(*args))
    before = hub.count

    def put_once_subscribed():  # the watch's first event, written once it is open
        wait_until(lambda: hub.count > before, EVENTS_WAIT_S, "the watch subscribed")
        node.put(b"behind/k", b"0")

    writer = threading.Thread(target=put_once_subscribed)
    writer.start()
    stop = threading.Event()
    stream = _watch(node, b"behind/", stop)
    first = next(stream)  # blocks until the writer's first event
    writer.join(timeout=EVENTS_WAIT_S)
    assert [e.kv.value for e in first.events] == [b"0"]
    for i in range(1, WRITES):  # the reader takes nothing meanwhile: its buffer overflows
        node.put(b"behind/k", b"%d" % i)
    rest: list = []
    _collect(stream, WRITES - 1, rest)
    stop.set()
    assert [v for _, v, _ in rest] == [b"%d" % i for i in range(1, WRITES)]
    assert len(subscribed) >= 2 and subscribed[1] > 0, "the overflowed watch went back to the history"


def test_a_closed_watch_leaves_the_hub(cluster):
    node = cluster.leader()
    stop = threading.Event()
    hub = node._watch_hub()
    before = hub.count
    stream = _watch(node, b"closed/", stop, progress_interval_ms=50)
    assert next(stream).progress
    assert hub.count == before + 1
    stream.close()
    assert hub.count == before


def _hub_reached(node, revision: int) -> None:
    hub = node._watch_hub()
    wait_until(lambda: hub.head >= revision, EVENTS_WAIT_S, f"the hub published revision {revision}")


def _request(key: bytes, start_revision: int = 0) -> watch_pb2.WatchRequest:
    return watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=key), start_revision=start_revision)


def test_a_stream_progress_covers_caught_up_watches_and_names_those_reading_the_history(cluster, monkeypatch):
    monkeypatch.setattr(limits, "WATCH_RESPONSE_EVENTS_MAX", 2)
    node = cluster.leader()
    first = node.put(b"sp/old", b"0").header.revision
    for i in range(1, 10):
        last = node.put(b"sp/old", b"%d" % i).header.revision
    _hub_reached(node, last)
    session = node.watch_session(lambda: None)
    try:
        session.create(1, _request(b"sp/idle"))
        session.create(2, _request(b"sp/old", start_revision=first))  # ten events to read back
        assert session.stream_progress() is None, "nobody asked for it"
        session.request_progress()
        ready, _ = session.poll()
        progress = session.stream_progress()
        assert [watch_id for watch_id, _ in ready] == [2]
        assert progress.response.progress and progress.response.header.revision >= last
        assert progress.excluded == [2], "still reading the history: not covered"
        assert session.stream_progress() is None, "asked once, answered once"
        read_back = len(ready[0][1].events)
        for _ in range(20):  # bounded: two events a poll
            ready, _ = session.poll()
            read_back += sum(len(response.events) for _, response in ready)
            if read_back >= 10:
                break
        assert read_back == 10
        session.request_progress()
        ready, _ = session.poll()
        assert session.stream_progress().excluded == [], "caught up: covered"
    finally:
        session.close()


def test_a_stream_progress_names_watches_with_events_buffered_or_overflowed(cluster, monkeypatch):
    monkeypatch.setattr(limits, "WATCH_BUFFER_EVENTS_MAX", 2)
    node = cluster.leader()
    session = node.watch_session(lambda: None)
    try:
        for watch_id, key in enumerate([b"spb/quiet", b"spb/one", b"spb/many"], start=1):
            session.create(watch_id, _request(key))
        session.poll()
        revision = node.put(b"spb/one", b"x").header.revision
        for i in range(3):  # one more than the buffer holds
            revision = node.put(b"spb/many", b"%d" % i).header.revision
        _hub_reached(node, revision)
        session.request_progress()
        progress = session.stream_progress()  # before the poll that takes them
        assert progress.response.header.revision >= revision
        assert sorted(progress.excluded) == [2, 3]
        for _ in range(10):  # the overflowed one reads the history back, then all are caught up
            session.poll()
            session.request_progress()
            progress = session.stream_progress()
            if not progress.excluded:
                break
        assert progress.excluded == [] and progress.response.header.revision >= revision
    finally:
        session.close()


def test_a_session_refuses_the_stream_id_and_a_progress_interval_below_its_minimum(cluster):
    session = cluster.leader().watch_session(lambda: None)
    try:
        with pytest.raises(InvalidArgument, match="the stream's own"):
            session.create(-1, _request(b"spr/k"))
        with pytest.raises(InvalidArgument, match="WATCH_STREAM_PROGRESS_INTERVAL_MS_MIN"):
            session.request_progress(limits.WATCH_STREAM_PROGRESS_INTERVAL_MS_MIN - 1)
        session.request_progress(limits.WATCH_STREAM_PROGRESS_INTERVAL_MS_MIN)
        _, due = session.poll()
        assert session.stream_progress() is not None
        _, due = session.poll()
        assert due is not None, "the next one is due an interval later"
    finally:
        session.close()
