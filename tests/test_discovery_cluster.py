"""Three `tandemkv serve` processes started with `--discovery dns-srv:NAME`
find each other through a DNS server the test runs on 127.0.0.1 (SRV
records give each node its own Raft and client port), elect a leader and
serve a put and a get; the third node starts after the others have begun
asking, so they wait for it. A member added to DNS afterwards is reported
by every running node's poller."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tandemkv.client import NO_RETRY, Client
from tandemkv.limits import DISCOVERY_POLL_INTERVAL_MS
from tests.support.dns_zone import Zone, ZoneServer
from tests.support.local_up import TANDEMKV
from tests.support.ports import free_ports

SERVICE = "tandemkv.test"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def add_member(zone: Zone, name: str, raft_port: int, client_port: int) -> None:
    zone.add_a(f"{name}.{SERVICE}", "127.0.0.1")
    zone.add_srv(f"_raft._tcp.{SERVICE}", f"{name}.{SERVICE}", raft_port)
    zone.add_srv(f"_client._tcp.{SERVICE}", f"{name}.{SERVICE}", client_port)


def start_node(tmp_path: Path, nameserver: str, name: str, raft_port: int, client_port: int):
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen(
        [*TANDEMKV, "serve", "--name", name, "--data-dir", str(tmp_path / name),
         "--raft-address", f"127.0.0.1:{raft_port}", "--client-address", f"127.0.0.1:{client_port}",
         "--discovery", f"dns-srv:{SERVICE}", "--discovery-expect", "3", "--discovery-srv-target", "ip",
         "--discovery-nameserver", nameserver, "--discovery-start-wait-ms", "120000",
         "--election-timeout-min-s", "0.5", "--election-timeout-max-s", "1.0"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def log_tails(tmp_path: Path) -> str:
    """Each node's last lines, for a failure message."""
    return "\n".join(f"--- {path.name}:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:])
                     for path in sorted(tmp_path.glob("n*.log")))


def wait_for_text(path: Path, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{path.name} never said {text!r}:\n{log_tails(path.parent)}"
        time.sleep(0.05)


def test_three_nodes_found_through_srv_records_elect_a_leader_and_serve(tmp_path):
    ports = free_ports(8)
    raft_ports, client_ports = ports[:4], ports[4:]
    zone = Zone()
    with ZoneServer(zone) as dns:
        for k in range(3):
            add_member(zone, f"n{k + 1}", raft_ports[k], client_ports[k])
        zone.clear(f"n3.{SERVICE}", "A")  # n3 is not in DNS yet: n1 and n2 must wait for it
        nodes = [start_node(tmp_path, dns.nameserver, f"n{k + 1}", raft_ports[k], client_ports[k]) for k in range(3)]
        try:
            wait_for_text(tmp_path / "n1.log", "asking again", READY_TIMEOUT_S)
            zone.add_a(f"n3.{SERVICE}", "127.0.0.1")
            endpoints = [f"127.0.0.1:{port}" for port in client_ports[:3]]
            with Client(endpoints, retry=NO_RETRY) as client:
                deadline = time.monotonic() + READY_TIMEOUT_S
                while True:
                    assert all(node.poll() is None for node in nodes), f"a node exited:\n{log_tails(tmp_path)}"
                    try:
                        statuses = client.status().nodes
                        if len(statuses) == 3 and all(s.ready and s.leader for s in statuses):
                            break
                    except Exception as error:  # not serving yet
                        assert time.monotonic() < deadline, f"no leader: {error}\n{log_tails(tmp_path)}"
                    assert time.monotonic() < deadline, f"not ready after {READY_TIMEOUT_S} s\n{log_tails(tmp_path)}"
                    time.sleep(0.1)
                assert len({s.leader for s in statuses}) == 1
            with Client(endpoints) as client:
                client.put(b"found", b"through-dns")
                assert client.get(b"found") == b"through-dns"
            add_member(zone, "n4", raft_ports[3], client_ports[3])
            for k in range(3):
                wait_for_text(tmp_path / f"n{k + 1}.log", "discovery: n4 appeared at 127.0.0.1:",
                              3 * DISCOVERY_POLL_INTERVAL_MS / 1000 + READY_TIMEOUT_S)
            for node in nodes:
                node.terminate()
            assert [node.wait(timeout=STOP_TIMEOUT_S) for node in nodes] == [0, 0, 0], "SIGTERM stops cleanly"
        finally:
            for node in nodes:
                if node.poll() is None:
                    node.kill()
                    node.wait(timeout=STOP_TIMEOUT_S)
