"""A fake `Node` for testing the gRPC layer and the SDK without Raft.

It records every call (request, kind, timeout), can be scripted to raise
errors or to block, and answers from a tiny in-memory model (keys, counters,
a request-id dedup table) so that SDK tests can check what was applied.
It is not a second state machine: transactions only report success, a
lease is granted by answering its id, a registry name is taken by the
first register. Streams (`watch`, a watch session, an election's
`leader_feed`) give `stream_responses`, then wait until they are stopped
or closed, which sets the stop Event they record in `stops`.
`available` is None (no available plane) unless a test sets one;
`FakeGossipPlane` answers `status()` with a fixed gossip view.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import deque

from tandemkv import errors
from tandemkv.server.available.gossip.protocol import GossipStatus
from tandemkv.server.available.gossip.liveness import PeerLiveness, PeerState
from tandemkv.server.available.crdt.hlc import Hlc
from tandemkv.server.available.runtime import PlaneStatus
from tandemkv.server.feeds import Feed
from tandemkv.server.node.crdt import NodeCrdt
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import counter_pb2, kv_pb2, lease_pb2

# Longest a fake stream waits for its stop Event.
STREAM_WAIT_S_MAX = 10.0


@dataclasses.dataclass(frozen=True)
class FakeMember:
    name: str
    raft_address: str
    client_address: str = ""


@dataclasses.dataclass(frozen=True)
class FakeStatus:
    name: str = "fake"
    role: str = "leader"
    leader: str | None = "fake"
    leader_client_address: str = ""
    term: int = 3
    commit_index: int = 10
    applied_index: int = 10
    has_quorum: bool = True
    ready: bool = True
    members: tuple = (FakeMember("fake", "127.0.0.1:1", ""),)


# A gossip view with one peer of each kind: heard lately, silent, never heard.
FAKE_GOSSIP = GossipStatus(
    node_id="fake", round=12, incarnation=Hlc(1_700_000_000_000, 0),
    peers={"n2": PeerLiveness(PeerState.ALIVE, 0, Hlc(1_700_000_011_000, 3)),
           "n3": PeerLiveness(PeerState.SUSPECT, 4, Hlc(1_700_000_007_000, 0)),
           "n4": PeerLiveness(PeerState.DEAD, 12, None)},
    tables={}, rejected={"clock_drift": 1, "bad_mac": 2}, ignored={}, counters={})


class FakeGossipPlane:
    """The `status()` of an `AvailablePlane`: answers `gossip` while
    `running`, then raises Unavailable as a stopped plane does."""

    def __init__(self, gossip: GossipStatus = FAKE_GOSSIP, running: bool = True) -> None:
        self.gossip = gossip
        self.running = running

    def status(self) -> PlaneStatus:
        if not self.running:
            raise errors.Unavailable("node fake: the available plane is not running")
        return PlaneStatus(self.gossip, {}, {}, "fake-replica")


class FakeWatchSession:
    """A watch session over the fake's stream: each watch created gets the
    node's `stream_responses` once, then waits; closing it sets the stop
    Event the fake recorded for it (as a node's stream would stop)."""

    def __init__(self, node: "FakeNode") -> None:
        self._node = node
        self._pending: list[tuple[int, object]] = []
        self.open: set[int] = set()
        self.stop = threading.Event()

    def create(self, watch_id, request) -> None:
        self._node.calls.append(Call("watch", request, 0.0))
        self.open.add(watch_id)
        self._pending.extend((watch_id, response) for response in self._node.stream_responses)
        if len(self.open) == 1:
            self._node.stops.append(self.stop)
        self._node.stream_opened.release()

    def cancel(self, watch_id) -> bool:
        was_open = watch_id in self.open
        self.open.discard(watch_id)
        return was_open

    @property
    def open_count(self) -> int:
        return len(self.open)

    def poll(self):
        ready, self._pending = self._pending, []
        return ready, None

    def request_progress(self, interval_ms: int = 0) -> None:
        pass

    def stream_progress(self):
        return None  # the fake's streams never report progress

    def close(self) -> None:
        self.open.clear()
        self.stop.set()


@dataclasses.dataclass
class Call:
    kind: str
    request: object
    timeout_s: float


class FakeNode:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.errors: deque[BaseException] = deque()
        # Answers to drop after applying: the caller sees an unknown outcome.
        self.answers_to_lose = 0
        self.block: threading.Event | None = None
        self.entered = threading.Semaphore(0)
        self.status_value = FakeStatus()
        self.available: FakeGossipPlane | None = None
        # The real front door of the CRDT plane, over whatever `available` is.
        self.crdt = NodeCrdt(self)
        self.kv: dict[bytes, bytes] = {}
        self.counters: dict[bytes, int] = {}
        self.applied: dict[bytes, object] = {}
        self.revision = 0
        self.names: dict[bytes, co.Claim] = {}
        self.stream_responses: list = []
        self.stops: list[threading.Event] = []
        self.stream_opened = threading.Semaphore(0)
        self._lock = threading.Lock()

    def propose(self, request, *, timeout_s):
        return self._serve("propose", request, timeout_s)

    def query(self, request, *, timeout_s):
        return self._serve("query", request, timeout_s)

    def status(self):
        return self.status_value

    def removed_reason(self):
        """A fake node is never removed from its cluster."""
        return None

    def _serve(self, kind, request, timeout_s):
        self.calls.append(Call(kind, request, timeout_s))
        self.entered.release()
        if self.block is not None:
            assert self.block.wait(timeout=10), "fake node blocked for over 10 s"
        if self.errors:
            raise self.errors.popleft()
        request_id = getattr(request, "request_id", b"")
        with self._lock:
            if request_id and request_id in self.applied:
                return self.applied[request_id]
            response = self._apply(request)
            if request_id:
                self.applied[request_id] = response
        if self.answers_to_lose > 0:
            self.answers_to_lose -= 1
            raise errors.OutcomeUnknown("applied, but the answer was lost", request_id=request_id)
        return response

    def _apply(self, request):
        handler = getattr(self, "_" + type(request).__name__)
        return handler(request)

    def _header(self, write: bool):
        if write:
            self.revision += 1
        return self.revision

    def _PutRequest(self, r):
        self.kv[r.key] = r.value
        return kv_pb2.PutResponse(header=kv_pb2.ResponseHeader(revision=self._header(True), node="fake"))

    def _GetRequest(self, r):
        if r.key not in self.kv:
            return kv_pb2.GetResponse(header=kv_pb2.ResponseHeader(revision=self.revision))
        kv = kv_pb2.KeyValue(key=r.key, value=self.kv[r.key], mod_revision=self.revision, version=1)
        return kv_pb2.GetResponse(header=kv_pb2.ResponseHeader(revision=self.revision), kv=kv, found=True)

    def _RangeRequest(self, r):
        keys = sorted(k for k in self.kv if k.startswith(r.range.key))
        kvs = [kv_pb2.KeyValue(key=k, value=b"" if r.keys_only else self.kv[k]) for k in keys]
        return kv_pb2.RangeResponse(header=kv_pb2.ResponseHeader(revision=self.revision), kvs=kvs)

    def _DeleteRequest(self, r):
        deleted = int(self.kv.pop(r.range.key, None) is not None)
        return kv_pb2.DeleteResponse(header=kv_pb2.ResponseHeader(revision=self._header(True)), deleted=deleted)

    def _TxnRequest(self, r):
        return kv_pb2.TxnResponse(header=kv_pb2.ResponseHeader(revision=self._header(True)), succeeded=True)

    def _counter_header(self, write: bool):
        return counter_pb2.CounterHeader(revision=self._header(write), node="fake")

    def _CounterIncrRequest(self, r):
        self.counters[r.name] = self.counters.get(r.name, 0) + r.delta
        return counter_pb2.CounterIncrResponse(header=self._counter_header(True), value=self.counters[r.name])

    def _CounterGetRequest(self, r):
        found = r.name in self.counters
        return counter_pb2.CounterGetResponse(
            header=self._counter_header(False), value=self.counters.get(r.name, 0), found=found
        )

    def _CounterSetRequest(self, r):
        previous = self.counters.get(r.name, 0)
        self.counters[r.name] = r.value
        return counter_pb2.CounterSetResponse(header=self._counter_header(True), prev_value=previous)

    def _CounterCompareAndSetRequest(self, r):
        succeeded = self.counters.get(r.name, 0) == r.expected
        if succeeded:
            self.counters[r.name] = r.value
        return counter_pb2.CounterCompareAndSetResponse(
            header=self._counter_header(True), succeeded=succeeded, value=self.counters.get(r.name, 0)
        )

    def _CounterDeleteRequest(self, r):
        deleted = self.counters.pop(r.name, None) is not None
        return counter_pb2.CounterDeleteResponse(header=self._counter_header(True), deleted=deleted)

    # -- coordination --
    def lock_acquire(self, request, *, timeout_s):
        self.calls.append(Call("lock_acquire", request, timeout_s))
        claim = co.Claim(name=request.name, lease=request.lease, token=self._header(True))
        return co.LockAcquireResponse(header=kv_pb2.ResponseHeader(revision=self.revision),
                                      acquired=True, claim=claim)

    def campaign(self, request, *, timeout_s):
        self.calls.append(Call("campaign", request, timeout_s))
        claim = co.Claim(name=request.election, value=request.value, lease=request.lease,
                         token=self._header(True))
        return co.CampaignResponse(header=kv_pb2.ResponseHeader(revision=self.revision),
                                   elected=True, claim=claim)

    def watch(self, request, stop):
        self.calls.append(Call("watch", request, 0.0))
        return self._stream(stop)

    # The node's asyncio twins: the fake's calls may block (`block`), so
    # they run on the loop's executor as a blocking node call would.
    async def propose_async(self, request, *, timeout_s):
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.propose(request, timeout_s=timeout_s))

    async def query_async(self, request, *, timeout_s):
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.query(request, timeout_s=timeout_s))

    async def batch_async(self, ops, *, timeout_s):
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.batch(ops, timeout_s=timeout_s))

    def watch_session(self, wake):
        return FakeWatchSession(self)

    def leader_feed(self, election, wake):
        """A feed that holds the last of `stream_responses` (a feed keeps
        only the latest), then waits; closing it sets its stop Event."""
        self.calls.append(Call("observe", election, 0.0))
        stop = threading.Event()
        feed = Feed(wake, on_close=stop.set)
        for version, response in enumerate(self.stream_responses, 1):
            feed.offer(version, response)
        self.stops.append(stop)
        self.stream_opened.release()
        return feed

    def _stream(self, stop):
        self.stops.append(stop)
        self.stream_opened.release()
        yield from self.stream_responses
        stop.wait(STREAM_WAIT_S_MAX)

    def _LeaseGrantRequest(self, r):
        return lease_pb2.LeaseGrantResponse(header=kv_pb2.ResponseHeader(revision=self._header(True)),
                                            id=self.revision, ttl_ms=r.ttl_ms)

    def _LeaseKeepAliveRequest(self, r):
        return lease_pb2.LeaseKeepAliveResponse(header=kv_pb2.ResponseHeader(revision=self._header(True)),
                                                id=r.id, ttl_ms=1000, found=True)

    def _RegisterRequest(self, r):
        header = kv_pb2.ResponseHeader(revision=self._header(True))
        current = self.names.get(r.name)
        if current is not None:
            return co.RegisterResponse(header=header, registered=current.lease == r.lease, claim=current)
        self.names[r.name] = co.Claim(name=r.name, value=r.value, lease=r.lease, token=self.revision)
        return co.RegisterResponse(header=header, registered=True, claim=self.names[r.name])

