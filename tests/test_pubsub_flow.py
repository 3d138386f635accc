"""Pub/sub flow between a node and its clients: a subscription's window,
wake-ups in rounds, and the SDK's publish stream.

Goal: a subscriber that reads slowly holds at most its granted window
outside the node's bounded buffer (the rest waits there, and what that
buffer drops is a `Lagged` notice, never a backlog no one sees); a stream
whose client grants nothing (a client before flow control) gets every
message as before; one round of wake-ups carries every message published
in the same turn of the loop; a publish stream keeps many publishes in
flight, answered in order as one publisher, and its publishes fail
`Unavailable` on a node that cannot be reached and go to the next one
after.

Method: a `PubSubPlane` served by a grpc.aio server on 127.0.0.1 in the
test's process (the `PubSub` servicer and the dispatcher the node uses), raw stubs or the
SDK's `AsyncClient` against it. Every wait is for a condition, bounded by
WAIT_S; nothing is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import pytest

from tandemkv import errors, limits
from tandemkv.client import AsyncClient
from tandemkv.client._pubsub_core import Lagged, Message
from tandemkv.server.api.dispatch import Admission, Dispatcher, MalformedRequests, Service
from tandemkv.server.api.pubsub_servicers import PubSubServicer, Window
from tandemkv.server.api.streams import StreamStops
from tandemkv.server.available.pubsub_plane import PubSubPlane
from tandemkv.v1 import pubsub_pb2, pubsub_pb2_grpc
from tests.support.ports import free_ports

WAIT_S = 60.0
POLL_S = 0.01
TOPIC = b"flow"


@contextlib.asynccontextmanager
async def served_plane():
    plane = PubSubPlane("n1", {}, b"flow test secret")
    server = grpc.aio.server()
    # Served as the node serves it: through the dispatcher, which also sends the servicer's encoded responses.
    service = Service(pubsub_pb2.DESCRIPTOR.services_by_name["PubSub"],
                      PubSubServicer(object(), plane, StreamStops()))
    server.add_generic_rpc_handlers((Dispatcher([service], Admission(64, 64, 8), MalformedRequests()),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    plane.start()
    try:
        yield plane, f"127.0.0.1:{port}"
    finally:
        await plane.stop()
        await server.stop(None)


async def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        await asyncio.sleep(POLL_S)


class RawSubscriber:
    """A Subscribe stream on a raw stub, its requests from a queue."""

    def __init__(self, address: str, grant_messages: int):
        self.channel = grpc.aio.insecure_channel(address)
        self.requests: asyncio.Queue = asyncio.Queue()
        self.requests.put_nowait(pubsub_pb2.SubscribeRequest(add_topics=[TOPIC], grant_messages=grant_messages))
        self.call = pubsub_pb2_grpc.PubSubStub(self.channel).Subscribe(self._requests())

    async def _requests(self):
        while True:
            yield await self.requests.get()

    async def events(self, count: int) -> list:
        """At least `count` events (messages and lagged notices)."""
        events: list = []
        while len(events) < count:
            response = await asyncio.wait_for(self.call.read(), WAIT_S)
            assert response is not grpc.aio.EOF
            events.extend(response.events)
        return events

    async def close(self) -> None:
        self.call.cancel()
        await self.channel.close()


def run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=4 * WAIT_S))


def outside_the_buffer(plane: PubSubPlane, published: int) -> int:
    status = plane.hub.status()
    return published - status["buffered_messages"] - status["missed_by_slow_subscribers"]


def test_a_subscriber_that_does_not_read_holds_only_its_window_beyond_the_nodes_buffer():
    async def scenario():
        window, published = 64, 10_000
        async with served_plane() as (plane, address):
            subscriber = RawSubscriber(address, window)
            assert (await subscriber.call.read()).subscription_id
            for _ in range(window):
                plane.publish(TOPIC, b"x" * 32)
            await wait_for(lambda: outside_the_buffer(plane, window) == window, "the window sent")
            for _ in range(published - window):
                plane.publish(TOPIC, b"x" * 32)
            # None of these left: the client granted nothing more, so they are in the buffer or counted lost.
            await wait_for(lambda: plane.wake_rounds >= 2, "the second round of wake-ups")
            assert outside_the_buffer(plane, published) == window
            missed = plane.hub.status()["missed_by_slow_subscribers"]
            assert missed == published - window - limits.PUBSUB_SUBSCRIBER_BUFFER_MESSAGES_MAX
            first = await subscriber.events(window)
            assert [e.message.seq for e in first] == list(range(1, window + 1))
            grant = pubsub_pb2.SubscribeRequest(grant_messages=limits.PUBSUB_SUBSCRIBER_WINDOW_MESSAGES_MAX)
            subscriber.requests.put_nowait(grant)
            rest = await subscriber.events(1 + limits.PUBSUB_SUBSCRIBER_BUFFER_MESSAGES_MAX)
            assert rest[0].lagged == missed  # the notice stands where the dropped ones were
            seqs = [e.message.seq for e in rest[1:]]
            assert seqs == list(range(window + missed + 1, window + missed + 1 + len(seqs)))
            await subscriber.close()

    run(scenario)


def test_a_stream_that_grants_nothing_gets_every_message_as_before_flow_control():
    async def scenario():
        async with served_plane() as (plane, address):
            subscriber = RawSubscriber(address, 0)
            assert (await subscriber.call.read()).subscription_id
            for _ in range(2_000):
                plane.publish(TOPIC, b"old client")
            events = await subscriber.events(2_000)
            assert [e.message.seq for e in events] == list(range(1, 2_001))
            await subscriber.close()

    run(scenario)


def test_grants_add_up_to_the_node_cap():
    window = Window(10)
    assert window.enabled and window.messages_max == 10
    window.sent([None] * 10)
    assert window.closed
    window.grant(10 * limits.PUBSUB_SUBSCRIBER_WINDOW_MESSAGES_MAX)
    assert window.granted == limits.PUBSUB_SUBSCRIBER_WINDOW_MESSAGES_MAX
    assert not Window(0).enabled and not Window(0).closed


def test_messages_published_in_one_turn_of_the_loop_wake_each_reader_once_and_come_in_one_take():
    async def scenario():
        async with served_plane() as (plane, _):
            subscriptions = [plane.subscribe((TOPIC,)) for _ in range(200)]
            rounds_before = plane.wake_rounds
            for k in range(50):
                plane.publish(TOPIC, b"%d" % k)
            taken = [await asyncio.wait_for(s.next_events(), WAIT_S) for s in subscriptions]
            assert plane.wake_rounds == rounds_before + 1
            assert all([m.seq for m in events] == list(range(1, 51)) for events in taken)
            for subscription in subscriptions:
                subscription.close()

    run(scenario)


def test_an_sdk_subscriber_reading_slower_than_its_publisher_sees_every_message_or_a_lagged_count_in_order():
    async def scenario():
        published = 20_000
        async with served_plane() as (plane, address), AsyncClient(address) as client:
            async with await client.pubsub.subscribe(TOPIC) as subscription:
                for _ in range(published):
                    plane.publish(TOPIC, b"m")
                seqs, lagged = [], 0
                async for event in subscription:
                    if isinstance(event, Lagged):
                        lagged += event.missed
                    else:
                        seqs.append(event.seq)
                    if len(seqs) + lagged == published:
                        break
                assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
                assert lagged > 0  # 20,000 at once cannot all fit the window and the buffer
                assert len(seqs) + lagged == published and seqs[-1] == published

    run(scenario)


def test_a_publish_stream_keeps_many_in_flight_answered_in_order_as_one_publisher():
    async def scenario():
        count = 2_000
        async with served_plane() as (plane, address), AsyncClient(address) as client:
            async with await client.pubsub.subscribe(TOPIC) as subscription:
                async with client.pubsub.publish_stream(in_flight_max=128) as stream:
                    answers = [await stream.send(TOPIC, b"%d" % k) for k in range(count)]
                    await stream.flush()
                    published = [answer.result() for answer in answers]
                assert [p.seq for p in published] == list(range(1, count + 1))
                assert len({p.publisher for p in published}) == 1
                assert published[0].publisher != plane.publisher.id
                received = []
                async for event in subscription:
                    assert isinstance(event, Message)
                    received.append(int(event.payload))
                    if len(received) == count:
                        break
                assert received == list(range(count))

    run(scenario)


def test_a_publish_stream_to_a_node_that_cannot_be_reached_fails_unavailable_then_uses_the_next():
    async def scenario():
        async with served_plane() as (plane, address):
            dead = f"127.0.0.1:{free_ports(1)[0]}"
            async with AsyncClient([dead, address]) as client:
                stream = client.pubsub.publish_stream()
                with pytest.raises(errors.Unavailable):
                    await asyncio.wait_for(stream.publish(TOPIC, b"lost"), WAIT_S)
                published = await asyncio.wait_for(stream.publish(TOPIC, b"taken"), WAIT_S)
                assert published.node == "n1" and published.seq == 1
                await stream.close()
                with pytest.raises(errors.InvalidArgument):
                    await stream.send(TOPIC, b"after close")
                with pytest.raises(errors.InvalidArgument):
                    client.pubsub.publish_stream(in_flight_max=0)


    run(scenario)

def test_a_sync_publish_stream_answers_in_order_as_one_publisher_and_fails_unavailable_past_a_dead_node():
    from tandemkv.client import Client

    async def scenario():
        async with served_plane() as (plane, address):
            dead = f"127.0.0.1:{free_ports(1)[0]}"

            def publish_in_a_thread():
                with Client([dead, address]) as client:
                    stream = client.pubsub.publish_stream(in_flight_max=32)
                    with pytest.raises(errors.Unavailable):
                        stream.publish(TOPIC, b"lost")
                    answers = [stream.send(TOPIC, b"%d" % k) for k in range(500)]
                    stream.close()
                    return [answer.result(timeout=WAIT_S) for answer in answers]

            published = await asyncio.wait_for(asyncio.to_thread(publish_in_a_thread), WAIT_S)
            assert [p.seq for p in published] == list(range(1, 501))
            assert len({p.publisher for p in published}) == 1 and published[0].node == "n1"

    run(scenario)


def test_a_batch_on_a_publish_stream_is_answered_by_one_response_in_order_and_a_bad_batch_is_refused_whole():
    async def scenario():
        async with served_plane() as (plane, address), grpc.aio.insecure_channel(address) as channel:
            stub = pubsub_pb2_grpc.PubSubStub(channel)
            batch = [pubsub_pb2.PublishRequest(topic=TOPIC, payload=b"%d" % k) for k in range(100)]
            call = stub.PublishStream()
            await call.write(pubsub_pb2.PublishRequest(batch=batch))
            response = await asyncio.wait_for(call.read(), WAIT_S)
            assert [answer.seq for answer in response.batch] == list(range(1, 101))
            await call.done_writing()
            bad_batches = {
                "nested": [pubsub_pb2.PublishRequest(batch=batch[:1])],
                "durable": [pubsub_pb2.PublishRequest(topic=TOPIC, mode=pubsub_pb2.DURABLE)],
                "too long": batch * (limits.PUBSUB_PUBLISH_BATCH_MESSAGES_MAX // 100 + 1),
                "bad topic": batch[:5] + [pubsub_pb2.PublishRequest(topic=b"", payload=b"x")],
            }
            published_before = plane.hub.published_total
            for what, requests in bad_batches.items():
                call = stub.PublishStream()
                await call.write(pubsub_pb2.PublishRequest(batch=requests))
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await asyncio.wait_for(call.read(), WAIT_S)
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, what
            assert plane.hub.published_total == published_before  # all or nothing
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Publish(pubsub_pb2.PublishRequest(batch=batch[:2]))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "PublishStream" in refused.value.details()

    run(scenario)
