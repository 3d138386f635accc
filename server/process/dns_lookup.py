"""The DNS questions discovery asks (server/process/discovery.py): A/AAAA
and SRV records through dnspython, of the system's nameservers or of one
given as 'ip[:port]', each question bounded by DISCOVERY_RESOLVE_TIMEOUT_MS.
Every failure becomes a DiscoveryError whose one line says what was asked
of whom and what came back (NXDOMAIN, no records, no reply in time)."""

from __future__ import annotations

import ipaddress
from typing import Any, Protocol

from tandemkv import limits


class DiscoveryError(ValueError):
    """A discovery setting or answer the operator must fix; the text says what."""


class NoRecords(DiscoveryError):
    """The name exists but has no records of the kind asked for."""


class NoSuchName(DiscoveryError):
    """The name does not exist (NXDOMAIN)."""


class Lookup(Protocol):
    def addresses(self, name: str) -> list[str]: ...

    def services(self, name: str) -> list[tuple[str, int]]: ...


class DnsLookup:
    """A and SRV questions through dnspython, each bounded by `timeout_ms`
    (every nameserver and retry included); failures become DiscoveryError."""

    def __init__(self, nameserver: str | None = None,
                 timeout_ms: int = limits.DISCOVERY_RESOLVE_TIMEOUT_MS) -> None:
        import dns.resolver  # here, not at the top: only a node that discovers needs it

        self._timeout_s = timeout_ms / 1000
        self._where = f"nameserver {nameserver}" if nameserver else "the system's nameservers"
        if nameserver:
            host, port = _split_nameserver(nameserver)
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [host]
            self._resolver.port = port
        else:
            try:
                self._resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration as error:
                raise DiscoveryError(f"cannot read the system's resolver configuration ({error}); "
                                     "set discovery_nameserver") from None
        self._resolver.lifetime = self._timeout_s
        self._resolver.timeout = self._timeout_s

    def addresses(self, name: str) -> list[str]:
        """IPv4 addresses; IPv6 ones only for a name without any (a
        dual-stack host is one member, not two)."""
        try:
            return sorted({record.to_text() for record in self._ask(name, "A")})
        except NoRecords as no_a_records:
            try:
                return sorted({record.to_text() for record in self._ask(name, "AAAA")})
            except NoRecords:
                raise no_a_records from None

    def services(self, name: str) -> list[tuple[str, int]]:
        return sorted({(record.target.to_text().rstrip("."), int(record.port))
                       for record in self._ask(name, "SRV")})

    def _ask(self, name: str, kind: str) -> Any:
        import dns.exception
        import dns.resolver

        asked = f"{kind} records of {name!r} from {self._where}"
        try:
            return self._resolver.resolve(name, kind, search=False)
        except dns.resolver.NXDOMAIN:
            raise NoSuchName(f"no {asked}: the name does not exist (NXDOMAIN)") from None
        except dns.resolver.NoAnswer:
            raise NoRecords(f"no {asked}: the name exists but has none") from None
        except dns.resolver.LifetimeTimeout:
            raise DiscoveryError(f"no {asked}: no reply within {self._timeout_s * 1000:.0f} ms "
                                 "(DISCOVERY_RESOLVE_TIMEOUT_MS); is the nameserver reachable?") from None
        except dns.resolver.NoNameservers as error:
            raise DiscoveryError(f"no {asked}: every nameserver failed ({error})") from None
        except dns.exception.DNSException as error:
            raise DiscoveryError(f"no {asked}: {error}") from None


def _split_nameserver(text: str) -> tuple[str, int]:
    host, port = text, 53
    if text.count(":") == 1 or text.startswith("["):
        head, _, tail = text.rpartition(":")
        if not tail.isdigit() or not 0 < int(tail) < 65536:
            raise DiscoveryError(f"discovery_nameserver must be 'ip' or 'ip:port', got {text!r}")
        host, port = head.strip("[]"), int(tail)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise DiscoveryError(f"discovery_nameserver must be an IP address (and port), got {text!r}") from None
    return host, port
