"""The running presence plane on one event loop: a watch gets the topic's
state and then its diffs; a reader too slow for its buffer gets the
topic's state again (resync) in place of what was dropped, never a silent
gap; a session's calls give the errors the API maps; frames that are not a
member's are refused and counted; and two planes served by gRPC servers in
this process, with every frame between them lost for a while (a
partition), agree again after the heal, leaving no entry untracked
meanwhile (no zombie)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from tandemkv import errors
from tandemkv.server.api.presence_servicers import PresenceServicer
from tandemkv.server.api.streams import StreamStops
from tandemkv.server.available.presence import Diff, apply_diff
from tandemkv.server.available.presence_plane import PresencePlane
from tandemkv.v1 import presence_pb2_grpc

SECRET = b"k" * 32
# Longest two planes on one loop may take to agree (a few heartbeats, on a loaded machine).
SETTLE_TIMEOUT_S = 20.0


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_watch_gets_the_state_then_the_diffs_that_fold_into_the_list():
    async def scenario():
        plane = PresencePlane("n1", {}, SECRET)
        session = plane.open_session(5_000)
        ref = plane.track(session, b"room", b"ann", b"1")
        plane.track(session, b"room", b"amy", b"1")
        assert [str(m.ref) for m in plane.list(b"room")[b"ann"]] == [ref]  # the ref a track returns is listed
        plane.untrack(session, b"room", b"amy")
        watch = plane.watch(b"room")
        assert set(watch.state) == {b"ann"}
        plane.track(session, b"room", b"bob", b"2")
        updated = plane.update(session, b"room", b"ann", b"3")
        plane.untrack(session, b"room", b"bob")
        plane.track(session, b"other", b"zed", b"")
        items = await watch.next_items(timeout_s=1)
        assert all(isinstance(item, Diff) and item.topic == b"room" for item in items)
        listing = watch.state
        for diff in items:
            listing = apply_diff(listing, diff)
        assert listing == plane.list(b"room") and [m.meta for m in listing[b"ann"]] == [b"3"]
        assert [str(m.ref) for m in listing[b"ann"]] == [updated]
        watch.close()
        assert await watch.next_items(timeout_s=1) == []
    run(scenario())


def test_a_slow_watch_gets_a_resync_in_place_of_the_diffs_it_lost():
    async def scenario():
        plane = PresencePlane("n1", {}, SECRET)
        session = plane.open_session(5_000)
        watch = plane.watch(b"room", diffs_max=3)
        for k in range(10):
            plane.track(session, b"room", b"k%d" % k, b"")
        items = await watch.next_items(timeout_s=1)
        assert items == [plane.list(b"room")] and len(items[0]) == 10 and watch.resyncs == 1
        plane.untrack(session, b"room", b"k0")
        items = await watch.next_items(timeout_s=1)
        assert len(items) == 1 and isinstance(items[0], Diff) and list(items[0].leaves) == [b"k0"]
    run(scenario())


def test_session_calls_refuse_what_the_api_maps_to_statuses():
    async def scenario():
        plane = PresencePlane("n1", {}, SECRET)
        with pytest.raises(errors.InvalidArgument, match="TTL"):
            plane.open_session(1)
        with pytest.raises(errors.NotFound, match="open a session"):
            plane.track(12345, b"room", b"ann", b"")
        session = plane.open_session(5_000)
        plane.track(session, b"room", b"ann", b"")
        with pytest.raises(errors.FailedPrecondition, match="update it"):
            plane.track(session, b"room", b"ann", b"")
        with pytest.raises(errors.InvalidArgument, match="empty"):
            plane.list(b"")
        plane.close_session(session)
        plane.close_session(session)  # idempotent
        assert plane.list(b"room") == {}
    run(scenario())


def test_frames_not_from_a_member_are_refused_and_counted():
    async def scenario():
        plane = PresencePlane("n1", {"n2": "127.0.0.1:1"}, SECRET)
        other = PresencePlane("n2", {"n1": "127.0.0.1:1"}, b"another cluster's key" + b"\0" * 11)
        frames = [frame for _, frame in other.engine.tick(0).frames]
        assert frames and plane.receive(frames + [b"", b"\x01junk"]) == 0
        assert plane.status()["engine"]["rejected_bad_mac"] == len(frames)
        member = PresencePlane("n2", {"n1": "127.0.0.1:1"}, SECRET)
        frames = [frame for _, frame in member.engine.tick(member._clock()).frames]
        assert plane.receive(frames) == len(frames)
    run(scenario())


async def _two_planes():
    """Planes a and b, each served by a gRPC server of its own on 127.0.0.1."""
    servers, addresses = {}, {}
    for name in ("a", "b"):
        servers[name] = grpc.aio.server()
        addresses[name] = f"127.0.0.1:{servers[name].add_insecure_port('127.0.0.1:0')}"
    planes = {name: PresencePlane(name, {other: addresses[other] for other in addresses if other != name}, SECRET)
              for name in addresses}
    for name, server in servers.items():
        presence_pb2_grpc.add_PresenceServicer_to_server(PresenceServicer(planes[name], StreamStops()), server)
        await server.start()
        planes[name].start()
    return servers, planes


# Frames of the partitioned side that must be lost before the heal (so
# several ticks' deltas and heartbeats are gone, not only the first).
LOST_FRAMES_MIN = 6


async def _until(condition, what: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {SETTLE_TIMEOUT_S} s"
        await asyncio.sleep(0.02)


def test_after_a_partition_heals_an_entry_untracked_meanwhile_is_gone_from_the_other_side():
    async def scenario():
        servers, planes = await _two_planes()
        a, b = planes["a"], planes["b"]
        try:
            session = a.open_session(60_000)
            a.track(session, b"room", b"ann", b"1")
            a.track(session, b"room", b"bob", b"1")
            await _until(lambda: set(b.list(b"room")) == {b"ann", b"bob"}, "b lists ann and bob")
            put = {name: plane.links[peer].put for name, plane, peer in (("a", a, "b"), ("b", b, "a"))}
            lost: list[bytes] = []
            a.links["b"].put = b.links["a"].put = lost.append  # every frame between them is lost
            a.untrack(session, b"room", b"bob")
            a.update(session, b"room", b"ann", b"2")
            sent_before = len(lost)
            await _until(lambda: len(lost) >= sent_before + LOST_FRAMES_MIN, "frames lost in the partition")
            assert set(b.list(b"room")) == {b"ann", b"bob"}  # b cannot know yet
            a.links["b"].put, b.links["a"].put = put["a"], put["b"]
            await _until(lambda: b.list(b"room") == a.list(b"room"), "b's view equals a's after the heal")
            assert [m.meta for m in b.list(b"room")[b"ann"]] == [b"2"] and b"bob" not in b.list(b"room")
            assert a.status()["peers"]["b"]["frames_sent"] > 0
        finally:
            for plane in planes.values():
                await plane.stop()
            for server in servers.values():
                await server.stop(None)
    run(scenario())
