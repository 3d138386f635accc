"""Streams that survive a node failure: `Watcher` (changes to keys) and
`Observer` (an election's leader), blocking and asyncio.

Watches are multiplexed: every watch of one client shares one
Watch.Watches stream per node (`_watch_mux_core` decides, `_watch_mux` and
`_watch_mux_async` drive it), each with a bounded buffer of what its user
has not read. A stream that breaks (connection lost, node killed or
stopping) is opened again on another endpoint, with backoff, per the
client's `Retry` (`attempts_max` consecutive failures end its watches with
the last error), and each watch is created there from the revision after
the last one it buffered, so no event is lost or repeated. An observer has
a stream of its own, reopened the same way (the core's `Reconnects`
decides when and where); it repeats no leader it already reported.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, AsyncIterator, Iterator

import grpc

from tandemkv.client import _operations as ops
from tandemkv.client._coordination_ops import Registration
from tandemkv.client._results import BytesLike, KeyValue, to_bytes
from tandemkv.client._core import Reconnects
from tandemkv.client._watch_mux_core import Feed, WatchOverflow  # noqa: F401 (WatchOverflow: re-exported)
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import watch_pb2
EVENT_TYPES = {watch_pb2.Event.PUT: "put", watch_pb2.Event.DELETE: "delete",
               watch_pb2.Event.EXPIRE: "expire"}


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    """One change: `type` is "put", "delete" or "expire" (deleted with its
    lease). `revision` is the change's revision; `value` is empty for a
    deletion. `prev` is the key before the change, when asked for."""

    type: str
    key: bytes
    value: bytes
    revision: int
    create_revision: int
    version: int
    prev: KeyValue | None = None

    @classmethod
    def from_proto(cls, event: watch_pb2.Event) -> WatchEvent:
        kv = event.kv
        prev = KeyValue.from_proto(event.prev_kv) if event.HasField("prev_kv") else None
        return cls(EVENT_TYPES.get(event.type, "unknown"), kv.key, kv.value, kv.mod_revision,
                   kv.create_revision, kv.version, prev)


class _LeaderState:
    def __init__(self, election: bytes):
        self.election = election
        self.last: tuple | None = None

    def request(self) -> co.LeaderRequest:
        return co.LeaderRequest(election=self.election)

    def accept(self, response: co.LeaderResponse) -> list[Registration | None]:
        seen = (response.found, response.leader.token, response.leader.value)
        if seen == self.last:
            return []
        self.last = seen
        return [Registration.from_proto(response.leader) if response.found else None]


class _Stream:
    """A blocking stream over endpoints; see the module docstring."""

    service = ""
    method = ""

    def __init__(self, client: Any, state: Any):
        self.client = client
        self.state = state
        self._closed = threading.Event()
        self._call: Any = None
        self._lock = threading.Lock()
        # Streams opened again after a failure (resumes).
        self.reconnects = 0

    def close(self) -> None:
        """Ends the stream; iteration stops."""
        self._closed.set()
        with self._lock:
            call = self._call
        if call is not None:
            call.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Any]:
        reconnects = Reconnects(self.client._router, self.client.retry)
        try:
            while not self._closed.is_set():
                endpoint = reconnects.endpoint()
                try:
                    for response in self._open(endpoint):
                        reconnects.received()
                        yield from self.state.accept(response)
                    error = reconnects.ended(endpoint)
                except grpc.RpcError as rpc_error:
                    if self._closed.is_set():
                        return
                    error = reconnects.broke(endpoint, rpc_error)
                self._closed.wait(reconnects.failed(endpoint, error))
                self.reconnects += 1
        finally:
            self.close()

    def _open(self, endpoint: str):
        request = self._request()
        stub = self.client.stub(self.service, endpoint)
        call = getattr(stub, self.method)(request)
        with self._lock:
            self._call = call
        if self._closed.is_set():
            call.cancel()
        return call

    def _request(self):
        return self.state.request()


class Observer(_Stream):
    """An election's leader now and at every change; see `Election.observe`."""

    service, method = "Election", "Observe"

    def __init__(self, client: Any, election: bytes):
        super().__init__(client, _LeaderState(election))


class _AsyncStream:
    """`_Stream` for `AsyncClient`: an async iterator."""

    service = ""
    method = ""

    def __init__(self, client: Any, state: Any):
        self.client = client
        self.state = state
        self._closed = False
        self._call: Any = None
        self.reconnects = 0

    def close(self) -> None:
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items()

    async def _items(self) -> AsyncIterator[Any]:
        reconnects = Reconnects(self.client._router, self.client.retry)
        try:
            while not self._closed:
                endpoint = reconnects.endpoint()
                try:
                    async for response in await self._open(endpoint):
                        reconnects.received()
                        for item in self.state.accept(response):
                            yield item
                    error = reconnects.ended(endpoint)
                except grpc.RpcError as rpc_error:
                    if self._closed:
                        return
                    error = reconnects.broke(endpoint, rpc_error)
                await self.client.retry.async_sleep(reconnects.failed(endpoint, error))
                self.reconnects += 1
        finally:
            self.close()

    async def _open(self, endpoint: str):
        request = await self._request()
        stub = self.client.stub(self.service, endpoint)
        self._call = getattr(stub, self.method)(request)
        return self._call

    async def _request(self):
        return self.state.request()


class AsyncObserver(_AsyncStream):
    service, method = "Election", "Observe"

    def __init__(self, client: Any, election: bytes):
        super().__init__(client, _LeaderState(election))



class Watcher:
    """Changes to a key or a prefix, in revision order; see `Client.watch`.
    Its watch starts when it is made (events buffer until it is read)."""

    def __init__(self, client: Any, key: BytesLike, prefix: bool, start_revision: int, prev_kv: bool,
                 resync: bool = True):
        self.state = Feed(to_bytes(key, "key"), prefix, start_revision, prev_kv, resync)
        if start_revision == 0:  # "from now": fixed here, by a linearizable read
            self.state.start_at(client.run(_now_read(self.state)).revision + 1)
        self._streams = client._watch_streams()
        self._streams.add(self.state)

    @property
    def next_revision(self) -> int:
        """The first revision not delivered yet (where a resume starts)."""
        return self.state.next_revision

    @property
    def reconnects(self) -> int:
        """Times the watch was created again on a new stream after a failure."""
        return self.state.reconnects

    def request_progress(self) -> None:
        """Asks the node for the progress of this watch's stream now (as
        etcd's RequestProgress) instead of at its next interval; once it
        arrives, `next_revision` of this watch and of every other caught-up
        watch on the stream is past the node's revision at that moment."""
        self._streams.request_progress(self.state)

    @property
    def overflows(self) -> int:
        """Times its reader fell WATCH_CLIENT_BUFFER_EVENTS_MAX behind (resynced)."""
        return self.state.overflows

    def close(self) -> None:
        """Cancels the watch; iteration stops."""
        self._streams.remove(self.state)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[WatchEvent]:
        try:
            while (response := self._streams.next_response(self.state)) is not None:
                yield from [WatchEvent.from_proto(e) for e in response.events]
        finally:
            self.close()


class AsyncWatcher:
    """`Watcher` for `AsyncClient`: `async for event in client.watch(...)`.
    Its watch starts when iteration starts (with `start_revision=0`, "now"
    is fixed then)."""

    def __init__(self, client: Any, key: BytesLike, prefix: bool, start_revision: int, prev_kv: bool,
                 resync: bool = True):
        self.client = client
        self.state = Feed(to_bytes(key, "key"), prefix, start_revision, prev_kv, resync)
        self._streams: Any = None

    next_revision = Watcher.next_revision
    reconnects = Watcher.reconnects
    overflows = Watcher.overflows

    def request_progress(self) -> None:
        """See `Watcher.request_progress`; nothing before iteration starts."""
        if self._streams is not None:
            self._streams.request_progress(self.state)

    def close(self) -> None:
        if self._streams is None:
            self.state.finished = True
        else:
            self._streams.remove(self.state)

    async def __aenter__(self) -> AsyncWatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self._items()

    async def _items(self) -> AsyncIterator[WatchEvent]:
        try:
            if self._streams is None and not self.state.finished:
                if self.state.next_revision == 0:
                    self.state.start_at((await self.client.run(_now_read(self.state))).revision + 1)
                self._streams = self.client._watch_streams()
                self._streams.add(self.state)
            while self._streams is not None:
                response = await self._streams.next_response(self.state)
                if response is None:
                    return
                for event in response.events:
                    yield WatchEvent.from_proto(event)
        finally:
            self.close()


def _now_read(feed: Feed) -> ops.Operation:
    """A linearizable read whose revision fixes where `start_revision=0`
    (changes from now on) begins, so a resume is well defined."""
    return ops.range_(feed.key, None, 1, True, False)
