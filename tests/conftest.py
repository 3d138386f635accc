"""Shared fixtures: a gRPC server over a fake node (no Raft), and the
per-test timeout for tests that start real clusters."""

from __future__ import annotations

import grpc
import pytest

from tandemkv.server.api import build_server
from tests.support.fake_node import FakeNode


@pytest.fixture
def fake_node() -> FakeNode:
    return FakeNode()


@pytest.fixture
def fake_server(fake_node):
    """A started server on 127.0.0.1 over `fake_node`; yields its address."""
    server = build_server(fake_node, "127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop(grace_s=0)


@pytest.fixture
def channel(fake_server):
    with grpc.insecure_channel(fake_server) as channel:
        yield channel

