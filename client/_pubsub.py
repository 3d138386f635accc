"""Pub/sub in the SDK: `client.pubsub` (`PubSub`) and its `Subscription`,
with asyncio twins in `_pubsub_async`; the requests, answers and events
both share are built here.

Semantics (best-effort, the available plane; docs/pubsub.md): a publish
goes to one node (the first endpoint that answers, kept while it answers),
which hands the message to its own subscribers and once to every other
node; it never waits on Raft, so it works without a quorum and on both
sides of a partition. Every subscriber of the topic, or of a prefix of it,
on every reachable node receives it. Each subscriber sees one publisher's
messages in the order published (a publisher is one node's unary calls,
in the order that node takes them). There is no history: a subscription
receives what is published after it opened.

Failure modes: delivery is at most once, and never silently short. A
subscriber that reads too slowly for its bounded buffer
(PUBSUB_SUBSCRIBER_BUFFER_MESSAGES_MAX / _BYTES_MAX on the node) gets a
`Lagged(missed)` event where the oldest messages went. A loss between
nodes (a peer's full queue, a broken connection) shows as a jump in a
publisher's `seq` on a topic. A publish that fails with UNAVAILABLE was
not taken and is retried on the next endpoint; one whose outcome is
unknown (a deadline, a lost connection) raises `OutcomeUnknown` and is
not sent again, since a retry could deliver it twice. A subscription whose
node goes away ends with `Unavailable`: open another (messages published
meanwhile are not replayed).

Durable (`durable=True`; the strong plane's per-topic log, through Raft,
so it needs a quorum; docs/durable-topics.md): a publish is acknowledged
once durable on a majority and answers the message's `offset`; it is
exactly once (retried with its request id, on the leader). A durable
subscription holds one topic and reads its log from `from_offset` (0: the
first retained message; None: what is published after it opened); every
message carries its `offset`, and a `Gap` event stands where retention
dropped messages before the subscriber read them. When it breaks, open
another with `from_offset=subscription.next_offset`: nothing is lost or
repeated.
"""

from __future__ import annotations

import collections
import queue
import threading
from concurrent import futures
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import grpc

from tandemkv import errors
from tandemkv.client._pubsub_core import (END_OF_REQUESTS, PUBLISH_FROM_TIMEOUT_S, PUBLISH_STREAM_IN_FLIGHT_MAX,
                                          Event, Grants, Lagged, Position, PublishBatches, Published,
                                          decode_published, events_of, first_request, next_endpoint,
                                          opening_failed, publish, publish_request, publish_stream_failed,
                                          publish_stream_request, stream_error, subscribe_request)
from tandemkv.client._results import BytesLike
from tandemkv.client._retry import error_from_rpc

if TYPE_CHECKING:
    from tandemkv.client._sync import Client


class Subscription:
    """An open subscription on one node: iterate it for `Message` and
    `Lagged` events (durable: `Message` and `Gap`), in order. `id` names it
    on `node` (for `publish_from`; 0 for a durable one). Change what it
    holds with `add` and `remove` (best-effort only); `close` it (or use
    `with`) when done. Iteration ends after `close`; it raises
    `Unavailable` (or the node's error) when the stream breaks: a durable
    one resumes with `from_offset=next_offset`."""

    def __init__(self, client: Client, topics: Any, prefixes: Any, durable: bool = False,
                 from_offset: int | None = None):
        opening = first_request(topics, prefixes, durable, from_offset)
        self._position = Position(from_offset)
        self._grants = Grants(durable)
        self._pending: collections.deque[Event] = collections.deque()
        self.closed = False
        self.lagged_total = 0
        failure: errors.TandemKVError | None = None
        for endpoint in client._local.order():
            self._requests: queue.SimpleQueue = queue.SimpleQueue()
            self._requests.put(opening)
            call = client.stub("PubSub", endpoint).Subscribe(iter(self._requests.get, END_OF_REQUESTS))
            try:
                first = next(call)
            except grpc.RpcError as error:
                self._requests.put(END_OF_REQUESTS)  # ends the thread that sends the requests
                failure = opening_failed(error)
                if isinstance(failure, (errors.Unavailable, errors.OutcomeUnknown)):
                    continue  # that node is down: the next one
                raise failure from None
            self._call, self.endpoint = call, endpoint
            self.id, self.node = first.subscription_id, first.header.node
            client._local.answered(endpoint)
            return
        assert failure is not None
        raise failure

    def add(self, topics: Any = (), prefixes: Any = ()) -> None:
        """Adds topics and prefixes (one str or bytes is one); a refused one
        (over PUBSUB_TOPIC_BYTES_MAX, say) ends the subscription with
        `InvalidArgument` at the next read."""
        self._requests.put(subscribe_request(topics, prefixes))

    def remove(self, topics: Any = (), prefixes: Any = ()) -> None:
        self._requests.put(subscribe_request(topics, prefixes, remove=True))

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        while not self._pending:
            try:
                response = next(self._call)
            except StopIteration:
                self._requests.put(END_OF_REQUESTS)
                if self.closed:
                    raise
                raise errors.Unavailable(f"{self.endpoint} ended the subscription (stopping?): subscribe again") \
                    from None
            except grpc.RpcError as error:
                self._requests.put(END_OF_REQUESTS)
                failure = stream_error(error, self.endpoint, self.closed)
                if failure is None:
                    raise StopIteration from None
                raise failure from None
            self._pending.extend(events_of(response))
        event = self._pending.popleft()
        grant = self._grants.taken(event)
        if grant is not None and not self.closed:
            self._requests.put(grant)
        if isinstance(event, Lagged):
            self.lagged_total += event.missed
        self._position.passed(event)
        return event

    @property
    def next_offset(self) -> int | None:
        """Durable: the offset to resume from (None: from now; nothing
        delivered yet)."""
        return self._position.next_offset

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._requests.put(END_OF_REQUESTS)
            self._call.cancel()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PublishStream:
    """Many publishes in flight on one `PublishStream`, answered in order:
    `client.pubsub.publish_stream()`; the sync twin of
    `AsyncPublishStream` (same semantics and failure modes). `send`
    returns a `concurrent.futures.Future` of the `Published` once the
    message is queued (blocking while `in_flight_max` are unanswered); a
    thread of the stream reads the answers. Threads may share a stream:
    messages go in the order `send` was called; what is queued while a
    request is written goes in the next, as one batch.

    Example::

        with client.pubsub.publish_stream() as stream:
            answers = [stream.send("prices", tick) for tick in ticks]
        print(answers[-1].result().seq)          # closing waited for every answer
    """

    def __init__(self, client: Client, in_flight_max: int = PUBLISH_STREAM_IN_FLIGHT_MAX):
        if in_flight_max < 1:
            raise errors.InvalidArgument(f"in_flight_max is 1 or more; got {in_flight_max}")
        self._client = client
        self._room = threading.Semaphore(in_flight_max)
        # Guards the batches, the call and the reader; wakes the request iterator.
        self._changed = threading.Condition()
        self._batches = PublishBatches()
        self._call: Any = None
        self._reader: threading.Thread | None = None
        self.endpoint = ""
        self.closed = False

    def send(self, topic: BytesLike, message: BytesLike, *, local: bool = False) -> futures.Future:
        """Queues one message; the future of its `Published`. Bad input
        raises here (`InvalidArgument`), before anything is sent."""
        request = publish_stream_request(topic, message, local)
        if self.closed:
            raise errors.InvalidArgument("this publish stream is closed: open another")
        self._room.acquire()
        answer: futures.Future = futures.Future()
        answer.add_done_callback(lambda _: self._room.release())
        with self._changed:
            self._batches.queue(request, answer)
            if self._call is None:
                self._open()
            self._changed.notify_all()
        return answer

    def publish(self, topic: BytesLike, message: BytesLike, *, local: bool = False) -> Published:
        """Sends one message and waits for its answer."""
        return self.send(topic, message, local=local).result()

    def flush(self) -> None:
        """Waits until every message sent so far is answered (or failed)."""
        with self._changed:
            pending = self._batches.pending()
        futures.wait(pending)

    def _open(self) -> None:
        """A new call and its reader thread; with the lock held."""
        self.endpoint = self._client._local.order()[0]
        self._call = generation = object()  # this call's, until it ends
        call = self._client.stub("PubSub", self.endpoint).PublishStream(self._requests(generation))
        self._reader = threading.Thread(target=self._read, args=(call, generation, self.endpoint),
                                        name="pubsub publish stream", daemon=True)
        self._reader.start()

    def _requests(self, generation: object) -> Iterator:
        """The call's requests (grpc reads them on a thread of its own): what
        is queued, a batch at a time, until the stream closes or breaks."""
        while True:
            with self._changed:
                while not self._batches.queued and not self.closed and self._call is generation:
                    self._changed.wait()
                if self._call is not generation or not self._batches.queued:
                    return
                request = self._batches.next_request()
            yield request

    def _read(self, call: Any, generation: object, endpoint: str) -> None:
        failure: grpc.RpcError | None = None
        answered = 0
        try:
            for response in call:
                answered += 1
                with self._changed:
                    self._batches.answered(response)
        except grpc.RpcError as error:
            failure = error
        error = publish_stream_failed(failure, endpoint)
        with self._changed:
            local = self._client._local
            if answered:
                local.answered(endpoint)
            elif isinstance(error, errors.Unavailable):
                local.answered(next_endpoint(local.endpoints, endpoint))
            self._batches.failed(error)
            if self._call is generation:
                self._call = None
                if self._batches.queued:  # they go on a new stream
                    self._open()
            self._changed.notify_all()

    def close(self) -> None:
        """Waits for the answers of what was sent, then ends the stream."""
        if self.closed:
            return
        self.flush()
        with self._changed:
            self.closed = True
            self._changed.notify_all()
            reader = self._reader
        if reader is not None:
            reader.join()

    def __enter__(self) -> PublishStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PubSub:
    """`client.pubsub`: best-effort publish and subscribe (see the module
    docs for what is promised and how it fails).

    Example::

        with Client() as client, client.pubsub.subscribe(["room:1"], prefixes=["alerts:"]) as sub:
            client.pubsub.publish("room:1", "hello")
            for event in sub:
                if isinstance(event, Lagged):
                    print(f"missed {event.missed} messages")
                    continue
                print(event.topic, event.payload)
                break
    """

    def __init__(self, client: Client):
        self.client = client

    def publish(self, topic: BytesLike, message: BytesLike, *, local: bool = False, durable: bool = False,
                request_id: bytes | None = None) -> Published:
        """Sends `message` to every subscriber of `topic` (or of a prefix of
        it) on every node. `local=True`: only to the subscribers of the
        node that takes it (Phoenix's local_broadcast). Raises
        `InvalidArgument` for an empty topic, a topic over
        PUBSUB_TOPIC_BYTES_MAX or a message over PUBSUB_MESSAGE_BYTES_MAX.

        `durable=True`: appended to the topic's log through Raft and
        acknowledged once durable on a majority; `Published.offset` is its
        offset. Needs a quorum (`Unavailable` without one); `OutcomeUnknown`
        carries the request id: pass it as `request_id` to finish the
        publish without a second copy."""
        return self.client.run(publish(topic, message, local, durable, request_id))

    def publish_from(self, subscription: Subscription, topic: BytesLike, message: BytesLike, *,
                     local: bool = False) -> Published:
        """`publish`, but not to `subscription` (the sender's own), as
        Phoenix's broadcast_from: sent to the node that holds it, and only
        there (no other node knows that subscription). That subscription
        sees the node publisher's numbers jump over what it skipped."""
        request = publish_request(topic, message, local, subscription.id)
        try:
            return decode_published(self.client.stub("PubSub", subscription.endpoint).Publish(
                request, timeout=PUBLISH_FROM_TIMEOUT_S))
        except grpc.RpcError as error:
            raise error_from_rpc(error, b"") from None

    def publish_stream(self, in_flight_max: int = PUBLISH_STREAM_IN_FLIGHT_MAX) -> PublishStream:
        """A stream of best-effort publishes with up to `in_flight_max` in
        flight, answered in order: one publisher, whose messages every
        subscriber sees in the order sent; far faster than `publish` in a
        loop, which waits a round trip per message. See `PublishStream`."""
        return PublishStream(self.client, in_flight_max)

    def subscribe(self, topics: Iterable[BytesLike] | BytesLike = (), *,
                  prefixes: Iterable[BytesLike] | BytesLike = (), durable: bool = False,
                  from_offset: int | None = None) -> Subscription:
        """A subscription to `topics` and to every topic starting with one
        of `prefixes` (b"" matches every topic), on the first node that
        answers; open once it returns. See `Subscription`.

        `durable=True`: one topic's log, from `from_offset` (0: the first
        retained message; None: what is published after it opened), with
        each message's `offset` and a `Gap` where retention dropped some.

        Example::

            with client.pubsub.subscribe("orders", durable=True, from_offset=last + 1) as orders:
                for event in orders:
                    if isinstance(event, Gap):
                        log.warning("lost %d", event.first_offset - event.from_offset)
                        continue
                    handle(event.payload)
                    last = event.offset
        """
        return Subscription(self.client, topics, prefixes, durable, from_offset)
