"""The clients build one generated stub per (service, channel) and reuse it:
building a stub per call cost a fifth of a job worker's GIL time.

Method: the sync and asyncio clients against an endpoint nobody listens on
(a channel connects lazily, so no server is needed); the stub is compared
by identity across calls, services and a close that drops the channels.
"""

from __future__ import annotations

import asyncio

from tandemkv.client import AsyncClient, Client
from tandemkv.client._stubs import StubCache

ENDPOINT = "127.0.0.1:9"  # never dialled: a stub call is never made


def test_the_sync_client_serves_repeated_calls_with_the_same_stub_and_a_reopened_channel_gets_a_new_one():
    client = Client([ENDPOINT], pipeline=False, tls=False)
    try:
        first = client.stub("Jobs", ENDPOINT)
        assert client.stub("Jobs", ENDPOINT) is first
        assert client.stub("KV", ENDPOINT) is not first
        channel = client._channel(ENDPOINT)
        client.close()  # drops its channels; the next call opens a new one
        assert client._channel(ENDPOINT) is not channel
        again = client.stub("Jobs", ENDPOINT)
        assert again is not first
        assert client.stub("Jobs", ENDPOINT) is again
    finally:
        client.close()


def test_the_async_client_serves_repeated_calls_with_the_same_stub_and_a_reopened_channel_gets_a_new_one():
    async def scenario():
        client = AsyncClient([ENDPOINT], pipeline=False, tls=False)
        try:
            first = client.stub("Jobs", ENDPOINT)
            assert client.stub("Jobs", ENDPOINT) is first
            assert client.stub("Lease", ENDPOINT) is not first
            await client.close()
            again = client.stub("Jobs", ENDPOINT)
            assert again is not first
            assert client.stub("Jobs", ENDPOINT) is again
        finally:
            await client.close()
    asyncio.run(scenario())


def test_the_cache_builds_a_stub_once_per_service_and_channel():
    built = []

    def make(channel):
        built.append(channel)
        return object()
    cache = StubCache({"A": make, "B": make})
    one, two = object(), object()
    assert cache.get("A", one) is cache.get("A", one)
    assert cache.get("A", two) is not cache.get("A", one)
    assert cache.get("B", one) is not cache.get("A", one)
    assert len(built) == 3
    cache.clear()
    cache.get("A", one)
    assert len(built) == 4
