"""Raft peers named by host name are looked up again after
limits.RAFT_DNS_CACHE_MS, so a member whose name moves to another address
(a Kubernetes pod restarted) is dialled at its new one; pysyncobj alone
kept an answer 600 s.

Method: one embedded node is started (building a replica sets the Raft
layer's cache times), then the lookups the Raft layer makes are watched
through server/raft/testing.py with a virtual clock and a name server
stand-in (`socket.getaddrinfo` answering for *.tandemkv.test only).
"""

from __future__ import annotations

import socket

import pytest

from tandemkv import limits
from tandemkv.server import Node, NodeConfig
from tandemkv.server.raft.testing import raft_dns_clock, raft_host_lookup
from tests.support.ports import free_ports

READY_TIMEOUT_S = 30.0
ZONE = ".tandemkv.test"
CACHE_S = limits.RAFT_DNS_CACHE_MS / 1000
FAIL_CACHE_S = limits.RAFT_DNS_FAIL_CACHE_MS / 1000


class Zone:
    """Answers getaddrinfo for names under ZONE from `records` (a missing
    name fails as a lookup does); counts the lookups."""

    def __init__(self, monkeypatch):
        self.records: dict[str, str] = {}
        self.lookups = 0
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            if not isinstance(host, str) or not host.endswith(ZONE):
                return real(host, port, *args, **kwargs)
            self.lookups += 1
            if host not in self.records:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.records[host], port or 0))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def raft_layer(tmp_path, monkeypatch):
    """A started node (so the cache times are the Raft layer's), a zone
    and a virtual clock for the cache: (zone, clock as a one-item list)."""
    raft_port, client_port = free_ports(2)
    node = Node(NodeConfig(name="n1", data_dir=tmp_path / "n1", raft_address=f"127.0.0.1:{raft_port}",
                           client_address=f"127.0.0.1:{client_port}"))
    node.start()
    now = [1_000_000.0]
    restore = raft_dns_clock(lambda: now[0])
    try:
        node.wait_ready(READY_TIMEOUT_S)
        yield Zone(monkeypatch), now
    finally:
        restore()
        node.stop()


def test_a_moved_host_name_is_dialled_at_its_new_address_once_the_cache_time_passed(raft_layer):
    zone, now = raft_layer
    name = "n2-moved" + ZONE
    zone.records[name] = "127.0.0.2"
    assert raft_host_lookup(name) == "127.0.0.2"
    zone.records[name] = "127.0.0.3"  # the pod restarted elsewhere
    now[0] += CACHE_S / 2
    assert raft_host_lookup(name) == "127.0.0.2"  # still within the cache time: not looked up
    assert zone.lookups == 1
    now[0] += CACHE_S / 2 + 0.001
    assert raft_host_lookup(name) == "127.0.0.3"
    assert zone.lookups == 2
    assert CACHE_S < 600  # pysyncobj's own, which kept the old address ten minutes


def test_a_name_that_stops_resolving_keeps_its_last_address_and_a_new_name_is_retried_soon(raft_layer):
    zone, now = raft_layer
    name, unknown = "n3-gone" + ZONE, "n4-new" + ZONE
    zone.records[name] = "127.0.0.4"
    assert raft_host_lookup(name) == "127.0.0.4"
    del zone.records[name]  # e.g. the record is gone while the pod restarts
    now[0] += CACHE_S + 0.001
    assert raft_host_lookup(name) == "127.0.0.4"
    assert raft_host_lookup(unknown) is None
    zone.records[unknown] = "127.0.0.5"  # a new member's record appears
    now[0] += FAIL_CACHE_S + 0.001
    assert raft_host_lookup(unknown) == "127.0.0.5"
