"""The SDK multiplexes a client's watches on one Watch.Watches stream per
node: thousands of watches, every event in order, cancel, progress, a slow
reader that overflows without holding up the others, and a node kill that
every watch survives without a gap; blocking and asyncio.

Method: a real 3-node `ServeCluster` whose nodes admit only
STREAMS_OPEN_MAX=2 streams each, so 2,000 watches can only work if they
share a stream; the client's own count of its streams (`streams_open`)
must be 1. Writes go through a second client. Every wait is bounded."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from tandemkv import limits
from tandemkv.client import AsyncClient, Client, Retry, WatchOverflow
from tandemkv.client import _watch_mux_core
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
