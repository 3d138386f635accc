"""Who the other members are: a static list, or DNS.

Three strategies, chosen by the `discovery` setting (after libcluster's
Static, DNSPoll / Kubernetes.DNS and Kubernetes.DNSSRV):

- `static`: the `peers` setting, as written.
- `dns:NAME`: the A records of NAME, or AAAA if it has none (a headless
  service, a round-robin name); every address is a member that uses this
  node's own Raft and client ports, named by `discovery_name_template`
  (`{ip}` by default). The questions themselves are in dns_lookup.py.
- `dns-srv:NAME`: the SRV records `_raft._tcp.NAME` (and `_client._tcp.NAME`
  for client ports, else this node's client port); every target is a member
  named by the target's first label (a StatefulSet pod: `tandemkv-0`), its
  Raft address the target name (`discovery_srv_target = host`, stable across
  restarts) or the target's address from the same nameserver (`ip`).

At start `members_at_start` asks until the answer lists this node and at
least `discovery_expect` members (a new cluster's size, as Consul's
bootstrap_expect), pausing with a doubling backoff; a bad answer (no such
name, no records, no reply in time) is reported in one line each time and,
after `discovery_start_wait_ms`, ends the start with that line. A running
node asks again every DISCOVERY_POLL_INTERVAL_MS (`DiscoveryPoller`) and
hands each change to a callback. A failed or empty answer changes nothing:
a member is never dropped because DNS hiccuped (libcluster's DNSPoll prunes
on every answer). Nothing here changes the Raft configuration; what a change
should do is the callback's business (docs/discovery.md).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, Callable

from tandemkv import limits
from tandemkv.server.node.config import Member
# The DNS questions themselves (dnspython) live in dns_lookup.py; their names are used from here too.
from tandemkv.server.process.dns_lookup import DiscoveryError, DnsLookup, Lookup, NoRecords, NoSuchName

STATIC, DNS, DNS_SRV = "static", "dns", "dns-srv"
SRV_TARGET_HOST, SRV_TARGET_IP = "host", "ip"
RAFT_SERVICE, CLIENT_SERVICE = "_raft._tcp.", "_client._tcp."
DEFAULT_NAME_TEMPLATE = "{ip}"
DEFAULT_START_WAIT_MS = 5 * 60 * 1000
FIRST_BACKOFF_MS = 250

log = logging.getLogger("tandemkv.discovery")


class DiscoveryMismatch(DiscoveryError):
    """DNS lists this node under another name or address than its settings:
    asking again cannot fix that."""


@dataclasses.dataclass(frozen=True)
class DiscoverySpec:
    strategy: str
    name: str = ""


def parse_discovery(text: str) -> DiscoverySpec:
    """'static', 'dns:NAME' or 'dns-srv:NAME'."""
    strategy, sep, name = text.strip().partition(":")
    if strategy == STATIC and not sep:
        return DiscoverySpec(STATIC)
    if strategy in (DNS, DNS_SRV) and name.strip(" ."):
        return DiscoverySpec(strategy, name.strip().rstrip("."))
    raise ValueError(f"discovery {text!r} must be 'static', 'dns:NAME' or 'dns-srv:NAME'")


@dataclasses.dataclass(frozen=True)
class MembershipChange:
    """What one new answer changed: members that appeared, members that
    left (a member whose addresses changed is in both), and the whole list."""

    added: tuple[Member, ...]
    removed: tuple[Member, ...]
    members: tuple[Member, ...]


def diff(before: tuple[Member, ...], after: tuple[Member, ...]) -> MembershipChange:
    return MembershipChange(added=tuple(m for m in after if m not in before),
                            removed=tuple(m for m in before if m not in after), members=after)


def _port_of(address: str, setting: str) -> int:
    _, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise DiscoveryError(f"{setting} must be 'host:port' for DNS discovery, got {address!r}")
    return int(port)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclasses.dataclass(frozen=True)
class DnsAddresses:
    """`dns:NAME`: every address of NAME is a member on these ports."""

    name: str
    raft_port: int
    client_port: int | None
    name_template: str = DEFAULT_NAME_TEMPLATE

    def members(self, lookup: Lookup) -> tuple[Member, ...]:
        found = []
        for ip in _bounded(lookup.addresses(self.name), self.name):
            member_name = self.name_template.format(ip=ip, ip_dashed=ip.replace(".", "-").replace(":", "-"))
            client = _join(ip, self.client_port) if self.client_port else ""
            found.append(Member(member_name, _join(ip, self.raft_port), client))
        return tuple(sorted(found, key=lambda m: m.name))


@dataclasses.dataclass(frozen=True)
class DnsServices:
    """`dns-srv:NAME`: every target of `_raft._tcp.NAME` is a member."""

    name: str
    client_port: int | None
    target: str = SRV_TARGET_HOST

    def members(self, lookup: Lookup) -> tuple[Member, ...]:
        raft = _bounded(lookup.services(RAFT_SERVICE + self.name), RAFT_SERVICE + self.name)
        try:
            client_ports = dict(lookup.services(CLIENT_SERVICE + self.name))
        except (NoSuchName, NoRecords):
            client_ports = {}  # no client port records: every member uses this node's
            # (a timeout is no answer, not an empty one: it fails this answer instead)
        found = []
        for host, raft_port in raft:
            client_port = client_ports.get(host, self.client_port)
            address = host if self.target == SRV_TARGET_HOST else lookup.addresses(host)[0]
            client = _join(address, client_port) if client_port else ""
            found.append(Member(host.split(".")[0], _join(address, raft_port), client))
        names = [m.name for m in found]
        if len(names) != len(set(names)):
            raise DiscoveryError(f"SRV targets of {RAFT_SERVICE + self.name} share a first label "
                                 f"({sorted(names)}); each target's first label names its member")
        return tuple(sorted(found, key=lambda m: m.name))


def _bounded(records: list, name: str) -> list:
    if len(records) > limits.DISCOVERY_MEMBERS_MAX:
        raise DiscoveryError(f"{name} lists {len(records)} members, more than DISCOVERY_MEMBERS_MAX "
                             f"({limits.DISCOVERY_MEMBERS_MAX}); is it the right name?")
    return records


Strategy = DnsAddresses | DnsServices


def strategy_for(values: dict[str, Any]) -> Strategy | None:
    """The DNS strategy the settings ask for, or None for static peers."""
    spec = values.get("discovery") or DiscoverySpec(STATIC)
    if isinstance(spec, str):  # from the TOML file, which settings.py passes as written
        spec = parse_discovery(spec)
    if spec.strategy == STATIC:
        return None
    if values.get("peers"):
        raise DiscoveryError("peers and DNS discovery exclude each other: drop the peers setting "
                             "or use --discovery static")
    for key in ("name", "raft_address"):
        if not values.get(key):
            raise DiscoveryError(f"DNS discovery needs this node's {key} (--{key.replace('_', '-')})")
    client_port = _port_of(values["client_address"], "client_address") if values.get("client_address") else None
    if spec.strategy == DNS:
        template = values.get("discovery_name_template", DEFAULT_NAME_TEMPLATE)
        try:
            template.format(ip="192.0.2.1", ip_dashed="192-0-2-1")
        except (KeyError, IndexError, ValueError) as error:
            raise DiscoveryError(f"discovery_name_template {template!r} may use only {{ip}} and "
                                 f"{{ip_dashed}} ({error!r})") from None
        return DnsAddresses(spec.name, _port_of(values["raft_address"], "raft_address"), client_port, template)
    target = values.get("discovery_srv_target", SRV_TARGET_HOST)
    if target not in (SRV_TARGET_HOST, SRV_TARGET_IP):
        raise DiscoveryError(f"discovery_srv_target must be {SRV_TARGET_HOST!r} or {SRV_TARGET_IP!r}, "
                             f"got {target!r}")
    return DnsServices(spec.name, client_port, target)


def usable_start(members: tuple[Member, ...], name: str, raft_address: str, expect: int) -> str | None:
    """Why `members` cannot start this node yet, or None if it can."""
    me = [m for m in members if m.name == name or m.raft_address == raft_address]
    if not me:
        return (f"the answer ({', '.join(m.name for m in members)}) does not list this node "
                f"({name} at {raft_address}) yet")
    if (me[0].name, me[0].raft_address) != (name, raft_address):
        raise DiscoveryMismatch(f"DNS lists this node as {me[0].name} at {me[0].raft_address}, but its "
                                f"settings say {name} at {raft_address}: Raft knows members by address, "
                                "so set name and raft_address to what DNS lists")
    if len(members) < expect:
        return f"the answer lists {len(members)} of the {expect} members expected (discovery_expect)"
    return None


def members_at_start(values: dict[str, Any], lookup: Lookup, report: Callable[[str], None],
                     sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic) -> tuple[Member, ...]:
    """Asks until the answer can start this node (see `usable_start`), or
    raises DiscoveryError with the last reason once the start wait is over."""
    strategy = strategy_for(values)
    assert strategy is not None, "static peers need no discovery"
    expect = values.get("discovery_expect")
    if not expect or expect < 1:
        raise DiscoveryError("DNS discovery needs discovery_expect (--discovery-expect / "
                             "TANDEMKV_DISCOVERY_EXPECT): how many members a new cluster starts with")
    wait_s = values.get("discovery_start_wait_ms", DEFAULT_START_WAIT_MS) / 1000
    deadline = clock() + wait_s
    pause_ms = FIRST_BACKOFF_MS
    while True:
        try:
            members = strategy.members(lookup)
            reason = usable_start(members, values["name"], values["raft_address"], expect)
        except DiscoveryMismatch:
            raise
        except DiscoveryError as error:
            reason = str(error)
        if reason is None:
            return members
        if clock() + pause_ms / 1000 > deadline:
            raise DiscoveryError(f"discovery gave up after {wait_s:.0f} s (discovery_start_wait_ms): {reason}")
        report(f"discovery: {reason}; asking again in {pause_ms / 1000:.2f} s")
        sleep(pause_ms / 1000)
        pause_ms = min(2 * pause_ms, limits.DISCOVERY_RETRY_BACKOFF_MS_MAX)


def peers_at_start(values: dict[str, Any], report: Callable[[str], None]) -> dict[str, Any]:
    """`values` with `peers` filled from DNS when DNS discovery is set
    (unchanged for static peers); DiscoveryError says what to fix."""
    if strategy_for(values) is None:
        return values
    lookup = DnsLookup(values.get("discovery_nameserver"))
    members = members_at_start(values, lookup, report)
    return {**values, "peers": tuple(m for m in members if m.name != values["name"])}


class DiscoveryPoller:
    """Asks DNS again every `interval_ms` in a thread of its own and calls
    `on_change` with each `MembershipChange`. A failed or empty answer is
    logged (once per run of failures) and changes nothing."""

    def __init__(self, strategy: Strategy, lookup: Lookup, members: tuple[Member, ...],
                 on_change: Callable[[MembershipChange], None],
                 interval_ms: int = limits.DISCOVERY_POLL_INTERVAL_MS) -> None:
        self._strategy, self._lookup, self._on_change = strategy, lookup, on_change
        self._interval_s = interval_ms / 1000
        self._members = tuple(sorted(members, key=lambda m: m.name))
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tandemkv-discovery", daemon=True)
        self._failing = False

    @property
    def members(self) -> tuple[Member, ...]:
        return self._members

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            self.poll_once()

    def poll_once(self) -> MembershipChange | None:
        """One question; the change it found, if any (tests call it directly)."""
        try:
            members = self._strategy.members(self._lookup)
        except DiscoveryError as error:
            if not self._failing:
                log.warning("discovery: %s; keeping the %d members known", error, len(self._members))
            self._failing = True
            return None
        if self._failing:
            log.info("discovery: answering again")
        self._failing = False
        change = diff(self._members, members)
        if not change.added and not change.removed:
            return None
        self._members = members
        try:
            self._on_change(change)
        except Exception:  # a broken callback must not end discovery
            log.exception("discovery: the change callback failed")
        return change


def log_change(change: MembershipChange) -> None:
    """The callback until runtime membership takes changes (docs/discovery.md)."""
    for member in change.added:
        log.warning("discovery: %s appeared at %s; it becomes a member only through a membership "
                    "change", member.name, member.raft_address)
    for member in change.removed:
        log.warning("discovery: %s (%s) no longer listed; it stays a member until removed",
                    member.name, member.raft_address)


def poller_for(values: dict[str, Any], members: tuple[Member, ...],
               on_change: Callable[[MembershipChange], None] = log_change) -> DiscoveryPoller | None:
    """A poller for a node started with DNS discovery (None for static peers)."""
    strategy = strategy_for({**values, "peers": ()})  # peers_at_start filled them from DNS
    if strategy is None:
        return None
    return DiscoveryPoller(strategy, DnsLookup(values.get("discovery_nameserver")), members, on_change)
