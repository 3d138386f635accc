"""A node that stops cleanly says goodbye: its presence entries leave every
peer at once instead of after PRESENCE_NODE_DOWN_MS.

Goal: a goodbye frame goes through its bytes and is told from a heartbeat;
a replica that gets one drops the owner's copy whole and refuses its later
frames (a delayed heartbeat or transfer cannot bring the entries back),
for as long as a frame sent before the goodbye could still be fresh; a
later incarnation of the same node is not touched by the goodbye, and an
earlier incarnation's goodbye arriving late does not touch a later one;
an engine that said goodbye sends nothing more and refuses new sessions
and tracks with Unavailable; a replica that misses the goodbye still drops
the owner by the down bound. Running: a plane that stops sends its goodbye
to a peer served by gRPC, which lists nothing of it right after; a
goodbye whose call failed goes once more; and a goodbye to a peer that
never answers is given up (the stop waits
PRESENCE_GOODBYE_WAIT_MS for it, not the call's whole timeout).

Method: the pure modules with explicit times (ms); two planes behind gRPC
servers in this process for the running part, every wait a polled
condition under a deadline.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from tandemkv import limits
from tandemkv.errors import Unavailable
from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.presence import OwnerId, PresenceEngine, Replica, wire
from tandemkv.server.api.presence_servicers import PresenceServicer
from tandemkv.server.api.streams import StreamStops
from tandemkv.server.available.presence_link import PeerLink
from tandemkv.server.available.presence_plane import PresencePlane
from tandemkv.v1 import presence_pb2_grpc

A1 = OwnerId("a", 1)
A2 = OwnerId("a", 2)
B = OwnerId("b", 1)
SECRET = b"goodbye test secret"
TTL_MS = 60_000
DOWN_MS = limits.PRESENCE_NODE_DOWN_MS
# Longest two planes on one loop may take to agree (a few heartbeats, on a loaded machine).
SETTLE_TIMEOUT_S = 20.0
# A stop that takes longer than this is stuck (it waits PRESENCE_GOODBYE_WAIT_MS for its goodbye).
STOP_HANG_GUARD_S = 30.0


def exchange(engines: dict[str, PresenceEngine], frames: list[tuple[str, bytes]], now_ms: int) -> None:
    """Delivers `frames`, and what they provoke, until nothing is left."""
    queue = list(frames)
    for _ in range(10_000):
        if not queue:
            return
        peer, data = queue.pop(0)
        if peer in engines:
            queue += engines[peer].receive(data, now_ms).frames
    raise AssertionError("frames never stopped")


def pair(owner: OwnerId = A1, now_ms: int = 0) -> tuple[PresenceEngine, PresenceEngine]:
    """Engine `owner` (of node a) tracking ann in room, and engine b holding a copy of it."""
    a = PresenceEngine(owner, SECRET, now_ms, {"b"})
    b = PresenceEngine(B, SECRET, now_ms, {"a"})
    a.open_session(1, TTL_MS, now_ms)
    a.track(1, b"room", b"ann", b"", now_ms)
    exchange({"a": a, "b": b}, a.tick(now_ms).frames, now_ms)
    assert list(b.list(b"room")) == [b"ann"]
    return a, b


# -- the wire ---------------------------------------------------------------

def test_a_goodbye_frame_goes_through_its_bytes_and_a_heartbeat_is_no_goodbye():
    goodbye = wire.Frame(A1, "b", 5, 3, goodbye=True)
    assert wire.open_frame(wire.seal(goodbye, SECRET), SECRET, "b") == goodbye
    assert not wire.open_frame(wire.seal(wire.Frame(A1, "b", 5, 3), SECRET), SECRET, "b").goodbye


def test_a_goodbye_that_asks_or_carries_something_is_malformed():
    body = canonical.encode(["a", 1, "b", 5, 3, [1, 2], None, True])
    version = bytes([wire.PRESENCE_WIRE_VERSION])
    data = version + wire._mac(SECRET, version, body) + body
    with pytest.raises(wire.Rejected, match="malformed"):
        wire.open_frame(data, SECRET, "b")


# -- the replica ------------------------------------------------------------

def test_a_goodbye_drops_the_owner_at_once_and_its_later_frames_are_refused():
    a, b = pair()
    late_heartbeat = a.tick(limits.PRESENCE_HEARTBEAT_MS).frames   # sent before the goodbye, delivered after
    goodbye = a.goodbye(limits.PRESENCE_HEARTBEAT_MS + 1)
    assert [peer for peer, _ in goodbye.frames] == ["b"]
    out = b.receive(goodbye.frames[0][1], 2_000)
    assert [list(diff.leaves) for diff in out.diffs] == [[b"ann"]]
    assert b.list(b"room") == {} and b.replica.owners() == [B]
    exchange({"b": b}, late_heartbeat, 2_001)
    assert b.replica.owners() == [B] and b.replica.counters["refused_departed"] == 1
    assert b.replica.apply(a.log.full_state(), 2_002)[0].value == "refused"


def test_a_goodbye_is_remembered_until_frames_sent_before_it_are_too_old_anyway():
    replica = Replica(B, 0)
    assert replica.heard(A1, 0, 0)[0]
    assert replica.farewell(A1, 100, 100)[0]
    assert replica.heard(A1, 100, DOWN_MS + 99) == (False, [])       # refused: it said goodbye
    replica.advance(DOWN_MS + 100)
    assert replica.status()["refused_departed"] == 1
    assert replica.heard(A1, 100, DOWN_MS + 100) == (False, [])      # refused: too old, by its own age
    assert replica.status()["refused_lapsed"] == 1


def test_a_later_incarnation_is_not_confused_by_an_earlier_ones_goodbye():
    a1, b = pair(A1)
    goodbye = a1.goodbye(10).frames
    exchange({"b": b}, goodbye, 10)
    a2 = PresenceEngine(A2, SECRET, 20, {"b"})            # the node started again
    a2.open_session(7, TTL_MS, 20)
    a2.track(7, b"room", b"bob", b"", 20)
    exchange({"a": a2, "b": b}, a2.tick(20).frames, 20)
    assert list(b.list(b"room")) == [b"bob"]
    exchange({"b": b}, goodbye, 30)                        # the old goodbye again, duplicated and late
    assert list(b.list(b"room")) == [b"bob"] and b.replica.counters["refused_incarnation"] == 1
    # A goodbye of a later incarnation than any heard of ends the earlier ones too.
    a3 = PresenceEngine(OwnerId("a", 3), SECRET, 40, {"b"})
    exchange({"b": b}, a3.goodbye(40).frames, 40)
    assert b.list(b"room") == {} and b.replica.owners() == [B]


def test_a_replica_that_missed_the_goodbye_drops_the_owner_by_the_down_bound():
    a, b = pair()
    a.goodbye(100)                                          # every goodbye frame is lost
    assert a.tick(5_000).frames == []                       # and a sends nothing more
    assert list(b.list(b"room")) == [b"ann"]
    b.tick(DOWN_MS)
    assert b.list(b"room") == {}


def test_an_engine_that_said_goodbye_refuses_new_work_and_answers_no_want():
    a, b = pair()
    a.goodbye(100)
    with pytest.raises(Unavailable, match="another node"):
        a.open_session(2, TTL_MS, 200)
    with pytest.raises(Unavailable, match="another node"):
        a.track(1, b"room", b"cid", b"", 200)
    a.untrack(1, b"room", b"ann", 200)                      # leaving still works, locally
    want = wire.seal(wire.Frame(B, "a", 200, 0, want=wire.Want(A1.incarnation, 0)), SECRET)
    assert a.receive(want, 200).frames == [] and a.goodbye(300).frames == []
    assert a.status()["departed"] is True


# -- running ----------------------------------------------------------------

async def _served_planes(names: list[str], unreachable: dict[str, str] | None = None):
    """A plane per name, each behind a gRPC server of its own on 127.0.0.1;
    `unreachable` adds peers at addresses nobody serves."""
    servers, addresses = {}, {}
    for name in names:
        servers[name] = grpc.aio.server()
        addresses[name] = f"127.0.0.1:{servers[name].add_insecure_port('127.0.0.1:0')}"
    addresses.update(unreachable or {})
    planes = {name: PresencePlane(name, {peer: address for peer, address in addresses.items() if peer != name},
                                  SECRET) for name in names}
    for name, server in servers.items():
        presence_pb2_grpc.add_PresenceServicer_to_server(PresenceServicer(planes[name], StreamStops()), server)
        await server.start()
        planes[name].start()
    return servers, planes


async def _until(condition, what: str, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.02)


def test_a_plane_that_stops_takes_its_entries_off_its_peer_at_once():
    async def scenario():
        servers, planes = await _served_planes(["a", "b"])
        a, b = planes["a"], planes["b"]
        try:
            session = a.open_session(60_000)
            a.track(session, b"room", b"ann", b"1")
            await _until(lambda: set(b.list(b"room")) == {b"ann"}, "b lists ann")
            await a.stop()
            assert a.goodbye_delivered == ["b"]
            # Delivered means b took it: nothing of a is listed, well before the down bound.
            assert b.list(b"room") == {} and b.status()["engine"]["goodbyes_in"] == 1
        finally:
            for plane in planes.values():
                await plane.stop()
            for server in servers.values():
                await server.stop(None)
    asyncio.run(scenario())


class FailsTheFirstGoodbye(PresenceServicer):
    """A peer whose first call carrying a goodbye fails (a connection reset), as a lost datagram would."""

    failed = 0

    async def Exchange(self, request, context):
        if not self.failed and any(wire.open_frame(f, SECRET, "b").goodbye for f in request.frames):
            self.failed += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
        return await super().Exchange(request, context)


def test_a_goodbye_whose_call_failed_is_sent_once_more():
    async def scenario():
        servers, planes = await _served_planes(["a", "b"])
        a, b = planes["a"], planes["b"]
        flaky = grpc.aio.server()
        port = flaky.add_insecure_port("127.0.0.1:0")
        servicer = FailsTheFirstGoodbye(b, StreamStops())
        presence_pb2_grpc.add_PresenceServicer_to_server(servicer, flaky)
        await flaky.start()
        await a.links["b"].stop()
        a.links["b"] = PeerLink("b", f"127.0.0.1:{port}")   # a reaches b through the flaky server
        a.links["b"].start()
        try:
            session = a.open_session(60_000)
            a.track(session, b"room", b"ann", b"")
            await _until(lambda: set(b.list(b"room")) == {b"ann"}, "b lists ann")
            await a.stop()
            assert servicer.failed == 1 and a.goodbye_delivered == ["b"] and b.list(b"room") == {}
        finally:
            for plane in planes.values():
                await plane.stop()
            for server in (*servers.values(), flaky):
                await server.stop(None)
    asyncio.run(scenario())


class NeverAnswers(presence_pb2_grpc.PresenceServicer):
    """A peer whose Exchange calls never end (a node stuck, not down)."""

    async def Exchange(self, request, context):
        await asyncio.Event().wait()


def test_a_goodbye_to_a_peer_that_never_answers_is_given_up_and_the_stop_ends(monkeypatch):
    # Shorter than the call's own timeout (PRESENCE_EXCHANGE_TIMEOUT_MS), so it is the wait that gives up.
    monkeypatch.setattr(limits, "PRESENCE_GOODBYE_WAIT_MS", limits.PRESENCE_EXCHANGE_TIMEOUT_MS // 4)

    async def scenario():
        stuck = grpc.aio.server()
        port = stuck.add_insecure_port("127.0.0.1:0")
        presence_pb2_grpc.add_PresenceServicer_to_server(NeverAnswers(), stuck)
        await stuck.start()
        servers, planes = await _served_planes(["a"], unreachable={"z": f"127.0.0.1:{port}"})
        try:
            session = planes["a"].open_session(60_000)
            planes["a"].track(session, b"room", b"ann", b"")
            await _until(lambda: planes["a"].links["z"].status()["queued"] == 0, "a's first frames in flight to z")
            await asyncio.wait_for(planes["a"].stop(), STOP_HANG_GUARD_S)
            link = planes["a"].links["z"]
            assert planes["a"].goodbye_delivered == [] and not link.last_frame_sent
            assert link.counters["frames_sent"] == 0, "z answered nothing, so nothing counts as sent"
        finally:
            for server in (*servers.values(), stuck):
                await server.stop(None)
    asyncio.run(scenario())
