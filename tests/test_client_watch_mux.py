"""The SDK multiplexes a client's watches on one Watch.Watches stream per
node: thousands of watches, every event in order, cancel, progress, a slow
reader that overflows without holding up the others, and a node kill that
every watch survives without a gap; blocking and asyncio.

Method: a real 3-node `ServeCluster` whose nodes admit only
STREAMS_OPEN_MAX=2 streams each, so 2,000 watches can only work if they
share a stream; the client's own count of its streams (`streams_open`)
must be 1; in front of an embedded leader the server's own count
(`ClientServer.streams_open`) is 1 as well. Writes go through a second
client. Every wait is bounded.
The multiplexer's core is also driven by hand first (no I/O): ids,
routing, overflow and resync, a second stream past WATCHES_PER_STREAM_MAX,
and the re-creation of every watch after a stream failure."""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
import time

import grpc
import pytest

from tandemkv import limits
from tandemkv.client import AsyncClient, Client, Retry, WatchOverflow
from tandemkv.client import _watch_mux_core
from tandemkv.client._routing import Router
from tandemkv.v1 import kv_pb2, watch_pb2
from tests.support.cluster import ServeCluster

pytestmark = pytest.mark.timeout(600)
LEADER_TIMEOUT_S = 60.0
WAIT_S = 60.0
POLL_S = 0.05
WATCHES = 2_000
KEYS = 100
STREAMS_PER_NODE = 2
FAILOVER_RETRY = Retry(deadline_s=30.0, attempts_max=60, backoff_max_s=0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("watch-mux"), nodes=3,
                      limits={"STREAMS_OPEN_MAX": STREAMS_PER_NODE}) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


@pytest.fixture
def clients(cluster):
    with Client(cluster.endpoints, retry=FAILOVER_RETRY) as watcher, \
            Client(cluster.endpoints, retry=FAILOVER_RETRY) as writer:
        yield watcher, writer


def wait_until(condition, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(POLL_S)


def write_all(writer: Client, writes: list[tuple[str, str]], threads: int = 8) -> list[int]:
    """Puts every (key, value) from `threads` threads at once (so the
    pipeline batches them); returns the revisions in the order of `writes`
    within each thread's share, which write order per key follows."""
    revisions = [0] * len(writes)

    def run(start: int) -> None:
        for index in range(start, len(writes), threads):
            revisions[index] = writer.put(*writes[index]).revision

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=WAIT_S * 2)
    assert not any(w.is_alive() for w in workers), "writes did not finish"
    return revisions


def take(watcher, count: int) -> list:
    """The next `count` events of a watcher read once (its iterator is let
    go after: that closes the watch)."""
    return list(itertools.islice(iter(watcher), count))


# -- the core, by hand --
class _Broken(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "connection refused"

    def trailing_metadata(self):
        return ()


def _events(watch_id: int, *revisions: int) -> watch_pb2.WatchStreamResponse:
    events = [watch_pb2.Event(kv=kv_pb2.KeyValue(key=b"k", value=b"%d" % r, mod_revision=r)) for r in revisions]
    return watch_pb2.WatchStreamResponse(watch_id=watch_id, response=watch_pb2.WatchResponse(events=events))


def _sent(actions, kind: str) -> list:
    return [a.request for a in actions if isinstance(a, _watch_mux_core.Send) and a.request.WhichOneof("kind") == kind]


def _feed(start: int = 5, resync: bool = True) -> _watch_mux_core.Feed:
    return _watch_mux_core.Feed(b"k", False, start, False, resync)


def test_the_core_routes_by_id_and_recreates_every_watch_from_its_next_revision_after_a_failure():
    mux = _watch_mux_core.WatchMux(Router(["a:1", "b:2"]), Retry(attempts_max=3, backoff_max_s=0.01))
    first, second = _feed(), _feed()
    opened = mux.add(first)
    assert isinstance(opened[0], _watch_mux_core.Open) and _sent(opened, "create")[0].create.watch_id == 1
    assert not any(isinstance(a, _watch_mux_core.Open) for a in mux.add(second))  # the same stream
    stream = mux.streams[0]
    mux.received(stream, _events(2, 7, 8))
    assert (first.items, [e.kv.mod_revision for e in second.items[0].events]) == (collections.deque(), [7, 8])
    delay_s, _ = mux.broke(stream, _Broken())
    assert delay_s is not None and stream.endpoint == "a:1"
    creates = _sent(mux.reopen(stream), "create")
    assert stream.endpoint == "b:2", "the failed endpoint is left for the next one"
    assert sorted(c.create.request.start_revision for c in creates) == [5, 9]
    assert len({c.create.watch_id for c in creates} | {1, 2}) == 4, "new ids on the new call"
    assert (first.reconnects, second.reconnects) == (1, 1)


def test_the_core_pauses_an_overflowing_watch_and_resumes_it_from_its_first_unbuffered_revision(monkeypatch):
    monkeypatch.setattr(limits, "WATCH_CLIENT_BUFFER_EVENTS_MAX", 4)
    mux = _watch_mux_core.WatchMux(Router(["a:1"]), Retry())
    slow, other = _feed(start=1), _feed(start=1)
    mux.add(slow)
    mux.add(other)
    stream = mux.streams[0]
    mux.received(stream, _events(1, 1, 2, 3))
    overflow = mux.received(stream, _events(1, 4, 5))
    assert [c.cancel.watch_id for c in _sent(overflow, "cancel")] == [1] and slow.paused
    assert slow.overflows == 1 and slow.stream is None
    assert mux.received(stream, _events(1, 6)) == [], "what the node sent before the cancel is dropped"
    response, actions = mux.take(slow)
    assert [e.kv.mod_revision for e in response.events] == [1, 2, 3]
    assert [c.create.request.start_revision for c in _sent(actions, "create")] == [4]
    told = _feed(start=1, resync=False)
    mux.add(told)
    mux.received(stream, _events(told.watch_id, 1, 2, 3))
    mux.received(stream, _events(told.watch_id, 4, 5))
    assert mux.take(told)[0] is not None
    with pytest.raises(WatchOverflow) as caught:
        mux.take(told)
    assert caught.value.revision == 4


def test_the_core_opens_a_second_stream_past_its_watch_limit_and_closes_a_stream_with_its_last_watch():
    mux = _watch_mux_core.WatchMux(Router(["a:1"]), Retry(), watches_per_stream_max=2)
    feeds = [_feed() for _ in range(3)]
    opens = [sum(isinstance(a, _watch_mux_core.Open) for a in mux.add(f)) for f in feeds]
    assert opens == [1, 0, 1] and len(mux.streams) == 2
    assert not any(isinstance(a, _watch_mux_core.Close) for a in mux.remove(feeds[0]))
    assert any(isinstance(a, _watch_mux_core.Close) for a in mux.remove(feeds[2]))
    assert len(mux.streams) == 1 and feeds[2].finished


def _stream_progress(revision: int, *excluded: int) -> watch_pb2.WatchStreamResponse:
    header = kv_pb2.ResponseHeader(revision=revision)
    return watch_pb2.WatchStreamResponse(watch_id=_watch_mux_core.STREAM_PROGRESS_WATCH_ID,
                                         response=watch_pb2.WatchResponse(header=header, progress=True),
                                         progress_excluded=list(excluded))


def test_the_core_asks_each_stream_for_progress_and_moves_the_watches_it_covers():
    mux = _watch_mux_core.WatchMux(Router(["a:1", "b:2"]), Retry(attempts_max=3, backoff_max_s=0.01))
    covered, excluded, unacknowledged, unread = (_feed() for _ in range(4))
    opened = mux.add(covered)
    asked = _sent(opened, "progress")
    assert [r.progress.interval_ms for r in asked] == [_watch_mux_core.WATCH_PROGRESS_INTERVAL_MS]
    creates = _sent(opened, "create") + [c for f in (excluded, unacknowledged, unread)
                                         for c in _sent(mux.add(f), "create")]
    assert [c.create.request.progress_interval_ms for c in creates] == [0] * 4, "no progress per watch"
    stream = mux.streams[0]
    for feed in (covered, excluded, unread):
        mux.received(stream, watch_pb2.WatchStreamResponse(watch_id=feed.watch_id, created=True))
    mux.received(stream, _events(unread.watch_id, 7))
    assert mux.received(stream, _stream_progress(20, excluded.watch_id)) == [], "nothing to read: no wake-up"
    assert (covered.next_revision, covered.buffered_next) == (21, 21)
    assert (excluded.next_revision, unacknowledged.next_revision) == (5, 5), "not covered"
    assert (unread.next_revision, unread.buffered_next) == (5, 21), "its user has event 7 to read first"
    assert [e.kv.mod_revision for e in mux.take(unread)[0].events] == [7]
    assert mux.take(unread)[0].progress and unread.next_revision == 21
    mux.received(stream, watch_pb2.WatchStreamResponse(  # a node's progress for one watch still counts
        watch_id=excluded.watch_id, response=_stream_progress(25).response))
    assert excluded.next_revision == 26
    assert _sent(mux.request_progress(covered), "progress"), "asked now, on its stream"
    mux.broke(stream, _Broken())
    reopened = mux.reopen(stream)
    assert reopened[0].request.WhichOneof("kind") == "progress", "a new call asks first"
    mux.received(stream, _stream_progress(30))
    assert covered.next_revision == 21, "not created on the new call yet: not covered"


# -- a real cluster --
def test_two_thousand_watches_share_one_stream_and_each_gets_its_keys_events_in_order(clients):
    client, writer = clients
    start = writer.put("mux/start", "x").revision + 1
    watchers = [client.watch(f"mux/{i % KEYS}", start_revision=start) for i in range(WATCHES)]
    assert client._watch_streams().streams_open == 1
    rounds = 5
    writes = [(f"mux/{n % KEYS}", str(n)) for n in range(KEYS * rounds)]
    for step in range(rounds):  # one round after the other: each key's values go up
        write_all(writer, writes[step * KEYS:(step + 1) * KEYS])
    assert client._watch_streams().streams_open == 1
    for i, watcher in enumerate(watchers):
        events = take(watcher, rounds)
        assert [e.key for e in events] == [f"mux/{i % KEYS}".encode()] * rounds
        assert [int(e.value) for e in events] == [i % KEYS + KEYS * r for r in range(rounds)]
        assert [e.revision for e in events] == sorted({e.revision for e in events})
        assert watcher.next_revision == events[-1].revision + 1
    # Each iterator let go closed its watch; the last one closed the stream.
    assert client._watch_streams().streams_open == 0


def test_a_cancelled_watch_ends_and_the_others_keep_their_events(clients):
    client, writer = clients
    start = writer.put("cancel/start", "x").revision + 1
    watchers = [client.watch(f"cancel/{i}", start_revision=start) for i in range(200)]
    for watcher in watchers[::2]:
        watcher.close()
        assert take(watcher, 1) == [], "a closed watch yields nothing more"
    write_all(writer, [(f"cancel/{i}", f"v{i}") for i in range(200)])
    iterators = [iter(watcher) for watcher in watchers[1::2]]  # held: letting one go closes its watch
    for i, events in enumerate(iterators):
        assert next(events).value == f"v{2 * i + 1}".encode()
    assert client._watch_streams().streams_open == 1
    for watcher in watchers:
        watcher.close()
    assert client._watch_streams().streams_open == 0
    again = client.watch("cancel/again")  # a new watch opens a new stream
    assert client._watch_streams().streams_open == 1
    writer.put("cancel/again", "back")
    assert [e.value for e in take(again, 1)] == [b"back"]
    again.close()


def test_a_quiet_watch_moves_its_next_revision_on_progress(clients, monkeypatch):
    monkeypatch.setattr(_watch_mux_core, "WATCH_PROGRESS_INTERVAL_MS", 200)
    client, writer = clients
    quiet = client.watch("progress/quiet")
    reader = threading.Thread(target=lambda: take(quiet, 1), daemon=True)
    reader.start()
    later = writer.put("progress/other", "x").revision
    wait_until(lambda: quiet.next_revision > later, "a progress response past the other key's write")
    quiet.close()
    reader.join(timeout=WAIT_S)
    assert not reader.is_alive(), "closing the watch ends its iteration"


def test_two_thousand_idle_watches_move_on_progress_responses_of_their_stream_alone(clients, monkeypatch):
    monkeypatch.setattr(_watch_mux_core, "WATCH_PROGRESS_INTERVAL_MS", 600_000)  # only when asked
    client, writer = clients
    mux = client._watch_streams()._mux
    on_the_wire: list = []
    received = mux.received
    monkeypatch.setattr(mux, "received", lambda stream, response: on_the_wire.append(response)
                        or received(stream, response))
    watchers = [client.watch(f"idle/{i}") for i in range(WATCHES)]
    try:
        wait_until(lambda: all(w.state.acknowledged for w in watchers), "every watch created on the node")
        assert client._watch_streams().streams_open == 1
        later = writer.put("idle-other", "x").revision
        assert not any(w.next_revision > later for w in watchers), "no progress until asked"
        before = len(on_the_wire)
        # Asked again until the node's progress is past the write (its node may apply it later).
        wait_until(lambda: watchers[0].request_progress() or all(w.next_revision > later for w in watchers),
                   "every watch to move past the write")
        answers = on_the_wire[before:]
        assert answers and all(r.watch_id == _watch_mux_core.STREAM_PROGRESS_WATCH_ID for r in answers), (
            "the stream's progress, never one response per watch")
    finally:
        for watcher in watchers:
            watcher.close()


def in_revision_order(events) -> list[tuple[int, int]]:
    """(revision, value) of each event, checked to be in revision order."""
    pairs = [(e.revision, int(e.value)) for e in events]
    assert [r for r, _ in pairs] == sorted(r for r, _ in pairs)
    return pairs


def test_a_slow_reader_overflows_and_resyncs_while_the_others_keep_up(clients):
    client, writer = clients
    count = limits.WATCH_CLIENT_BUFFER_EVENTS_MAX + 1_000
    start = writer.put("slow/start", "x").revision + 1
    slow = client.watch("slow/", prefix=True, start_revision=start)
    told = client.watch("slow/", prefix=True, start_revision=start, resync=False)
    fast = [client.watch("slow/", prefix=True, start_revision=start) for _ in range(3)]
    fast_seen: list[list] = [[] for _ in fast]

    def read_fast(k: int) -> None:
        for event in fast[k]:
            fast_seen[k].append(event)
            if len(fast_seen[k]) == count:
                return

    readers = [threading.Thread(target=read_fast, args=(k,), daemon=True) for k in range(len(fast))]
    for reader in readers:
        reader.start()
    revisions = write_all(writer, [(f"slow/{n % 10}", str(n)) for n in range(count)])
    written = sorted(zip(revisions, range(count)))
    for reader in readers:
        reader.join(timeout=WAIT_S)
    # The fast readers got everything while the slow ones were not read at all.
    assert all(sorted(in_revision_order(seen)) == written for seen in fast_seen)
    wait_until(lambda: slow.overflows >= 1 and told.overflows >= 1, "the slow watches to overflow")

    # Resync (the default): every event still arrives, in order, no gap.
    assert sorted(in_revision_order(take(slow, count))) == written
    # resync=False: the buffered events, then WatchOverflow naming where to go on.
    delivered = []
    with pytest.raises(WatchOverflow) as caught:
        for event in told:
            delivered.append(event)
    resume = caught.value.revision
    assert 0 < len(delivered) <= limits.WATCH_CLIENT_BUFFER_EVENTS_MAX
    assert resume == delivered[-1].revision + 1
    assert sorted(in_revision_order(delivered)) == [w for w in written if w[0] < resume]
    with client.watch("slow/", prefix=True, start_revision=resume) as rest:
        events = take(rest, count - len(delivered))
        assert sorted(in_revision_order(events)) == [w for w in written if w[0] >= resume]


def test_every_watch_resumes_on_another_node_after_a_kill_without_a_gap(cluster, clients):
    client, writer = clients
    start = writer.put("kill/start", "x").revision + 1
    watchers = [client.watch(f"kill/{i % 10}", start_revision=start) for i in range(300)]
    write_all(writer, [(f"kill/{n}", "before") for n in range(10)], threads=1)
    endpoint = client._watch_streams()._mux.streams[0].endpoint
    victim = next(m.name for m in cluster.members if m.client_address == endpoint)
    cluster.kill(victim)
    try:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        write_all(writer, [(f"kill/{n}", "after") for n in range(10)], threads=1)
        iterators = [iter(watcher) for watcher in watchers]
        for i, iterator in enumerate(iterators):
            events = list(itertools.islice(iterator, 2))
            assert [(e.key, e.value) for e in events] == [(f"kill/{i % 10}".encode(), b"before"),
                                                          (f"kill/{i % 10}".encode(), b"after")]
        assert all(w.reconnects >= 1 for w in watchers), "the watches never lost their node"
        assert client._watch_streams().streams_open == 1
        assert client._watch_streams()._mux.streams[0].endpoint != endpoint
    finally:
        for watcher in watchers:
            watcher.close()
        cluster.restart(victim)
        cluster.wait_for_leader(LEADER_TIMEOUT_S)


def test_the_asyncio_client_multiplexes_and_tells_a_slow_reader(cluster):
    count = 1_000
    writes = limits.WATCH_CLIENT_BUFFER_EVENTS_MAX + 1_000

    async def scenario() -> None:
        async with AsyncClient(cluster.endpoints) as client, AsyncClient(cluster.endpoints) as writer:
            start = (await writer.put("async/start", "x")).revision + 1
            watchers = [client.watch(f"async/{i % 10}", start_revision=start) for i in range(count)]
            told = client.watch("async/", prefix=True, start_revision=start, resync=False)
            firsts = [asyncio.ensure_future(w.__aiter__().__anext__()) for w in watchers]
            told_events = told.__aiter__()
            told_first = asyncio.ensure_future(told_events.__anext__())
            streams = client._watch_streams()
            while sum(len(s.feeds) for s in streams._mux.streams) < count + 1:
                await asyncio.sleep(POLL_S)
            assert streams.streams_open == 1
            await asyncio.gather(*(writer.put(f"async/{n % 10}", str(n)) for n in range(10)))
            assert [int((await first).value) for first in firsts] == [i % 10 for i in range(count)]
            for watcher in watchers:
                watcher.close()
            assert streams.streams_open == 1  # `told` still holds it
            for step in range(0, writes - 10, 500):  # `told` is not read meanwhile
                await asyncio.gather(*(writer.put(f"async/{n % 10}", str(n))
                                       for n in range(10 + step, min(writes, 10 + step + 500))))
            while told.overflows < 1:
                await asyncio.sleep(POLL_S)
            delivered = [int((await told_first).value)]
            with pytest.raises(WatchOverflow) as caught:
                async for event in told_events:
                    delivered.append(int(event.value))
            assert 0 < len(delivered) <= limits.WATCH_CLIENT_BUFFER_EVENTS_MAX
            assert caught.value.revision > start
            assert streams.streams_open == 0

    asyncio.run(asyncio.wait_for(scenario(), WAIT_S * 2))


def test_an_asyncio_watch_asks_its_stream_for_progress(cluster, monkeypatch):
    monkeypatch.setattr(_watch_mux_core, "WATCH_PROGRESS_INTERVAL_MS", 600_000)  # only when asked

    async def scenario() -> None:
        async with AsyncClient(cluster.endpoints) as client, AsyncClient(cluster.endpoints) as writer:
            start = (await writer.put("async-progress/start", "x")).revision + 1
            quiet = client.watch("async-progress/quiet", start_revision=start)
            quiet.request_progress()  # before iteration: nothing to ask yet, and no error
            reading = asyncio.ensure_future(quiet.__aiter__().__anext__())
            while not quiet.state.acknowledged:
                await asyncio.sleep(POLL_S)
            later = (await writer.put("async-progress/other", "x")).revision
            while quiet.next_revision <= later:  # asked again until its node has applied the write
                quiet.request_progress()
                await asyncio.sleep(POLL_S)
            assert quiet.next_revision > later and not reading.done(), "moved by progress, not by an event"
            reading.cancel()
            quiet.close()

    asyncio.run(asyncio.wait_for(scenario(), WAIT_S))


def test_the_node_counts_one_stream_for_two_thousand_watches_of_one_client(tmp_path):
    """The same, counted by the server itself (`ClientServer.streams_open`)
    in front of an embedded leader."""
    from tandemkv.server.api import build_server
    from tests.test_embedded_node import Cluster as EmbeddedCluster

    embedded = EmbeddedCluster(tmp_path)
    embedded.start()
    node = embedded.leader()
    server = build_server(node, "127.0.0.1:0")
    server.start()
    try:  # writes go to the node itself: its members' addresses serve no gRPC here
        with Client([f"127.0.0.1:{server.port}"]) as client:
            start = node.put(b"count/start", b"x").header.revision + 1
            watchers = [client.watch(f"count/{i % KEYS}", start_revision=start) for i in range(WATCHES)]
            last = iter(watchers[-1])
            node.put(b"count/%d" % ((WATCHES - 1) % KEYS), b"v")
            assert next(last).value == b"v"  # every watch is open on the node by now
            assert server.streams_open == 1
            for watcher in watchers:
                watcher.close()
            wait_until(lambda: server.streams_open == 0, "the node to see the stream end")
    finally:
        server.stop()
        embedded.stop()
