"""Best-effort pub/sub and presence through the embedded `Node`
(`node.pubsub`, `node.presence`), on three members in this process
(127.0.0.1), each served by `build_server` on its client address (the
relay and the presence exchange travel between members' client ports).

What is checked: a message published on one member reaches the
subscribers of its topic and of a matching prefix on every member, once
and in publish order; `publish_from` skips the sender's own subscription;
`local_only` stays on its node; a full buffer gives `Lagged` with exactly
the count dropped; the asyncio forms work from another loop; `close` from
another thread ends a blocked reader; a presence session's entries reach
every member, survive past the TTL while the node renews them, and leave
everywhere when the session closes; a stopped node's front doors say
Unavailable; bad input is InvalidArgument naming the limit.

Cross-node checks wait on conditions with deadlines (the relay and the
presence exchange are asynchronous)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument, Unavailable
from tandemkv.server.api import build_server
from tandemkv.server.node.presence import Diff
from tandemkv.server.node.pubsub import Lagged, Message
from tests.test_embedded_coordination import wait_until
from tests.support.ports import free_ports
from tests.test_embedded_node import Cluster

NODE_API_DOC = Path(__file__).resolve().parents[1] / "docs" / "node-api.md"
DOCS_EXAMPLE_TIMEOUT_S = 60.0
DELIVERY_WAIT_S = 20.0
MESSAGES = 200


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("embedded-pubsub"))
    cluster.start()
    servers = []
    try:
        for member in cluster.members:
            server = build_server(cluster.nodes[member.name], member.client_address)
            server.start()
            servers.append(server)
        yield cluster
    finally:
        for server in servers:
            server.stop(grace_s=0)
        cluster.stop()


def nodes(cluster):
    return [cluster.nodes[m.name] for m in cluster.members]


def read_until(subscription, count: int, timeout_s: float = DELIVERY_WAIT_S) -> list:
    events: list = []
    deadline = time.monotonic() + timeout_s
    while len(events) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"got {len(events)} of {count} events: {events[-3:]}"
        events += subscription.poll(timeout_s=min(left, 1.0))
    return events


def test_a_message_reaches_topic_and_prefix_subscribers_on_every_member_once_in_order(cluster):
    n0, n1, n2 = nodes(cluster)
    subscribers = [n1.pubsub.subscribe(topics=(b"room:1",)), n2.pubsub.subscribe(prefixes=(b"room:",)),
                   n0.pubsub.subscribe(topics=(b"room:1",))]
    try:
        # The relay to a member connects in the background: wait until a
        # probe published on n0 reaches both remote subscribers.
        def probed() -> bool:
            n0.pubsub.publish(b"room:1", b"probe")
            return all(any(e.payload == b"probe" for e in s.poll(timeout_s=0.2)) for s in subscribers[:2])
        wait_until(probed, DELIVERY_WAIT_S, "the relay from n0 to n1 and n2")
        for subscription in subscribers:
            subscription.poll(timeout_s=0)  # drop the probes still buffered
        receipts = [n0.pubsub.publish(b"room:1", b"m%d" % i) for i in range(MESSAGES)]
        assert [r.message.seq for r in receipts] == list(range(receipts[0].message.seq,
                                                               receipts[0].message.seq + MESSAGES))
        assert all(r.delivered_locally == 1 for r in receipts)  # n0's own subscriber
        for subscription in subscribers:
            events = [e for e in read_until(subscription, MESSAGES) if e.payload != b"probe"]
            assert all(isinstance(e, Message) for e in events)
            assert [e.payload for e in events] == [b"m%d" % i for i in range(MESSAGES)]
            assert [e.seq for e in events] == [r.message.seq for r in receipts]
            assert subscription.poll(timeout_s=0.3) == []  # once, not twice
    finally:
        for subscription in subscribers:
            subscription.close()


def test_publish_from_skips_the_sender_and_local_only_stays_on_its_node(cluster):
    n0, n1, _ = nodes(cluster)
    mine, other, remote = (n0.pubsub.subscribe((b"chat",)), n0.pubsub.subscribe((b"chat",)),
                           n1.pubsub.subscribe((b"chat",)))
    try:
        receipt = n0.pubsub.publish_from(mine, b"chat", b"from me")
        assert receipt.delivered_locally == 1
        assert [e.payload for e in other.poll(timeout_s=5)] == [b"from me"]
        assert [e.payload for e in read_until(remote, 1)] == [b"from me"]
        n0.pubsub.publish(b"chat", b"here only", local_only=True)
        n0.pubsub.publish(b"chat", b"everywhere")
        # The relay keeps n0's order, so once "everywhere" arrived on n1 the
        # local-only message would have been before it.
        assert [e.payload for e in read_until(remote, 1)] == [b"everywhere"]
        assert [e.payload for e in read_until(other, 2)] == [b"here only", b"everywhere"]
        assert [e.payload for e in read_until(mine, 2)] == [b"here only", b"everywhere"]
    finally:
        for subscription in (mine, other, remote):
            subscription.close()


def test_a_full_buffer_drops_the_oldest_and_says_how_many(cluster):
    n0 = nodes(cluster)[0]
    extra = 25
    total = limits.PUBSUB_SUBSCRIBER_BUFFER_MESSAGES_MAX + extra
    with n0.pubsub.subscribe((b"flood",)) as subscription:
        for i in range(total):
            n0.pubsub.publish(b"flood", b"%d" % i, local_only=True)
        events = read_until(subscription, 1)
        while True:
            more = subscription.poll(timeout_s=0)
            if not more:
                break
            events += more
    lagged = [e for e in events if isinstance(e, Lagged)]
    messages = [e for e in events if isinstance(e, Message)]
    assert sum(e.missed for e in lagged) == extra
    assert len(messages) + extra == total
    assert [e.payload for e in messages] == [b"%d" % i for i in range(extra, total)]  # the newest kept


def test_the_asyncio_forms_work_from_another_loop_and_close_ends_a_blocked_reader(cluster):
    n0, n1, _ = nodes(cluster)

    async def exchange() -> list[bytes]:
        subscription = await n1.pubsub.subscribe_async((b"async",))
        got = []
        try:
            deadline = time.monotonic() + DELIVERY_WAIT_S
            while not got:
                assert time.monotonic() < deadline, "n1 never got a message of n0"
                await n0.pubsub.publish_async(b"async", b"ping")
                got = [e.payload for e in await subscription.poll_async(timeout_s=0.3) if isinstance(e, Message)]
        finally:
            subscription.close()
        return got

    assert set(asyncio.run(exchange())) == {b"ping"}

    blocked = n0.pubsub.subscribe((b"quiet",))
    seen: list = []
    reader = threading.Thread(target=lambda: seen.extend(blocked), daemon=True)
    reader.start()
    blocked.close()
    reader.join(timeout=10)
    assert not reader.is_alive() and seen == []


def test_bad_topics_and_payloads_are_refused_naming_the_limit(cluster):
    n0 = nodes(cluster)[0]
    with pytest.raises(InvalidArgument) as topic_refused:
        n0.pubsub.publish(b"t" * (limits.PUBSUB_TOPIC_BYTES_MAX + 1), b"x")
    assert topic_refused.value.limit == "PUBSUB_TOPIC_BYTES_MAX"
    with pytest.raises(InvalidArgument) as message_refused:
        n0.pubsub.publish(b"t", b"x" * (limits.PUBSUB_MESSAGE_BYTES_MAX + 1))
    assert message_refused.value.limit == "PUBSUB_MESSAGE_BYTES_MAX"
    with pytest.raises(InvalidArgument, match="bytes, not str"):
        n0.pubsub.publish("text", b"x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as ttl_refused:
        n0.presence.session(ttl_ms=1)
    assert ttl_refused.value.limit == "PRESENCE_SESSION_TTL_MS_MAX"


def test_presence_entries_reach_every_member_stay_while_renewed_and_leave_when_closed(cluster):
    n0, n1, n2 = nodes(cluster)
    ttl_ms = limits.PRESENCE_SESSION_TTL_MS_MIN
    with n1.presence.watch(b"lobby") as watch:
        assert watch.state == {}
        session = n0.presence.session(ttl_ms=ttl_ms)
        ref = session.track(b"lobby", b"ann", b'{"status": "online"}')
        with pytest.raises(FailedPrecondition):
            session.track(b"lobby", b"ann", b"again")
        for node in (n1, n2):
            wait_until(lambda: [m.meta for m in node.presence.list(b"lobby").get(b"ann", [])]
                       == [b'{"status": "online"}'], DELIVERY_WAIT_S, f"ann on {node.config.name}")
        assert str(n2.presence.list(b"lobby")[b"ann"][0].ref) == ref
        # Renewed by n0 every third of the TTL: three TTLs pass with no leave.
        leaves, joins = [], []
        window_end = time.monotonic() + 3 * ttl_ms / 1000
        while time.monotonic() < window_end:
            for item in watch.poll(timeout_s=0.2):
                assert isinstance(item, Diff)
                joins += list(item.joins)
                leaves += list(item.leaves)
        assert joins == [b"ann"] and leaves == []
        assert b"ann" in n2.presence.list(b"lobby")
        session.close()
        for node in (n0, n1, n2):
            wait_until(lambda: b"ann" not in node.presence.list(b"lobby"), DELIVERY_WAIT_S,
                       f"ann gone from {node.config.name}")
        left = next(item for item in watch if isinstance(item, Diff) and item.leaves)
        assert list(left.leaves) == [b"ann"]


def test_a_stopped_node_says_unavailable(tmp_path):
    from tests.test_embedded_node import Cluster as OneCluster
    single = OneCluster(tmp_path, size=1)
    single.start()
    node = single.nodes["n0"]
    node.pubsub.publish(b"t", b"x")
    single.stop()
    with pytest.raises(Unavailable, match="not running"):
        node.pubsub.publish(b"t", b"x")
    with pytest.raises(Unavailable, match="not running"):
        node.presence.list(b"t")


def test_the_node_api_docs_example_runs_as_written(tmp_path):
    section = NODE_API_DOC.read_text().split("## Pub/sub and presence", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    raft_port, client_port = free_ports(2)
    code = code.replace("127.0.0.1:7202", f"127.0.0.1:{raft_port}")
    code = code.replace("127.0.0.1:8202", f"127.0.0.1:{client_port}")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=DOCS_EXAMPLE_TIMEOUT_S)
    assert result.returncode == 0, f"{code}\n{result.stderr}"
    assert (tmp_path / "data" / "pubsub-n1").is_dir()
