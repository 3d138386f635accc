"""A DNS server for tests on 127.0.0.1 (dnslib's UDP server in a thread):
A and SRV records the test adds and removes while it runs, NXDOMAIN for a
name it never added, an empty answer for a name with records of another
kind only. `SilentNameserver` takes questions and never answers (timeouts)."""

from __future__ import annotations

import socket
import threading

from dnslib import AAAA, QTYPE, RCODE, RR, A, SRV
from dnslib.server import BaseResolver, DNSLogger, DNSServer

TTL_S = 1


class Zone(BaseResolver):
    """Records by (name, kind); changes are seen by the next question."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], list[RR]] = {}

    def add_a(self, name: str, ip: str) -> None:
        self._add(name, "A", RR(_fqdn(name), QTYPE.A, rdata=A(ip), ttl=TTL_S))

    def add_aaaa(self, name: str, ip: str) -> None:
        self._add(name, "AAAA", RR(_fqdn(name), QTYPE.AAAA, rdata=AAAA(ip), ttl=TTL_S))

    def add_srv(self, name: str, target: str, port: int) -> None:
        self._add(name, "SRV", RR(_fqdn(name), QTYPE.SRV, ttl=TTL_S,
                                  rdata=SRV(priority=0, weight=10, port=port, target=_fqdn(target))))

    def clear(self, name: str, kind: str) -> None:
        """Drops `name`'s records of `kind`; the name stays known (empty answers, not NXDOMAIN)."""
        with self._lock:
            self._records[(_fqdn(name), kind)] = []

    def _add(self, name: str, kind: str, record: RR) -> None:
        with self._lock:
            self._records.setdefault((_fqdn(name), kind), []).append(record)

    def resolve(self, request, handler):  # dnslib's resolver interface
        reply = request.reply()
        name, kind = str(request.q.qname).lower(), QTYPE[request.q.qtype]
        with self._lock:
            known = any(key[0] == name for key in self._records)
            for record in self._records.get((name, kind), []):
                reply.add_answer(record)
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def _fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


class ZoneServer:
    """Serves `zone` on 127.0.0.1 (an ephemeral UDP port) while open."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self._server = DNSServer(zone, address="127.0.0.1", port=0, logger=DNSLogger(logf=lambda line: None))

    @property
    def nameserver(self) -> str:
        host, port = self._server.server.server_address
        return f"{host}:{port}"

    def __enter__(self) -> ZoneServer:
        self._server.start_thread()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()
        self._server.server.server_close()
        self._server.thread.join(timeout=10)


class SilentNameserver:
    """A UDP port on 127.0.0.1 that takes questions and never answers."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))

    @property
    def nameserver(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def __enter__(self) -> SilentNameserver:
        return self

    def __exit__(self, *exc) -> None:
        self._socket.close()
