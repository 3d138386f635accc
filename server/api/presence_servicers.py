"""The `Presence` servicer: sessions, track/update/untrack, list and watch on
the node's `PresencePlane` (server/available/presence_plane.py), and the
frames peers exchange (`Exchange`).

Translation only: the plane decides every answer; this file turns requests
into its calls, its listings and diffs into responses, and errors into
statuses (the edge's table: a malformed topic, key, meta, TTL or session
is INVALID_ARGUMENT naming the limit; a session not open here NOT_FOUND;
tracking a key twice FAILED_PRECONDITION; a full node RESOURCE_EXHAUSTED).
Every call runs on the server's event loop, the plane's loop: no call
holds a thread.

`Watch` is a server stream (it counts against STREAMS_OPEN_MAX): first the
topic's state, then its diffs as they happen. Diffs wait for a slow reader
in a bounded buffer (PRESENCE_WATCH_DIFFS_MAX); past it they are dropped
and the reader gets the topic's state again, marked `resync`, in their
place: a gap is never silent. The stream lasts until the client cancels it
or the server stops. A node built without a plane (a test's fake node)
answers UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from tandemkv import errors, limits
from tandemkv.server.api.edge import abort
from tandemkv.server.api.streams import StreamStop, StreamStops
from tandemkv.server.available.presence import Diff, Listing, Meta, check_ttl_ms
from tandemkv.server.available.presence_plane import PresencePlane, PresenceWatch
from tandemkv.v1 import kv_pb2, presence_pb2, presence_pb2_grpc


def keys_to_proto(keys: dict[bytes, list[Meta]]) -> list[presence_pb2.PresenceKey]:
    return [presence_pb2.PresenceKey(key=key, metas=[presence_pb2.PresenceMeta(ref=str(m.ref), meta=m.meta)
                                                    for m in metas])
            for key, metas in sorted(keys.items())]


def diff_to_proto(diff: Diff) -> presence_pb2.PresenceDiff:
    return presence_pb2.PresenceDiff(topic=diff.topic, joins=keys_to_proto(diff.joins),
                                     leaves=keys_to_proto(diff.leaves))


def _session_of(value: int) -> int:
    """Proto uint64 session ids past 2**63 - 1 are no session this node opened."""
    if not 0 < value < 2**63:
        raise errors.InvalidArgument(f"a presence session id is a number from 1 to 2**63 - 1, not {value}: "
                                     "use the one Open returned")
    return value


class PresenceServicer(presence_pb2_grpc.PresenceServicer):
    def __init__(self, plane: PresencePlane | None, stops: StreamStops):
        self._plane = plane
        self._stops = stops

    def _require_plane(self) -> PresencePlane:
        if self._plane is None:
            raise errors.Unavailable("presence is not running on this node; use another node")
        return self._plane

    def _header(self) -> kv_pb2.ResponseHeader:
        return kv_pb2.ResponseHeader(node=self._require_plane().node)

    async def Open(self, request, context):
        try:
            ttl_ms = check_ttl_ms(request.ttl_ms or limits.PRESENCE_SESSION_TTL_MS)
            session = self._require_plane().open_session(ttl_ms)
            return presence_pb2.PresenceOpenResponse(header=self._header(), session=session, ttl_ms=ttl_ms)
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            await abort(context, error)

    async def KeepAlive(self, request, context):
        try:
            self._require_plane().keepalive(_session_of(request.session))
            return presence_pb2.PresenceSessionResponse(header=self._header())
        except Exception as error:  # noqa: BLE001
            await abort(context, error)

    async def Close(self, request, context):
        try:
            self._require_plane().close_session(_session_of(request.session))
            return presence_pb2.PresenceSessionResponse(header=self._header())
        except Exception as error:  # noqa: BLE001
            await abort(context, error)

    async def Track(self, request, context):
        try:
            ref = self._require_plane().track(_session_of(request.session), request.topic, request.key,
                                              request.meta)
            return presence_pb2.PresenceTrackResponse(header=self._header(), ref=ref)
        except Exception as error:  # noqa: BLE001
            await abort(context, error)

    async def Update(self, request, context):
        try:
            ref = self._require_plane().update(_session_of(request.session), request.topic, request.key,
                                               request.meta)
            return presence_pb2.PresenceTrackResponse(header=self._header(), ref=ref)
        except Exception as error:  # noqa: BLE001
            await abort(context, error)

    async def Untrack(self, request, context):
        try:
            self._require_plane().untrack(_session_of(request.session), request.topic, request.key)
            return presence_pb2.PresenceTrackResponse(header=self._header())
        except Exception as error:  # noqa: BLE001
            await abort(context, error)

    async def List(self, request, context):
        try:
            listing = self._require_plane().list(request.topic)
            return presence_pb2.PresenceListResponse(header=self._header(), keys=keys_to_proto(listing))
        except Exception as error:  # noqa: BLE001
            await abort(context, error)

    async def Exchange(self, request, context):
        try:
            accepted = self._require_plane().receive(request.frames)
            return presence_pb2.PresenceExchangeResponse(accepted=accepted)
        except Exception as error:  # noqa: BLE001
            await abort(context, error)

    async def Watch(self, request, context):
        async for response in self._stops.serve(context, None, lambda stop: self._watch(request, stop)):
            yield response

    async def _watch(self, request: presence_pb2.PresenceWatchRequest, stop: StreamStop) -> AsyncIterator:
        plane = self._require_plane()
        watch = plane.watch(request.topic)
        loop = asyncio.get_running_loop()
        stop.add_callback(lambda: _wake_threadsafe(loop, watch))
        header = self._header()
        try:
            yield presence_pb2.PresenceWatchResponse(header=header, state=presence_pb2.PresenceState(
                keys=keys_to_proto(watch.state)))
            while not (stop.is_set() or watch.closed):
                for item in await watch.next_items():
                    yield _item_to_proto(item)
        finally:
            watch.close()


def _item_to_proto(item: Diff | Listing) -> presence_pb2.PresenceWatchResponse:
    if isinstance(item, Diff):
        return presence_pb2.PresenceWatchResponse(diff=diff_to_proto(item))
    return presence_pb2.PresenceWatchResponse(state=presence_pb2.PresenceState(keys=keys_to_proto(item),
                                                                               resync=True))


def _wake_threadsafe(loop: asyncio.AbstractEventLoop, watch: PresenceWatch) -> None:
    """Wakes a watch's reader from any thread (a server stopping)."""
    try:
        loop.call_soon_threadsafe(watch.wake)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass
