"""What a relay receiver says in the node's log when a peer's stream has a
hole: a subscriber sees a loss between nodes only as a jump in a
publisher's numbers, so the receiving node names the origin, where the hole
ends and how much of it the origin's queue dropped, when the frame after it
arrives. Two planes in one process behind grpc.aio servers on 127.0.0.1
(tests/test_pubsub_relay.py's harness); every wait is for a condition."""

from __future__ import annotations

import logging

from tandemkv.server.available.pubsub import GapCounter
from tests.test_pubsub_relay import collect, run, start_cluster


def test_a_hole_in_a_peer_stream_is_logged_with_its_origin_and_counts(caplog):
    async def scenario():
        cluster = await start_cluster(["a", "b"], start=False, a={"queue_messages_max": 10})
        a, b = cluster.planes["a"], cluster.planes["b"]
        try:
            subscription = b.subscribe(topics=(b"t",))
            for i in range(50):  # a's relay is not running yet: its queue to b drops the oldest 40
                a.publish(b"t", b"%d" % i)
            a.start()
            b.start()
            await collect(subscription, 10, GapCounter(from_start=True), [])
        finally:
            await cluster.stop()

    with caplog.at_level(logging.INFO, logger="tandemkv.server.available"):
        run(scenario)
    holes = [r.getMessage() for r in caplog.records if "messages missing" in r.getMessage()]
    assert holes == ["pubsub relay from a: messages missing before number 41 (its queue dropped 40 since its "
                     "last frame); so far 40 dropped by its queue, 0 lost in transit, 0 stale frames"]
    assert any(r.getMessage().startswith("pubsub relay from a (incarnation ") for r in caplog.records)
    assert any(r.getMessage().startswith("pubsub plane b stopping: ") for r in caplog.records)
