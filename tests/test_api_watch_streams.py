"""Watch.Watches through gRPC on an embedded 3-node cluster: 2,000 watches
on two streams each get exactly their key's events, in order; create and
cancel by id; progress per watch, and per stream (2,000 idle watches cost
one response per interval, counted on the wire); a refused create ends only
its own watch; a malformed request ends the stream with INVALID_ARGUMENT."""

from __future__ import annotations

import collections
import queue
import threading
import time

import grpc
import pytest

from tandemkv import limits
from tandemkv.server.api import build_server
from tandemkv.v1 import kv_pb2, watch_pb2, watch_pb2_grpc
from tests.test_embedded_node import Cluster

pytestmark = pytest.mark.timeout(180)
WAIT_S = 60.0
KEYS = 100
WATCHES_PER_STREAM = 1_000
WRITES = 200
_END = object()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("watch-streams"))
    cluster.start()
    leader = cluster.leader()
    server = build_server(leader, "127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield leader, watch_pb2_grpc.WatchStub(channel)
    finally:
        channel.close()
        server.stop()
        cluster.stop()


class Stream:
    """One Watches stream: requests go in through a queue, a thread reads
    the responses."""

    def __init__(self, stub):
        self._requests: queue.Queue = queue.Queue()
        self.responses: queue.Queue = queue.Queue()
        self._call = stub.Watches(iter(self._requests.get, _END), timeout=WAIT_S * 2)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        try:
            for response in self._call:
                self.responses.put(response)
        except grpc.RpcError as error:
            self.responses.put(error)

    def create(self, watch_id: int, key: bytes, **fields):
        request = watch_pb2.WatchRequest(range=kv_pb2.KeyRange(key=key), **fields)
        self._requests.put(watch_pb2.WatchStreamRequest(create=watch_pb2.WatchCreate(watch_id=watch_id,
                                                                                     request=request)))

    def cancel(self, watch_id: int):
        self._requests.put(watch_pb2.WatchStreamRequest(cancel=watch_pb2.WatchCancel(watch_id=watch_id)))

    def progress(self, interval_ms: int = 0):
        self._requests.put(watch_pb2.WatchStreamRequest(
            progress=watch_pb2.WatchProgressRequest(interval_ms=interval_ms)))

    def send_raw(self, request):
        self._requests.put(request)

    def next(self):
        item = self.responses.get(timeout=WAIT_S)
        if isinstance(item, grpc.RpcError):
            raise item
        return item

    def close(self):
        self._call.cancel()
        self._requests.put(_END)
        self._reader.join(timeout=WAIT_S)


def test_two_thousand_watches_on_two_streams_each_get_their_keys_events_in_order(served):
    node, stub = served
    streams = [Stream(stub) for _ in range(2)]
    try:
        for s, stream in enumerate(streams):
            for watch_id in range(WATCHES_PER_STREAM):
                stream.create(watch_id, b"ws/%d" % ((s * WATCHES_PER_STREAM + watch_id) % KEYS))
        for stream in streams:
            created = [stream.next() for _ in range(WATCHES_PER_STREAM)]
            assert all(r.created for r in created)
        node.batch([kv_pb2.PutRequest(key=b"ws/%d" % (i % KEYS), value=b"%d" % i) for i in range(WRITES)])
        for s, stream in enumerate(streams):
            seen = collections.defaultdict(list)
            while sum(len(v) for v in seen.values()) < WATCHES_PER_STREAM * WRITES // KEYS:
                response = stream.next()
                seen[response.watch_id].extend((e.kv.key, int(e.kv.value), e.kv.mod_revision)
                                               for e in response.response.events)
            assert len(seen) == WATCHES_PER_STREAM
            for watch_id, events in seen.items():
                key = b"ws/%d" % ((s * WATCHES_PER_STREAM + watch_id) % KEYS)
                assert {k for k, _, _ in events} == {key}
                # A batch's writes to one key may share a log entry, hence a revision.
                assert [v for _, v, _ in events] == list(range(int(key[3:]), WRITES, KEYS))
                revisions = [r for _, _, r in events]
                assert revisions == sorted(revisions)
    finally:
        for stream in streams:
            stream.close()


def test_create_cancel_progress_and_refusals_by_watch_id(served):
    node, stub = served
    stream = Stream(stub)
    try:
        stream.create(1, b"wsc/a")
        stream.create(1, b"wsc/b")
        stream.create(2, b"k" * (limits.KEY_SIZE_BYTES_MAX + 1))
        stream.create(3, b"wsc/quiet", progress_interval_ms=100)
        first = [stream.next() for _ in range(4)]
        assert first[0].created and first[0].watch_id == 1
        assert first[1].canceled and "already open" in first[1].cancel_reason
        assert first[2].canceled and first[2].cancel_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert first[3].created and first[3].watch_id == 3
        progress = stream.next()
        assert progress.watch_id == 3 and progress.response.progress
        stream.cancel(3)
        stream.cancel(9)
        answers = {}
        deadline = time.monotonic() + WAIT_S
        while len(answers) < 2 and time.monotonic() < deadline:
            response = stream.next()
            if response.canceled:
                answers[response.watch_id] = response
        assert answers[3].cancel_code == 0
        assert answers[9].cancel_code == grpc.StatusCode.NOT_FOUND.value[0]
        node.put(b"wsc/a", b"after")
        response = stream.next()
        while response.watch_id == 3:  # a progress already on its way before the cancel
            response = stream.next()
        assert response.watch_id == 1 and response.response.events[0].kv.value == b"after"
    finally:
        stream.close()


def test_two_thousand_idle_watches_on_a_stream_cost_one_progress_response_per_interval(served):
    node, stub = served
    stream = Stream(stub)
    intervals = 4
    try:
        for watch_id in range(2 * WATCHES_PER_STREAM):
            stream.create(watch_id, b"wsp/%d" % watch_id)
        assert all(stream.next().created for _ in range(2 * WATCHES_PER_STREAM))
        stream.progress(interval_ms=100)
        on_the_wire = [stream.next() for _ in range(intervals)]  # the first at once, then one per interval
        written = node.put(b"wsp-unwatched", b"x").header.revision
        later = stream.next()
        while later.response.header.revision < written:  # bounded by WAIT_S per response
            on_the_wire.append(later)
            later = stream.next()
        on_the_wire.append(later)
        assert all(r.watch_id == -1 and r.response.progress for r in on_the_wire), (
            "nothing per watch: one response per stream per interval")
        assert all(not r.progress_excluded for r in on_the_wire), "every watch is caught up"
        revisions = [r.response.header.revision for r in on_the_wire]
        assert revisions == sorted(revisions) and revisions[-1] >= written
    finally:
        stream.close()


def test_a_progress_interval_below_the_minimum_ends_the_stream_with_invalid_argument(served):
    _, stub = served
    stream = Stream(stub)
    try:
        stream.progress(interval_ms=limits.WATCH_STREAM_PROGRESS_INTERVAL_MS_MIN - 1)
        with pytest.raises(grpc.RpcError) as caught:
            while True:
                stream.next()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "WATCH_STREAM_PROGRESS_INTERVAL_MS_MIN" in caught.value.details()
    finally:
        stream.close()


def test_a_request_that_sets_nothing_ends_the_stream_with_invalid_argument(served):
    _, stub = served
    stream = Stream(stub)
    try:
        stream.send_raw(watch_pb2.WatchStreamRequest())
        with pytest.raises(grpc.RpcError) as caught:
            while True:
                stream.next()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "none of create, cancel and progress" in caught.value.details()
    finally:
        stream.close()
