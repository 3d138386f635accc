"""Presence on a real cluster of three `tandemkv serve` processes, through
the SDK (sync and asyncio): an entry tracked on n1 is listed on n2 and n3;
the diffs a watch gets, applied to its first state, are the list's
changes; a client that stops renewing leaves every node within its TTL
and the clock-skew bound; a node killed with SIGKILL has its entries leave
every other node within PRESENCE_NODE_DOWN_MS and the skew; with two of
the three nodes down (no Raft quorum) tracking, listing and watching still
work on the third. Bad requests get their status.

Method: one cluster for the module; the kill and the no-quorum tests run
last, in that order (they take nodes down). Every wait polls `list` under
a deadline that is the bound under test plus a margin for a loaded
machine; a watch is read in a thread of the test.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time

import pytest

from tandemkv import errors, limits
from tandemkv.client import AsyncClient, Client, PresenceDiff, PresenceMeta
from tandemkv.client._presence import Presence
from tandemkv.client._presence_async import AsyncPresence
from tandemkv.client._presence_core import apply_diff
from tests.support.cluster import ServeCluster

START_TIMEOUT_S = 120.0
# What a loaded shared machine may add to a bound (ticks, scheduling, RPCs).
MARGIN_S = 10.0
# How long an entry may take to reach every node: heartbeats and a want/transfer round trip.
SPREAD_TIMEOUT_S = limits.PRESENCE_HEARTBEAT_MS / 1000 * 3 + MARGIN_S
POLL_S = 0.05
CLI_TIMEOUT_S = 60.0
NODES = ("n1", "n2", "n3")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("presence"), nodes=3) as cluster:
        cluster.wait_for_leader(START_TIMEOUT_S)
        yield cluster


@pytest.fixture(scope="module")
def clients(cluster):
    opened = {name: Client(cluster.endpoint(name)) for name in NODES}
    yield opened
    for client in opened.values():
        client.close()


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.1f} s"
        time.sleep(POLL_S)


def keys_on(client: Client, topic: str) -> set[bytes]:
    return set(client.presence.list(topic))


class WatchReader:
    """Reads a watch in a thread until it is closed or its node stops."""

    def __init__(self, watch):
        self.watch = watch
        self.first = watch.state
        self.diffs: list[PresenceDiff] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for diff in self.watch:
                self.diffs.append(diff)
        except errors.TandemKVError:
            pass

    def folded(self):
        listing = self.first
        for diff in list(self.diffs):
            listing = apply_diff(listing, diff)
        return listing

    def close(self) -> None:
        self.watch.close()
        self._thread.join(MARGIN_S)


def test_tracked_on_n1_is_listed_on_n2_and_n3_and_a_watch_gets_the_changes(clients):
    reader = WatchReader(clients["n3"].presence.watch("room:1"))
    try:
        assert reader.first == {}
        ann = clients["n1"].presence.track("room:1", "ann", {"status": "online"})
        bob = clients["n2"].presence.track("room:1", "bob")
        for name in NODES:
            wait_until(lambda: keys_on(clients[name], "room:1") == {b"ann", b"bob"}, SPREAD_TIMEOUT_S,
                       f"ann and bob listed on {name}")
        ann.update({"status": "away"})
        bob.untrack()
        expected = {b"ann": [({"status": "away"}, ann.ref)]}
        for name in NODES:
            wait_until(lambda: {k: [(m.meta, m.ref) for m in v]
                                for k, v in clients[name].presence.list("room:1").items()} == expected,
                       SPREAD_TIMEOUT_S, f"ann away and bob gone on {name}")
        # The watch's first state plus its diffs is the list, and it saw every change.
        wait_until(lambda: reader.folded() == clients["n3"].presence.list("room:1"), SPREAD_TIMEOUT_S,
                   "the watch's diffs folded equal n3's list")
        joined = [m.meta for d in reader.diffs for m in d.joins.get(b"ann", [])]
        left = [k for d in reader.diffs for k in d.leaves]
        assert joined == [{"status": "online"}, {"status": "away"}] and b"bob" in left
        assert not [d for d in reader.diffs if d.resync]
        ann.untrack()
        wait_until(lambda: not reader.folded(), SPREAD_TIMEOUT_S, "the watch sees ann leave")
    finally:
        reader.close()


def test_one_session_per_client_tracks_many_keys_and_bad_requests_get_their_status(clients):
    presence = clients["n2"].presence
    with presence.track("room:2", "a") as a, presence.track("room:2", "b"), presence.track("room:3", "a"):
        sessions = {m.ref.split(".")[2] for k in (b"a", b"b") for m in presence.list("room:2")[k]}
        assert len(sessions) == 1 and a.ref
        with pytest.raises(errors.FailedPrecondition):
            presence.track("room:2", "a")
        with pytest.raises(errors.InvalidArgument, match="PRESENCE_TOPIC_BYTES_MAX|at most"):
            presence.track("t" * (limits.PRESENCE_TOPIC_BYTES_MAX + 1), "k")
        with pytest.raises(errors.InvalidArgument, match="meta"):
            presence.track("room:2", "c", "x" * (limits.PRESENCE_META_BYTES_MAX + 1))
        with pytest.raises(errors.InvalidArgument, match="empty"):
            presence.list("")
    assert keys_on(clients["n2"], "room:2") == set()
    presence.close()  # ends the session; the next track opens another
    with presence.track("room:2", "again") as again:
        assert keys_on(clients["n2"], "room:2") == {b"again"} and again.ref.split(".")[2] not in sessions
        assert presence._renewer is not None and presence._renewer.is_alive()


def test_a_client_that_stops_renewing_leaves_every_node_within_its_ttl(cluster, clients):
    # Three times the shortest TTL: the client renews every third of it, and
    # a process starved of CPU could miss all three renewals of a 1 s TTL.
    ttl_ms = 3 * limits.PRESENCE_SESSION_TTL_MS_MIN
    with Client(cluster.endpoint("n1")) as crashing:
        presence = Presence(crashing, ttl_ms=ttl_ms)
        presence.track("room:ttl", "carol")
        for name in NODES:
            wait_until(lambda: keys_on(clients[name], "room:ttl") == {b"carol"}, SPREAD_TIMEOUT_S,
                       f"carol listed on {name}")
        presence._stop.set()  # the renewals stop, as if the client had crashed; the session is not closed
        bound_s = (ttl_ms + limits.PRESENCE_CLOCK_SKEW_MS_MAX) / 1000 + MARGIN_S
        for name in NODES:
            wait_until(lambda: not keys_on(clients[name], "room:ttl"), bound_s, f"carol gone from {name}")


def test_asyncio_client_tracks_and_watches(cluster, clients):
    async def scenario():
        async with AsyncClient(cluster.endpoint("n3")) as client:
            async with await client.presence.watch("room:async") as watch:
                assert watch.state == {}
                async with await client.presence.track("room:async", "dan", {"n": 1}) as dan:
                    diff = await asyncio.wait_for(watch.__anext__(), SPREAD_TIMEOUT_S)
                    assert [m.ref for m in diff.joins[b"dan"]] == [dan.ref]
                    await dan.update({"n": 2})
                    listing = await client.presence.list("room:async")
                    assert [m.meta for m in listing[b"dan"]] == [{"n": 2}]
    asyncio.run(scenario())
    wait_until(lambda: not keys_on(clients["n1"], "room:async"), SPREAD_TIMEOUT_S, "dan gone from n1")


def test_the_asyncio_clients_renewal_keeps_its_entry_past_the_ttl(cluster, clients):
    # Three times the shortest TTL: the client renews every third of it, and
    # a process starved of CPU could miss all three renewals of a 1 s TTL.
    ttl_ms = 3 * limits.PRESENCE_SESSION_TTL_MS_MIN

    async def scenario():
        async with AsyncClient(cluster.endpoint("n2")) as client:
            client.__dict__["presence"] = AsyncPresence(client, ttl_ms=ttl_ms)
            await client.presence.track("room:renewed", "ida")
            renewals_needed_by = time.monotonic() + 2 * ttl_ms / 1000
            seen = 0
            while time.monotonic() < renewals_needed_by:  # two TTLs: alive only if renewed
                listing = await client.presence.list("room:renewed")
                assert list(listing) == [b"ida"], "ida's session lapsed while the client renewed it"
                seen += 1
                await asyncio.sleep(POLL_S)
            assert seen > 1
        # The client closed its session when it closed: ida leaves.
        wait_until(lambda: not keys_on(clients["n1"], "room:renewed"), SPREAD_TIMEOUT_S, "ida gone from n1")
    asyncio.run(scenario())


def _tandemkv(cluster, node: str, *words: str) -> list[str]:
    return [sys.executable, "-m", "tandemkv.server.cli", "--endpoints", cluster.endpoint(node), *words]


def test_the_command_line_tracks_until_sigterm_lists_and_watches(cluster, clients):
    watcher = subprocess.Popen(_tandemkv(cluster, "n3", "--output", "json", "presence", "watch", "cli:room",
                                         "--count", "2"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tracker = None
    try:
        assert watcher.stderr.readline() == "tandemkv: watching cli:room on n3\n"  # open: track now
        tracker = subprocess.Popen(_tandemkv(cluster, "n1", "presence", "track", "cli:room", "gus", "--meta",
                                             '{"status": "online"}'),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert tracker.stdout.readline().startswith("tracked gus in cli:room (ref n1.")
        wait_until(lambda: keys_on(clients["n2"], "cli:room") == {b"gus"}, SPREAD_TIMEOUT_S, "gus listed on n2")
        listed = subprocess.run(_tandemkv(cluster, "n2", "presence", "list", "cli:room"), capture_output=True,
                                text=True, timeout=CLI_TIMEOUT_S)
        assert listed.returncode == 0 and listed.stdout.startswith("gus n1.") \
            and listed.stdout.rstrip().endswith('{"status": "online"}')
        tracker.send_signal(signal.SIGTERM)
        assert tracker.wait(CLI_TIMEOUT_S) == 0
        # Untracked at once on SIGTERM, not at the session's TTL: the watch sees the join and the leave.
        out, err = watcher.communicate(timeout=CLI_TIMEOUT_S)
    finally:
        for process in (watcher, tracker) if tracker is not None else (watcher,):
            process.kill()
            process.wait(CLI_TIMEOUT_S)
    assert watcher.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"state": {}}
    assert [list(line["joins"]) for line in lines[1:]] == [["gus"], []]
    assert [list(line["leaves"]) for line in lines[1:]] == [[], ["gus"]]
    assert lines[1]["joins"]["gus"][0]["meta"] == {"status": "online"}
    bad = subprocess.run(_tandemkv(cluster, "n1", "presence", "track", "cli:room", "k", "--meta", "{nope"),
                         capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert bad.returncode == 2 and bad.stderr.startswith("tandemkv: --meta is JSON")
    assert len(bad.stderr.splitlines()) == 1
    empty = subprocess.run(_tandemkv(cluster, "n1", "presence", "list", ""), capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_S)
    assert empty.returncode == 2 and "must not be empty" in empty.stderr


def test_a_killed_nodes_entries_leave_every_other_node_within_the_down_bound(cluster, clients):
    # erin's client knows only n3; hal's knows n1 as well, and moves there.
    with Client([cluster.endpoint("n3"), cluster.endpoint("n1")]) as moving:
        hal = Presence(moving, ttl_ms=3 * limits.PRESENCE_SESSION_TTL_MS_MIN)
        clients["n3"].presence.track("room:kill", "erin")
        first_ref = hal.track("room:kill", "hal").ref
        assert first_ref.startswith("n3.")
        for name in ("n1", "n2"):
            wait_until(lambda: keys_on(clients[name], "room:kill") == {b"erin", b"hal"}, SPREAD_TIMEOUT_S,
                       f"erin and hal listed on {name}")
        cluster.kill("n3")
        bound_s = (limits.PRESENCE_NODE_DOWN_MS + limits.PRESENCE_CLOCK_SKEW_MS_MAX) / 1000 + MARGIN_S
        for name in ("n1", "n2"):
            wait_until(lambda: b"erin" not in keys_on(clients[name], "room:kill"), bound_s,
                       f"erin gone from {name}")
        # hal's renewal found n3 gone, opened a session on n1 and tracked hal again there.
        for name in ("n1", "n2"):
            wait_until(lambda: [m.ref[:3] for m in clients[name].presence.list("room:kill").get(b"hal", [])]
                       == ["n1."], bound_s, f"hal tracked again through n1, listed on {name}")
        hal.close()


def test_tracking_works_with_two_of_three_nodes_down(cluster, clients):
    if cluster.processes["n3"].poll() is None:
        cluster.kill("n3")
    cluster.stop_node("n2")
    with Client(cluster.endpoint("n1")) as alone:
        with alone.presence.watch("room:alone") as watch:
            with alone.presence.track("room:alone", "fay", {"here": True}) as fay:
                assert alone.presence.list("room:alone") == {b"fay": [PresenceMeta(fay.ref, {"here": True})]}
                diff = next(watch)
                assert [m.ref for m in diff.joins[b"fay"]] == [fay.ref]
            diff = next(watch)
            assert [m.ref for m in diff.leaves[b"fay"]] == [fay.ref]
            assert watch.state == {}
