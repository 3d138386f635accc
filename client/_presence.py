"""Presence in the SDK: `client.presence` (`Presence`), the `Tracked`
handles it returns and `PresenceWatch`; asyncio twins in `_presence_async`,
what both share in `_presence_core`.

Semantics (the available plane, no Raft; docs/presence.md): a client
tracks through one session, a lease opened on one node (the first that
answers) with a TTL (`ttl_ms`, default PRESENCE_SESSION_TTL_MS = 15 s).
One background thread per client renews it every third of the TTL,
however many entries it tracks. `list(topic)` on any node gives key ->
one `PresenceMeta` per tracking session (Phoenix.Presence's shape); a
`watch` gives the topic's state, then `PresenceDiff`s (joins, leaves) as
they happen. Tracking works without a Raft quorum and on both sides of a
partition.

Bounds: an entry shows on every node within about a heartbeat
(PRESENCE_HEARTBEAT_MS) of its track; a client that stops renewing (it
crashed) leaves every node at its last renewal + TTL (+ the nodes' clock
skew); entries tracked through a node that dies leave every node within
PRESENCE_NODE_DOWN_MS (+ PRESENCE_CLOCK_SKEW_MS_MAX) of its last frame.

Failure modes: if the session's node goes away or forgets the session
(it restarted), the SDK opens a session on the next node and tracks every
entry again (watchers see them leave and join again, with new refs). A
malformed topic, key or meta raises `InvalidArgument` naming the limit; a
key this client already tracks in a topic raises `FailedPrecondition`
(update it through its handle); a full node `ResourceExhausted`.
A watch whose node goes away raises `Unavailable`: open another.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Iterator

import grpc

from tandemkv import errors
from tandemkv.client import _presence_core as core
from tandemkv.client._presence_core import Listing, PresenceDiff, SessionBook
from tandemkv.client._results import BytesLike
from tandemkv.v1 import presence_pb2

if TYPE_CHECKING:
    from tandemkv.client._sync import Client


class Tracked:
    """One entry this client tracks: `update(meta)`, `untrack()`, or use it
    as a context manager (untracked on exit). `ref` names its last write."""

    def __init__(self, presence: Presence, topic: bytes, key: bytes, ref: str):
        self.presence, self.topic, self.key, self.ref = presence, topic, key, ref

    def update(self, meta: Any) -> None:
        """Replaces the metadata (watchers see the old meta leave and the new one join)."""
        self.ref = self.presence._update(self.topic, self.key, meta)

    def untrack(self) -> None:
        """Removes the entry everywhere; idempotent."""
        self.presence._untrack(self.topic, self.key)

    def __enter__(self) -> Tracked:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.untrack()


class PresenceWatch:
    """A topic's presence on one node: `state` (key -> metas, kept current),
    and iteration gives each `PresenceDiff` in order. A `resync` diff
    stands where the node dropped diffs this watch read too slowly. Close
    it (or use `with`) when done."""

    def __init__(self, client: Client, topic: BytesLike):
        self.topic = core.names(topic, b"-")[0]
        self.closed = False
        failure: errors.TandemKVError | None = None
        for endpoint in client._local.order():
            call = client.stub("Presence", endpoint).Watch(presence_pb2.PresenceWatchRequest(topic=self.topic))
            try:
                first = next(call)
            except grpc.RpcError as error:
                failure = core.rpc_error(error)
                if isinstance(failure, (errors.Unavailable, errors.OutcomeUnknown)):
                    continue
                raise failure from None
            self._call, self.endpoint, self.node = call, endpoint, first.header.node
            self.state: Listing = core.listing_of(first.state.keys)
            client._local.answered(endpoint)
            return
        assert failure is not None
        raise failure

    def __iter__(self) -> Iterator[PresenceDiff]:
        return self

    def __next__(self) -> PresenceDiff:
        try:
            response = next(self._call)
        except StopIteration:
            if self.closed:
                raise
            raise errors.Unavailable(f"{self.endpoint} ended the watch (stopping?): watch again") from None
        except grpc.RpcError as error:
            if self.closed:
                raise StopIteration from None
            raise core.rpc_error(error) from None
        self.state, diff = core.watch_event(self.state, response, self.topic)
        return diff

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._call.cancel()

    def __enter__(self) -> PresenceWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Presence:
    """`client.presence`: track who is here, list and watch (see the module
    docs for the bounds and failure modes).

    Example::

        with Client() as client:
            with client.presence.track("room:1", "ann", {"status": "online"}) as ann:
                ann.update({"status": "away"})
                print(client.presence.list("room:1"))   # {b"ann": [PresenceMeta(ref, {...})]}
    """

    def __init__(self, client: Client, ttl_ms: int = 0):
        self.client = client
        self._book = SessionBook(ttl_ms)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def track(self, topic: BytesLike, key: BytesLike, meta: Any = None) -> Tracked:
        """Tracks `key` in `topic` with `meta` (JSON-able) for as long as
        this client lives (or until untracked); returns its handle."""
        topic_bytes, key_bytes = core.names(topic, key)
        encoded = core.encode_meta(meta)
        with self._lock:
            self._book.already(topic_bytes, key_bytes)
            response = self._with_session(lambda stub, book: stub.Track(
                book.track_request(topic_bytes, key_bytes, encoded), timeout=core.CALL_TIMEOUT_S))
            self._book.tracked[(topic_bytes, key_bytes)] = encoded
            self._start_renewer()
        return Tracked(self, topic_bytes, key_bytes, response.ref)

    def list(self, topic: BytesLike) -> Listing:
        """key -> one `PresenceMeta` per tracking session, as the first node
        that answers sees it."""
        return self.client.run(core.list_operation(topic))

    def watch(self, topic: BytesLike) -> PresenceWatch:
        """The topic's state now (`watch.state`), then its diffs as you
        iterate. Example::

            with client.presence.watch("room:1") as watch:
                print(watch.state)
                for diff in watch:
                    print("joined", diff.joins, "left", diff.leaves)
        """
        return PresenceWatch(self.client, topic)

    def close(self) -> None:
        """Ends the session (every entry of this client leaves at once) and
        its renewal thread. The client calls it when it closes."""
        self._stop.set()
        with self._lock:
            endpoint, session = self._book.lost()
            self._book.tracked.clear()
        if session:
            self._close_quietly(endpoint, session)
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(core.CALL_TIMEOUT_S)

    # -- inside -------------------------------------------------------------

    def _update(self, topic: bytes, key: bytes, meta: Any) -> str:
        encoded = core.encode_meta(meta)
        with self._lock:
            if (topic, key) not in self._book.tracked:
                raise errors.NotFound(f"key {key!r} in topic {topic!r} is not tracked (untracked?): track it")
            response = self._with_session(lambda stub, book: stub.Update(
                book.track_request(topic, key, encoded), timeout=core.CALL_TIMEOUT_S))
            self._book.tracked[(topic, key)] = encoded
            return response.ref

    def _untrack(self, topic: bytes, key: bytes) -> None:
        with self._lock:
            if self._book.tracked.pop((topic, key), None) is None or not self._book.session:
                return
            self._with_session(lambda stub, book: stub.Untrack(book.track_request(topic, key),
                                                                timeout=core.CALL_TIMEOUT_S))

    def _with_session(self, call: Any) -> Any:
        """`call(stub, book)` in the session, opened (again) first if need
        be; once more on a new session if this one was lost."""
        for attempt in (1, 2):
            self._open_if_needed()
            try:
                return call(self.client.stub("Presence", self._book.endpoint), self._book)
            except grpc.RpcError as error:
                failure = core.rpc_error(error)
                if attempt == 2 or not isinstance(failure, core.SESSION_LOST):
                    raise failure from None
                self._lose()
        raise AssertionError("unreachable")

    def _open_if_needed(self) -> None:
        if self._book.session:
            return
        failure: errors.TandemKVError | None = None
        for endpoint in self._book.order(self.client._local.order(), self._failed):
            stub = self.client.stub("Presence", endpoint)
            try:
                self._book.opened(endpoint, stub.Open(self._book.open_request(), timeout=core.CALL_TIMEOUT_S))
                for (topic, key), meta in list(self._book.tracked.items()):
                    stub.Track(self._book.track_request(topic, key, meta), timeout=core.CALL_TIMEOUT_S)
                return
            except grpc.RpcError as error:
                failure = core.rpc_error(error)
                self._lose()
                if not isinstance(failure, core.SESSION_LOST):
                    raise failure from None
        assert failure is not None
        raise failure

    _failed: str | None = None

    def _lose(self) -> None:
        endpoint, session = self._book.lost()
        self._failed = endpoint
        if session:
            self._close_quietly(endpoint, session)

    def _close_quietly(self, endpoint: str | None, session: int) -> None:
        """Closes a session given up, if its node still answers (else its TTL ends it)."""
        try:
            self.client.stub("Presence", endpoint).Close(presence_pb2.PresenceSessionRequest(session=session),
                                                         timeout=core.RETRY_RENEWAL_S)
        except grpc.RpcError:
            pass

    def _start_renewer(self) -> None:
        if self._renewer is None or not self._renewer.is_alive():
            self._stop = threading.Event()  # each renewal thread has its own (a closed one's stays set)
            self._renewer = threading.Thread(target=self._renew, args=(self._stop,),
                                             name="tandemkv-presence-renewal", daemon=True)
            self._renewer.start()

    def _renew(self, stop: threading.Event) -> None:
        wait_s = self._book.renew_every_s
        while not stop.wait(wait_s):
            with self._lock:
                if not self._book.tracked:
                    self._renewer = None
                    return  # nothing to keep alive; the next track starts another
                try:
                    self._with_session(lambda stub, book: stub.KeepAlive(book.session_request(),
                                                                         timeout=core.CALL_TIMEOUT_S))
                    wait_s = self._book.renew_every_s
                except errors.TandemKVError:
                    wait_s = core.RETRY_RENEWAL_S
