"""DNS discovery (server/process/discovery.py) against a DNS server each test
starts on 127.0.0.1 (tests/support/dns_zone.py): A and SRV records become
the member list; a record added later is found by the next question; a
failed or empty answer changes nothing; NXDOMAIN, empty answers and
timeouts are reported in one line saying what was asked of whom; start-up
asks again with a doubling, capped pause (a fake clock, no waiting) and
gives up with the last reason; `tandemkv serve` with a name that does not
exist says so on stderr and exits 2 without a traceback."""

from __future__ import annotations

import argparse
import subprocess
import threading

import pytest

from tandemkv import limits
from tandemkv.server.node.config import Member
from tandemkv.server.process import discovery, settings
from tandemkv.server.process.discovery import (DiscoveryError, DiscoveryPoller, DnsAddresses, DnsLookup,
                                               DnsServices, members_at_start, parse_discovery, strategy_for)
from tests.support.dns_zone import SilentNameserver, Zone, ZoneServer
from tests.support.local_up import TANDEMKV

CALLBACK_WAIT_S = 30.0


@pytest.fixture
def dns():
    with ZoneServer(Zone()) as server:
        yield server


def srv_zone(zone: Zone, members: int, service: str = "tandemkv.test") -> None:
    for k in range(1, members + 1):
        zone.add_a(f"n{k}.{service}", "127.0.0.1")
        zone.add_srv(f"_raft._tcp.{service}", f"n{k}.{service}", 7000 + k)
        zone.add_srv(f"_client._tcp.{service}", f"n{k}.{service}", 8000 + k)


def test_a_records_are_members_on_this_nodes_ports_named_by_the_template(dns):
    dns.zone.add_a("tandemkv.test", "127.0.0.2")
    dns.zone.add_a("tandemkv.test", "127.0.0.1")
    lookup = DnsLookup(dns.nameserver)
    assert DnsAddresses("tandemkv.test", 7000, 8000).members(lookup) == (
        Member("127.0.0.1", "127.0.0.1:7000", "127.0.0.1:8000"),
        Member("127.0.0.2", "127.0.0.2:7000", "127.0.0.2:8000"))
    named = DnsAddresses("tandemkv.test", 7000, None, "kv-{ip_dashed}").members(lookup)
    assert [(m.name, m.client_address) for m in named] == [("kv-127-0-0-1", ""), ("kv-127-0-0-2", "")]


def test_a_dual_stack_host_is_one_member_and_an_ipv6_only_host_is_its_ipv6_address(dns):
    dns.zone.add_a("dual.test", "127.0.0.1")
    dns.zone.add_aaaa("dual.test", "::1")
    dns.zone.add_aaaa("v6.test", "::1")
    lookup = DnsLookup(dns.nameserver)
    assert lookup.addresses("dual.test") == ["127.0.0.1"]
    assert DnsAddresses("v6.test", 7000, 8000, "{ip_dashed}").members(lookup) == (
        Member("--1", "[::1]:7000", "[::1]:8000"),)


def test_srv_records_give_each_member_its_host_and_ports(dns):
    srv_zone(dns.zone, 3)
    lookup = DnsLookup(dns.nameserver)
    by_host = DnsServices("tandemkv.test", None).members(lookup)
    assert by_host[0] == Member("n1", "n1.tandemkv.test:7001", "n1.tandemkv.test:8001")
    by_ip = DnsServices("tandemkv.test", None, discovery.SRV_TARGET_IP).members(lookup)
    assert by_ip == tuple(Member(f"n{k}", f"127.0.0.1:{7000 + k}", f"127.0.0.1:{8000 + k}") for k in (1, 2, 3))


def test_without_client_srv_records_members_use_this_nodes_client_port(dns):
    dns.zone.add_srv("_raft._tcp.kv.test", "kv-0.kv.test", 7000)
    assert DnsServices("kv.test", 9000).members(DnsLookup(dns.nameserver)) == (
        Member("kv-0", "kv-0.kv.test:7000", "kv-0.kv.test:9000"),)


def test_a_record_added_later_appears_after_re_resolution(dns):
    dns.zone.add_a("tandemkv.test", "127.0.0.1")
    strategy = DnsAddresses("tandemkv.test", 7000, 8000)
    lookup = DnsLookup(dns.nameserver)
    changes = []
    seen = threading.Event()
    poller = DiscoveryPoller(strategy, lookup, strategy.members(lookup),
                             lambda change: (changes.append(change), seen.set()), interval_ms=50)
    poller.start()
    try:
        dns.zone.add_a("tandemkv.test", "127.0.0.3")
        assert seen.wait(CALLBACK_WAIT_S), "the poller never reported the new record"
    finally:
        poller.stop()
    assert changes[0].added == (Member("127.0.0.3", "127.0.0.3:7000", "127.0.0.3:8000"),)
    assert changes[0].removed == () and len(changes[0].members) == 2
    assert poller.members == changes[0].members


def test_a_failed_or_empty_answer_keeps_the_members_and_a_real_removal_is_reported(dns):
    dns.zone.add_a("tandemkv.test", "127.0.0.1")
    dns.zone.add_a("tandemkv.test", "127.0.0.2")
    strategy = DnsAddresses("tandemkv.test", 7000, None)
    lookup = DnsLookup(dns.nameserver)
    changes = []
    poller = DiscoveryPoller(strategy, lookup, strategy.members(lookup), changes.append)
    assert poller.poll_once() is None
    dns.zone.clear("tandemkv.test", "A")
    assert poller.poll_once() is None and len(poller.members) == 2, "an empty answer must not prune"
    dns.zone.add_a("tandemkv.test", "127.0.0.2")
    change = poller.poll_once()
    assert change is not None and [m.name for m in change.removed] == ["127.0.0.1"] and change.added == ()
    assert changes == [change]


@pytest.mark.parametrize("ask, expected", [
    (lambda lookup: lookup.addresses("missing.test"), "NXDOMAIN"),
    (lambda lookup: lookup.services("_raft._tcp.missing.test"), "NXDOMAIN"),
    (lambda lookup: lookup.services("only-a.test"), "the name exists but has none"),
])
def test_missing_names_and_records_are_reported_clearly(dns, ask, expected):
    dns.zone.add_a("only-a.test", "127.0.0.1")
    with pytest.raises(DiscoveryError) as raised:
        ask(DnsLookup(dns.nameserver))
    assert expected in str(raised.value) and f"nameserver {dns.nameserver}" in str(raised.value)


def test_a_nameserver_that_never_answers_is_a_timeout_naming_the_limit():
    with SilentNameserver() as silent:
        with pytest.raises(DiscoveryError) as raised:
            DnsLookup(silent.nameserver, timeout_ms=300).addresses("tandemkv.test")
    assert "no reply within 300 ms" in str(raised.value) and "DISCOVERY_RESOLVE_TIMEOUT_MS" in str(raised.value)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def srv_values(dns, name="n1", expect=3, **more) -> dict:
    return {"discovery": parse_discovery("dns-srv:tandemkv.test"), "discovery_srv_target": "ip",
            "discovery_expect": expect, "name": name, "raft_address": "127.0.0.1:7001",
            "client_address": "127.0.0.1:8001", "discovery_nameserver": dns.nameserver, **more}


def test_start_waits_with_a_doubling_capped_pause_until_every_expected_member_is_listed(dns):
    srv_zone(dns.zone, 1)
    clock, reports = FakeClock(), []

    def sleep(seconds):  # the other members' records appear after the fifth pause
        clock.sleep(seconds)
        if len(clock.pauses) == 5:
            srv_zone(dns.zone, 3)

    members = members_at_start(srv_values(dns), DnsLookup(dns.nameserver), reports.append, sleep, lambda: clock.now)
    assert [m.name for m in members] == ["n1", "n2", "n3"]
    assert clock.pauses == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert all("lists 1 of the 3 members expected" in line for line in reports) and len(reports) == 5


def test_start_gives_up_with_the_last_reason_and_the_pause_never_exceeds_its_limit(dns):
    clock, reports = FakeClock(), []
    values = srv_values(dns, discovery_start_wait_ms=60_000)
    with pytest.raises(DiscoveryError) as raised:
        members_at_start(values, DnsLookup(dns.nameserver), reports.append, clock.sleep, lambda: clock.now)
    assert "gave up after 60 s" in str(raised.value) and "NXDOMAIN" in str(raised.value)
    assert max(clock.pauses) == limits.DISCOVERY_RETRY_BACKOFF_MS_MAX / 1000
    assert clock.now <= 60 and reports and "asking again" in reports[0]


def test_dns_listing_this_node_at_another_address_fails_at_once(dns):
    srv_zone(dns.zone, 3)
    values = srv_values(dns, raft_address="127.0.0.1:7999")
    with pytest.raises(DiscoveryError, match="Raft knows members by address"):
        members_at_start(values, DnsLookup(dns.nameserver), print, pytest.fail, lambda: 0.0)


def test_peers_at_start_fills_peers_without_this_node(dns):
    srv_zone(dns.zone, 3)
    values = discovery.peers_at_start(srv_values(dns), print)
    assert [p.name for p in values["peers"]] == ["n2", "n3"]


@pytest.mark.parametrize("values, message", [
    ({"discovery": "dns:x.test", "peers": (Member("n2", "h:1"),)}, "peers and DNS discovery exclude"),
    ({"discovery": "dns:x.test"}, "needs this node's name"),
    ({"discovery": "dns:x.test", "name": "a", "raft_address": "h:1", "discovery_name_template": "{pod}"},
     "may use only {ip} and {ip_dashed}"),
    ({"discovery": "dns-srv:x.test", "name": "a", "raft_address": "h:1", "discovery_srv_target": "pod"},
     "discovery_srv_target must be 'host' or 'ip'"),
])
def test_bad_discovery_settings_name_what_to_fix(values, message):
    with pytest.raises(DiscoveryError, match=message.replace("{", r"\{").replace("}", r"\}")):
        strategy_for(values)


@pytest.mark.parametrize("text", ["dns", "dns:", "srv:x", "static:x", "dns-srv: ."])
def test_a_malformed_discovery_setting_is_refused(text):
    with pytest.raises(ValueError, match="must be 'static', 'dns:NAME' or 'dns-srv:NAME'"):
        parse_discovery(text)


def test_a_nameserver_must_be_an_address():
    with pytest.raises(DiscoveryError, match="must be an IP address"):
        DnsLookup("dns.example:53")


def test_serve_with_a_name_that_does_not_exist_retries_then_exits_2_in_plain_lines(dns, tmp_path):
    result = subprocess.run(
        [*TANDEMKV, "serve", "--name", "n1", "--data-dir", str(tmp_path / "n1"), "--raft-address", "127.0.0.1:7001",
         "--client-address", "127.0.0.1:8001", "--discovery", "dns-srv:nowhere.test", "--discovery-expect", "3",
         "--discovery-nameserver", dns.nameserver, "--discovery-start-wait-ms", "1500"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "asking again in 0.25 s" in lines[0] and "NXDOMAIN" in lines[0]
    assert "gave up after" in lines[-1] and "_raft._tcp.nowhere.test" in lines[-1]
    assert "Traceback" not in result.stderr and not (tmp_path / "n1").exists()


def test_discovery_settings_come_from_the_toml_file_and_the_environment(dns, tmp_path):
    srv_zone(dns.zone, 3)
    path = tmp_path / "n1.toml"
    path.write_text(f'name = "n1"\ndata_dir = "d"\nraft_address = "127.0.0.1:7001"\n'
                    f'client_address = "127.0.0.1:8001"\ndiscovery = "dns-srv:tandemkv.test"\n'
                    f'discovery_expect = 3\ndiscovery_srv_target = "ip"\n')
    parser = argparse.ArgumentParser()
    settings.add_flags(parser)
    values = settings.gather(parser.parse_args(["--config", str(path)]),
                             {"TANDEMKV_DISCOVERY_NAMESERVER": dns.nameserver})
    config = settings.node_config(discovery.peers_at_start(values, print))
    assert [(m.name, m.client_address) for m in config.members] == [
        (f"n{k}", f"127.0.0.1:{8000 + k}") for k in (1, 2, 3)]


def test_a_client_port_question_that_times_out_fails_the_answer_instead_of_guessing_ports():
    class ClientQuestionTimesOut:
        def addresses(self, name):
            return ["127.0.0.1"]

        def services(self, name):
            if name.startswith("_client."):
                raise DiscoveryError(f"no SRV records of {name!r}: no reply within 2000 ms")
            return [("kv-0.kv.test", 7000)]

    with pytest.raises(DiscoveryError, match="no reply within"):
        DnsServices("kv.test", 9000).members(ClientQuestionTimesOut())
