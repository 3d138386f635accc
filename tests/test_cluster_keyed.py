"""Keyed CRDT tables on a real 3-node cluster of `tandemkv serve` processes,
through the SDK: the README's per-user pattern as one keyed table, past
CRDT_TABLES_MAX users; 10,000 keys written across the nodes (a writer per
node) converge on every node; a prefix subscription streams the changed
keys only, sync and asyncio; removal and paging; bad shapes are refused
with FAILED_PRECONDITION / INVALID_ARGUMENT naming what to fix.

Method: one cluster for the module; every cross-node check polls each
node's scan or read until it matches or a deadline passes (keyed gossip
rounds are 1 s)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from tandemkv import errors, limits
from tandemkv.client import AsyncClient, Client
from tests.support.cluster import ServeCluster
from tests.test_embedded_coordination import wait_until

LEADER_TIMEOUT_S = 60.0
KEYS_IN_CI = 10_000
CONVERGE_TIMEOUT_S = 60.0
SUBSCRIBE_WAIT_S = 15.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("keyed"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield cluster


def count_keys(endpoint: str, table: str, prefix: bytes = b"") -> int:
    with Client([endpoint]) as client:
        try:
            return sum(1 for _ in client.crdt.keyed(table, "map").items(prefix))
        except errors.NotFound:
            return 0


def test_the_per_user_pattern_is_one_keyed_table_past_the_table_limit(cluster):
    users = limits.CRDT_TABLES_MAX + 44
    with Client(cluster.endpoints) as client:
        profiles = client.crdt.keyed("profiles", "map")
        for index in range(users):
            profiles.key(f"user:{index:04d}").put(b"name", f"user {index}".encode())
        assert profiles.key("user:0007").get(b"name") == b"user 7"
        assert profiles.key("user:9999").items() == {}  # absent: the type's empty value
        assert [name for name in client.crdt.list() if name.startswith("profiles")] == ["profiles"]
        page = profiles.scan(b"user:00", limit=50)
        assert [key for key, _ in page.items] == [f"user:{i:04d}".encode() for i in range(50)]
        assert page.resume_after == b"user:0049"
        rest = profiles.scan(b"user:00", after=page.resume_after)
        assert [key for key, _ in rest.items] == [f"user:{i:04d}".encode() for i in range(50, 100)]
        profiles.remove("user:0001")
        assert profiles.key("user:0001").items() == {}
        with pytest.raises(errors.FailedPrecondition, match="keyed table"):
            client.crdt.map("profiles").put(b"name", b"x")  # the single-value recipe on a keyed table
        with pytest.raises(errors.InvalidArgument, match="256"):
            profiles.key(b"k" * 300).put(b"f", b"v")
    for endpoint in cluster.endpoints:
        wait_until(lambda: count_keys(endpoint, "profiles") == users - 1, CONVERGE_TIMEOUT_S,
                   f"{users - 1} profiles on {endpoint}")


def test_ten_thousand_keys_written_across_nodes_converge_on_every_node(cluster):
    with Client([cluster.endpoints[0]]) as client:
        client.crdt.keyed("bulk", "map").create()

    def write(node: int) -> None:
        with Client([cluster.endpoints[node]]) as client:
            table = client.crdt.keyed("bulk", "map")
            for index in range(node, KEYS_IN_CI, len(cluster.endpoints)):
                table.key(b"k:%05d" % index).put(b"v", str(index).encode())

    with concurrent.futures.ThreadPoolExecutor(len(cluster.endpoints)) as pool:
        list(pool.map(write, range(len(cluster.endpoints))))
    for endpoint in cluster.endpoints:
        wait_until(lambda: count_keys(endpoint, "bulk") == KEYS_IN_CI, CONVERGE_TIMEOUT_S,
                   f"{KEYS_IN_CI} keys on {endpoint} (last: {count_keys(endpoint, 'bulk')})")
    with Client([cluster.endpoints[2]]) as client:
        assert client.crdt.keyed("bulk", "map").key(b"k:04321").get(b"v") == b"4321"


def test_a_prefix_subscription_streams_changed_keys_only(cluster):
    with Client([cluster.endpoints[0]]) as writer, Client([cluster.endpoints[1]]) as reader:
        rooms = writer.crdt.keyed("rooms", "set")
        rooms.create()
        wait_until(lambda: _known(reader, "rooms"), SUBSCRIBE_WAIT_S, "rooms known on the reader's node")
        events: list = []
        started = threading.Event()

        def follow() -> None:
            for change in reader.crdt.keyed("rooms", "set").subscribe(prefix=b"room:1:"):
                events.append(change)
                started.set()
                if any(e.key == b"room:1:members" and e.value == [b"ann", b"cyd"] for e in events):
                    return

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        assert started.wait(SUBSCRIBE_WAIT_S) and events[0].resync
        rooms.key(b"room:1:members").add(b"ann")
        rooms.key(b"room:2:members").add(b"bob")
        rooms.key(b"room:1:members").add(b"cyd")
        thread.join(CONVERGE_TIMEOUT_S)
        assert not thread.is_alive(), f"the change did not arrive: {events}"
        assert {e.key for e in events[1:]} == {b"room:1:members"}


def _known(client: Client, table: str) -> bool:
    try:
        client.crdt.keyed(table, "set").scan()
        return True
    except errors.NotFound:
        return False


def test_the_async_sdk_reads_writes_and_follows_a_key(cluster):
    async def use():
        async with AsyncClient([cluster.endpoints[2]]) as client:
            hits = client.crdt.keyed("hits", "counter")
            await hits.key("page:/").incr(3)
            await hits.key("page:/about").incr(1)
            seen = []
            async for change in hits.subscribe(key="page:/"):
                seen.append(change.value)
                if change.value == 3:
                    await hits.key("page:/").incr(2)
                if change.value == 5:
                    break
            page = await hits.scan(b"page:")
            with pytest.raises(errors.FailedPrecondition, match="cannot be removed"):
                await hits.remove("page:/")
            return seen, page.items

    seen, items = asyncio.run(use())
    assert seen == [3, 5]
    assert items == [(b"page:/", 5), (b"page:/about", 1)]
