"""A node stopped cleanly (SIGTERM) takes its presence entries off the other
nodes at once, by its goodbye, not after PRESENCE_NODE_DOWN_MS; started
again (a new incarnation), what it tracks is listed everywhere, untouched
by its old goodbye.

Method: three `tandemkv serve` processes (tests/support/cluster.py); an
entry tracked through n3 by a client that knows only n3; SIGTERM to n3's
process, then the other nodes' lists are polled under a deadline of half
the down bound, counted from the signal. A node that only died would keep
the entry there for the whole down bound, so the deadline tells a goodbye
from a lapse however loaded the machine.
"""

from __future__ import annotations

import signal
import time

import pytest

from tandemkv import errors, limits
from tandemkv.client import Client
from tests.support.cluster import STOP_TIMEOUT_S, ServeCluster

START_TIMEOUT_S = 120.0
# What a loaded shared machine may add to a bound (ticks, scheduling, RPCs).
MARGIN_S = 10.0
SPREAD_TIMEOUT_S = limits.PRESENCE_HEARTBEAT_MS / 1000 * 3 + MARGIN_S
# Well below the down bound: only a goodbye takes the entry off this fast.
GOODBYE_TIMEOUT_S = limits.PRESENCE_NODE_DOWN_MS / 2000
POLL_S = 0.05


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("presence-goodbye"), nodes=3) as cluster:
        cluster.wait_for_leader(START_TIMEOUT_S)
        yield cluster


def wait_until(condition, timeout_s: float, what: str, since: float | None = None):
    deadline = (since if since is not None else time.monotonic()) + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.1f} s"
        time.sleep(POLL_S)


def keys_on(client: Client, topic: str) -> set[bytes]:
    return set(client.presence.list(topic))


def test_a_node_stopped_with_sigterm_takes_its_entries_off_the_others_at_once(cluster):
    others = {name: Client(cluster.endpoint(name)) for name in ("n1", "n2")}
    tracker = Client(cluster.endpoint("n3"))
    try:
        tracker.presence.track("room:bye", "erin", {"status": "online"})
        for name, client in others.items():
            wait_until(lambda: keys_on(client, "room:bye") == {b"erin"}, SPREAD_TIMEOUT_S, f"erin listed on {name}")
        signalled = time.monotonic()
        cluster.processes["n3"].send_signal(signal.SIGTERM)
        for name, client in others.items():
            wait_until(lambda: not keys_on(client, "room:bye"), GOODBYE_TIMEOUT_S,
                       f"erin gone from {name} after n3's SIGTERM (a lapse would take "
                       f"{limits.PRESENCE_NODE_DOWN_MS} ms)", since=signalled)
        assert cluster.processes["n3"].wait(STOP_TIMEOUT_S) == 0
    finally:
        tracker.close()

    # Started again, n3 is a new incarnation: its goodbye does not hide what it tracks now.
    cluster.restart("n3")
    with Client(cluster.endpoint("n3")) as again:
        fay = wait_until(lambda: _track_when_up(again), START_TIMEOUT_S, "n3 takes a track")
        assert fay.ref.startswith("n3.")
        try:
            for name, client in others.items():
                wait_until(lambda: keys_on(client, "room:bye") == {b"fay"}, SPREAD_TIMEOUT_S,
                           f"fay, tracked through the restarted n3, listed on {name}")
        finally:
            fay.untrack()
    for client in others.values():
        client.close()


def _track_when_up(client: Client):
    """fay's handle once n3 answers (it may still be starting); None until then."""
    try:
        return client.presence.track("room:bye", "fay")
    except errors.Unavailable:
        return None
