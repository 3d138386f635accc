"""The blocking driver of the watch multiplexer (`_watch_mux_core`): a
reader thread per Watch.Watches stream, one lock around the core.

The reader thread opens its stream's call, hands every response to the
core under the lock (routing a response only appends to a buffer and
notifies: the reader never waits for a watch's user), and when the call
breaks waits as the core says and opens it again. Requests (creates and
cancels) go through a queue that gRPC's own request thread drains. A
watch's user waits on a condition of the same lock.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import grpc

from tandemkv.client import _watch_mux_core as mux_core
from tandemkv.v1 import watch_pb2

_END = object()


class _Line:
    """The driver's side of one stream: its current call and request queue."""

    def __init__(self) -> None:
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.call: Any = None

    def renew(self) -> None:
        """A new request queue for the next call; the old call's request
        thread is let go."""
        self.requests.put(_END)
        self.requests = queue.SimpleQueue()

    def close(self) -> None:
        self.requests.put(_END)
        if self.call is not None:
            self.call.cancel()


class WatchStreams:
    """Every watch of one `Client`, multiplexed; see the module docstring."""

    def __init__(self, client: Any):
        self._client = client
        self._lock = threading.Lock()
        self._mux = mux_core.WatchMux(client._router, client.retry)
        self._closing = threading.Event()

    @property
    def streams_open(self) -> int:
        """Watches streams this client holds now."""
        with self._lock:
            return len(self._mux.streams)

    def add(self, feed: mux_core.Feed) -> None:
        feed.handle = threading.Condition(self._lock)
        with self._lock:
            self._do(self._mux.add(feed))

    def remove(self, feed: mux_core.Feed) -> None:
        with self._lock:
            if not feed.finished:
                self._do(self._mux.remove(feed))

    def request_progress(self, feed: mux_core.Feed) -> None:
        with self._lock:
            self._do(self._mux.request_progress(feed))

    def next_response(self, feed: mux_core.Feed) -> watch_pb2.WatchResponse | None:
        """The feed's next response with events, waiting for one; None once
        the feed is finished. Raises the feed's error (`Compacted`,
        `WatchOverflow`, the stream's last error) after its buffered events."""
        with self._lock:
            while True:
                response, actions = self._mux.take(feed)
                self._do(actions)
                if response is not None:
                    if response.events:
                        return response
                    continue  # progress: next_revision moved; nothing to yield
                if feed.finished:
                    return None
                feed.handle.wait()

    def close(self) -> None:
        """Ends every stream; every watch's iteration stops."""
        self._closing.set()
        with self._lock:
            self._do(self._mux.close())

    # -- doing what the core says (under the lock) --
    def _do(self, actions: list[mux_core.Action]) -> None:
        for action in actions:
            if isinstance(action, mux_core.Wake):
                action.feed.handle.notify_all()
            elif isinstance(action, mux_core.Send):
                action.stream.handle.requests.put(action.request)
            elif isinstance(action, mux_core.Open):
                action.stream.handle = _Line()
                self._open_call(action.stream)
                threading.Thread(target=self._read, args=(action.stream,), name="watch-stream",
                                 daemon=True).start()
            else:
                action.stream.handle.close()

    def _open_call(self, stream: mux_core.MuxStream) -> None:
        line = stream.handle
        line.call = self._client.stub("Watch", stream.endpoint).Watches(iter(line.requests.get, _END))

    def _read(self, stream: mux_core.MuxStream) -> None:
        """The stream's reader: responses to the core, reconnects as it says."""
        line = stream.handle
        while True:
            rpc_error = None
            try:
                for response in line.call:
                    with self._lock:
                        self._do(self._mux.received(stream, response))
            except grpc.RpcError as error:
                rpc_error = error
            with self._lock:
                delay_s, actions = self._mux.broke(stream, rpc_error)
                self._do(actions)
            if delay_s is None:
                return
            self._closing.wait(delay_s)
            with self._lock:
                if stream.closed:
                    return
                line.renew()
                actions = self._mux.reopen(stream)
                self._open_call(stream)
                self._do(actions)
