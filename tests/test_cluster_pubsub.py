"""Best-effort pub/sub on a real cluster of `tandemkv serve` processes,
through the SDK (sync and asyncio): subscribers on two nodes receive every
message a third node publishes, once, in each publisher's order;
publish_from leaves out the sender's own subscription and no one else;
a local-only publish stays on its node; with a majority of the nodes down
(no Raft quorum) the remaining ones still publish to each other (and
durable publishes are refused); a slow subscriber gets a Lagged notice,
never a silent gap; durable publishes are read from their offsets, and a
durable subscriber resumes on another node where it left off.

Method: one 5-node cluster for the module (so that three can go down and
two remain). Every wait is bounded by a deadline; a subscriber reads in a
thread of the test with a bounded count. The no-quorum test runs last: it
stops three nodes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import grpc
import pytest

from tandemkv import errors, limits
from tandemkv.client import NO_RETRY, AsyncClient, Client, Lagged, Message
from tandemkv.v1 import pubsub_pb2, pubsub_pb2_grpc
from tests.support.cluster import ServeCluster

START_TIMEOUT_S = 120.0
DELIVERY_TIMEOUT_S = 30.0
MESSAGES = 200
CLI_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("pubsub"), nodes=5) as cluster:
        # Every node serves (best-effort needs no more) and agrees on a
        # leader (the durable tests need one).
        cluster.wait_for_leader(START_TIMEOUT_S)
        yield cluster


class Reader:
    """Reads a subscription in a thread until it holds `count` messages or
    the deadline passes."""

    def __init__(self, subscription, count: int):
        self.subscription = subscription
        self.events: list = []
        self.error: BaseException | None = None
        self._count = count
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self.subscription:
                self.events.append(event)
                if len(self.messages) >= self._count:
                    return
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error

    @property
    def messages(self) -> list[Message]:
        return [e for e in self.events if isinstance(e, Message)]

    def wait(self) -> list[Message]:
        self._thread.join(DELIVERY_TIMEOUT_S)
        self.subscription.close()
        self._thread.join(DELIVERY_TIMEOUT_S)
        assert self.error is None, self.error
        return self.messages


def test_subscribers_on_two_nodes_get_every_message_of_a_third_once_in_order(cluster):
    with Client(cluster.endpoint("n1")) as on_n1, Client(cluster.endpoint("n3")) as on_n3, \
            Client(cluster.endpoint("n2")) as on_n2:
        exact = on_n1.pubsub.subscribe("room:1")
        by_prefix = on_n3.pubsub.subscribe(prefixes=["room:"])
        assert (exact.node, by_prefix.node) == ("n1", "n3")
        readers = [Reader(exact, MESSAGES), Reader(by_prefix, MESSAGES)]
        stamps = [on_n2.pubsub.publish("room:1", f"m{k}") for k in range(MESSAGES)]
        assert {s.node for s in stamps} == {"n2"} and [s.seq for s in stamps] == list(range(1, MESSAGES + 1))
        for reader in readers:
            received = reader.wait()
            assert [m.payload for m in received] == [f"m{k}".encode() for k in range(MESSAGES)]
            assert [m.seq for m in received] == list(range(1, MESSAGES + 1))
            assert {m.publisher for m in received} == {stamps[0].publisher}
            assert not [e for e in reader.events if isinstance(e, Lagged)]


def test_a_publish_stream_is_one_publisher_whose_order_every_subscriber_keeps(cluster):
    with grpc.insecure_channel(cluster.endpoint("n2")) as channel, Client(cluster.endpoint("n1")) as on_n1:
        reader = Reader(on_n1.pubsub.subscribe(["a", "b"]), 2 * MESSAGES)
        requests = (pubsub_pb2.PublishRequest(topic=b"ab"[k % 2:k % 2 + 1], payload=b"%d" % k)
                    for k in range(2 * MESSAGES))
        answers = list(pubsub_pb2_grpc.PubSubStub(channel).PublishStream(requests, timeout=DELIVERY_TIMEOUT_S))
        assert len({a.publisher.session for a in answers}) == 1
        received = reader.wait()
        assert [int(m.payload) for m in received] == list(range(2 * MESSAGES))


def test_publish_from_skips_only_the_senders_own_subscription(cluster):
    with Client(cluster.endpoint("n2")) as on_n2, Client(cluster.endpoint("n1")) as on_n1:
        own = on_n2.pubsub.subscribe("chat")
        neighbour, remote = Reader(on_n2.pubsub.subscribe("chat"), 2), Reader(on_n1.pubsub.subscribe("chat"), 2)
        own_reader = Reader(own, 1)
        skipped = on_n2.pubsub.publish_from(own, "chat", "from me")
        assert skipped.node == "n2" and skipped.delivered_locally == 1
        on_n2.pubsub.publish("chat", "marker")  # same node, same publisher: after the skipped one
        assert [m.payload for m in own_reader.wait()] == [b"marker"]
        for reader in (neighbour, remote):
            assert [m.payload for m in reader.wait()] == [b"from me", b"marker"]


def test_a_local_only_publish_stays_on_its_node(cluster):
    with Client(cluster.endpoint("n2")) as on_n2, Client(cluster.endpoint("n1")) as on_n1:
        here, there = Reader(on_n2.pubsub.subscribe("news"), 2), Reader(on_n1.pubsub.subscribe("news"), 1)
        on_n2.pubsub.publish("news", "local", local=True)
        on_n2.pubsub.publish("news", "everywhere")
        assert sorted(m.payload for m in here.wait()) == [b"everywhere", b"local"]
        assert [m.payload for m in there.wait()] == [b"everywhere"]


def test_the_asyncio_client_subscribes_adds_topics_and_publishes(cluster):
    async def run() -> list:
        async with AsyncClient(cluster.endpoint("n3")) as on_n3, AsyncClient(cluster.endpoint("n2")) as on_n2:
            async with await on_n3.pubsub.subscribe("x") as sub:
                sub.add(prefixes=["y:"])
                await on_n2.pubsub.publish("x", "1")
                # "y:z" is published once "1" came back: the add went on the
                # stream before "1" was even published, so the node holds it.
                got = []
                async with asyncio.timeout(DELIVERY_TIMEOUT_S):
                    async for event in sub:
                        got.append(event.payload)
                        if event.payload == b"1":
                            await on_n2.pubsub.publish("y:z", "2")
                        if len(got) == 2:
                            break
                return got
    assert asyncio.run(run()) == [b"1", b"2"]


def test_bad_requests_get_a_clear_error(cluster):
    with Client(cluster.endpoint("n1"), retry=NO_RETRY) as client:
        with pytest.raises(errors.InvalidArgument, match="PUBSUB_TOPIC_BYTES_MAX"):
            client.pubsub.publish("t" * (limits.PUBSUB_TOPIC_BYTES_MAX + 1), "x")
        with pytest.raises(errors.InvalidArgument, match="topic must not be empty"):
            client.pubsub.publish("", "x")
        with pytest.raises(errors.InvalidArgument, match="PUBSUB_MESSAGE_BYTES_MAX"):
            client.pubsub.publish("t", b"x" * (limits.PUBSUB_MESSAGE_BYTES_MAX + 1))
        with pytest.raises(errors.InvalidArgument, match="PUBSUB_TOPIC_BYTES_MAX"):
            client.pubsub.subscribe("t" * (limits.PUBSUB_TOPIC_BYTES_MAX + 1))
        with pytest.raises(errors.InvalidArgument, match="exactly one topic"):
            client.pubsub.subscribe(["a", "b"], durable=True)
        with pytest.raises(errors.InvalidArgument, match="for BEST_EFFORT"):
            client.pubsub.publish("t", "x", durable=True, local=True)
        with pytest.raises(errors.InvalidArgument, match="has no history"):
            client.pubsub.subscribe("t", from_offset=3)
        with client.pubsub.subscribe("t", durable=True) as log:
            with pytest.raises(errors.InvalidArgument, match="publish_from takes a best-effort subscription"):
                client.pubsub.publish_from(log, "t", "x")
    with grpc.insecure_channel(cluster.endpoint("n1")) as channel:
        stub = pubsub_pb2_grpc.PubSubStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Publish(pubsub_pb2.PublishRequest(topic=b"t", payload=b"x", mode=7), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "use 0 (BEST_EFFORT) or 1 (DURABLE)" in caught.value.details()
        durable = stub.Subscribe(iter([pubsub_pb2.SubscribeRequest(add_topics=[b"t"], mode=pubsub_pb2.DURABLE),
                                       pubsub_pb2.SubscribeRequest(add_topics=[b"u"])]), timeout=10)
        with pytest.raises(grpc.RpcError) as caught:
            list(durable)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "takes no request after its first" in caught.value.details()


def test_a_durable_subscriber_resumes_on_another_node_where_it_left_off(cluster):
    with Client(cluster.endpoints) as client, Client(cluster.endpoint("n1")) as on_n1, \
            Client(cluster.endpoint("n3")) as on_n3:
        later = on_n1.pubsub.subscribe("orders", durable=True)  # from now: sees only what follows
        acks = [client.pubsub.publish("orders", f"order {k}", durable=True) for k in range(10)]
        offsets = [ack.offset for ack in acks]
        assert offsets == list(range(offsets[0], offsets[0] + 10)) and acks[0].publisher is None
        with on_n1.pubsub.subscribe("orders", durable=True, from_offset=offsets[0]) as first:
            got = [next(first) for _ in range(4)]
            resume_at = first.next_offset
        assert [m.offset for m in got] == offsets[:4] and resume_at == offsets[4]
        with on_n3.pubsub.subscribe("orders", durable=True, from_offset=resume_at) as second:
            rest = [next(second) for _ in range(6)]
        assert [m.payload for m in got + rest] == [f"order {k}".encode() for k in range(10)]
        assert [m.payload for m in Reader(later, 10).wait()] == [f"order {k}".encode() for k in range(10)]
        assert all(m.publish_ms > 0 for m in rest)


def test_the_asyncio_client_publishes_and_reads_durably(cluster):
    async def run() -> tuple[list, list]:
        async with AsyncClient(cluster.endpoints) as client:
            acks = [await client.pubsub.publish("audit", f"{k}", durable=True) for k in range(3)]
            async with await client.pubsub.subscribe("audit", durable=True, from_offset=0) as sub:
                got = []
                async with asyncio.timeout(DELIVERY_TIMEOUT_S):
                    async for event in sub:
                        got.append(event)
                        if len(got) == 3:
                            break
            return acks, got
    acks, got = asyncio.run(run())
    assert [m.offset for m in got] == [a.offset for a in acks] and [m.payload for m in got] == [b"0", b"1", b"2"]


def test_a_slow_subscriber_is_told_how_many_it_missed_in_their_place(cluster):
    # Big local-only messages and a stream nobody reads: the transport's
    # windows fill, then the subscriber's buffer on the node, which drops
    # the oldest. Read afterwards, every message is there or counted.
    payload = b"p" * (limits.PUBSUB_MESSAGE_BYTES_MAX - 1024)
    over = 800
    options = [("grpc.max_receive_message_length", limits.GRPC_MESSAGE_BYTES_MAX)]
    with grpc.insecure_channel(cluster.endpoint("n4"), options=options) as channel:
        call = pubsub_pb2_grpc.PubSubStub(channel).Subscribe(
            iter([pubsub_pb2.SubscribeRequest(add_topics=[b"firehose"])]), timeout=DELIVERY_TIMEOUT_S)
        next(call)
        answers = list(pubsub_pb2_grpc.PubSubStub(channel).PublishStream(
            (pubsub_pb2.PublishRequest(topic=b"firehose", payload=payload, local_only=True) for _ in range(over)),
            timeout=DELIVERY_TIMEOUT_S))
        assert len(answers) == over
        missed, expected, seen = 0, 1, 0
        for response in call:
            for event in response.events:
                if event.WhichOneof("kind") == "lagged":
                    missed += event.lagged
                    expected += event.lagged
                else:
                    assert event.message.seq == expected, "a message went without a Lagged in its place"
                    expected += 1
                    seen += 1
            if expected > over:
                break
        call.cancel()
    assert missed > 0 and missed + seen == over


def _tandemkv(cluster, node: str, *words: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tandemkv.server.cli", "--endpoints", cluster.endpoint(node),
                           *words], capture_output=True, text=True, timeout=CLI_TIMEOUT_S, **kwargs)


def test_the_command_line_subscribes_and_publishes_across_nodes(cluster):
    subscriber = subprocess.Popen(
        [sys.executable, "-m", "tandemkv.server.cli", "--endpoints", cluster.endpoint("n1"), "--output", "json",
         "pubsub", "subscribe", "cli:1", "--prefix", "cli:p:", "--count", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert subscriber.stderr.readline() == "tandemkv: subscribed on n1\n"  # open: publish now
        first = _tandemkv(cluster, "n2", "pubsub", "publish", "cli:1", "hello")
        assert (first.returncode, first.stdout) == (0, "OK\n")
        second = _tandemkv(cluster, "n3", "--output", "json", "pubsub", "publish", "cli:p:x", "-", input="from stdin")
        assert second.returncode == 0 and json.loads(second.stdout)["node"] == "n3"
        out, err = subscriber.communicate(timeout=CLI_TIMEOUT_S)
    finally:
        subscriber.kill()
        subscriber.wait(CLI_TIMEOUT_S)
    assert subscriber.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(line["topic"], line["payload"], line["publisher"]["node"], line["seq"]) for line in lines] == [
        ("cli:1", "hello", "n2", 1), ("cli:p:x", "from stdin", "n3", 1)]


def test_the_command_line_publishes_durably_and_reads_from_an_offset(cluster):
    offsets = []
    for text in ("first", "second"):
        published = _tandemkv(cluster, "n2", "pubsub", "publish", "cli:log", text, "--durable")
        assert published.returncode == 0, published.stderr
        offsets.append(int(published.stdout))
    read = _tandemkv(cluster, "n3", "pubsub", "subscribe", "cli:log", "--durable", "--from", str(offsets[0]),
                     "--count", "2")
    assert read.returncode == 0, read.stderr
    assert read.stdout.splitlines() == [f"[cli:log@{offsets[0]}] first", f"[cli:log@{offsets[1]}] second"]


def test_the_command_line_says_what_to_fix_in_one_line(cluster):
    nothing = _tandemkv(cluster, "n1", "pubsub", "subscribe")
    assert nothing.returncode == 2 and nothing.stderr == "tandemkv: name at least one TOPIC or --prefix\n"
    empty = _tandemkv(cluster, "n1", "pubsub", "publish", "", "x")
    assert empty.returncode == 2 and empty.stderr.startswith("tandemkv: InvalidArgument: a topic must not be empty")
    assert len(empty.stderr.splitlines()) == 1
    history = _tandemkv(cluster, "n1", "pubsub", "subscribe", "t", "--from", "3")
    assert history.returncode == 2 and "--from is for --durable" in history.stderr


def test_with_a_majority_down_the_remaining_nodes_still_publish_to_each_other(cluster):
    for name in ("n3", "n4", "n5"):
        assert cluster.stop_node(name) == 0  # relay streams and subscriptions end cleanly
    with Client(cluster.endpoint("n1"), retry=NO_RETRY) as on_n1, \
            Client(cluster.endpoint("n2"), retry=NO_RETRY) as on_n2:
        with pytest.raises((errors.Unavailable, errors.OutcomeUnknown)):
            on_n1.put("k", "v")  # no quorum: the strong plane refuses
        with pytest.raises((errors.Unavailable, errors.OutcomeUnknown)):
            on_n1.pubsub.publish("room:9", "durable", durable=True)  # and so do durable topics
        reader = Reader(on_n1.pubsub.subscribe("room:9"), 20)
        for k in range(20):
            on_n2.pubsub.publish("room:9", f"{k}")
        assert [m.payload for m in reader.wait()] == [f"{k}".encode() for k in range(20)]


def test_a_subscription_whose_node_is_killed_ends_with_unavailable_sync_and_async(cluster):
    # Runs after the no-quorum test: n1 and n2 remain, and n2 is killed here.
    with Client(cluster.endpoint("n2"), retry=NO_RETRY) as on_n2:
        reader = Reader(on_n2.pubsub.subscribe("room:killed"), 1)

        async def subscribe_async():
            async with AsyncClient(cluster.endpoint("n2"), retry=NO_RETRY) as client:
                subscription = await client.pubsub.subscribe("room:killed")
                opened.set()
                with pytest.raises(errors.Unavailable, match="subscribe again"):
                    async for _ in subscription:
                        pass

        opened = threading.Event()
        outcome: list = []
        waiter = threading.Thread(target=lambda: outcome.append(asyncio.run(subscribe_async())), daemon=True)
        waiter.start()
        assert opened.wait(DELIVERY_TIMEOUT_S)
        cluster.kill("n2")
        reader._thread.join(DELIVERY_TIMEOUT_S)
        assert not reader._thread.is_alive()
        waiter.join(DELIVERY_TIMEOUT_S)
        assert not waiter.is_alive() and outcome == [None]
        assert isinstance(reader.error, errors.Unavailable), reader.error
