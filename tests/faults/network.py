"""The network of one fault experiment: loopback addresses for the nodes and
iptables rules that cut the links between them.

The runner lives in a network namespace of its own (`unshare --net`), so
every rule here dies with it. Inside, each node has its own address in
127/8 (all of it is local once `lo` is up). One catch: a socket that
connects without binding first gets the source address 127.0.0.1 whatever
its destination, and pysyncobj does not bind its outgoing Raft sockets. So
each node process runs with its own group id, and one SNAT rule per node
(`-m owner --gid-owner`) rewrites the source of the connections it opens to
the node's address. Packets between nodes then carry the nodes' addresses,
and a partition is a DROP rule in INPUT on (source, destination). Clients
run in the runner (group 0) and keep source 127.0.0.1, so partitions never
cut them off: only node-to-node traffic (which is all Raft) is dropped.

This module runs commands; it knows nothing about Raft or clients.
"""

from __future__ import annotations

import os
import shutil
import subprocess

# Seconds one `ip` or `iptables` command may take.
COMMAND_TIMEOUT_S = 10.0
# Group ids given to node processes, one per node, so rules can tell them apart.
NODE_GROUP_ID_BASE = 50_000
# Set to the namespace a runner left when it re-started itself in a new one.
NAMESPACE_ENV = "TANDEMKV_FAULTS_LEFT_NETNS"


class NetworkUnavailable(RuntimeError):
    """This process cannot cut links (no namespace of its own, no iptables)."""


def run_command(*argv: str) -> str:
    """Runs one command; raises NetworkUnavailable with its stderr on failure."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NetworkUnavailable(f"{' '.join(argv)}: {error}") from None
    if done.returncode != 0:
        raise NetworkUnavailable(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def node_address(index: int) -> str:
    """The loopback address of node `index` (0-based): 127.0.0.2, 127.0.0.3, ..."""
    assert 0 <= index < 250
    return f"127.0.0.{index + 2}"


def node_group_id(index: int) -> int:
    return NODE_GROUP_ID_BASE + index


def namespace_id() -> str:
    """This process's network namespace, e.g. 'net:[4026532177]'."""
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return ""


def in_own_namespace() -> bool:
    """True if this process was re-started by `enter_own_namespace` and its
    network namespace differs from the one it left. A guard: rules must
    never be installed in a namespace anything else uses."""
    left = os.environ.get(NAMESPACE_ENV, "")
    return bool(left) and namespace_id() not in ("", left)


def unshare_works() -> bool:
    """Whether this process may make a network namespace."""
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "--net", "true"], capture_output=True,
                              timeout=COMMAND_TIMEOUT_S).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def enter_own_namespace(argv: list[str]) -> None:
    """Replaces this process with `argv` run under `unshare --net` (same
    pid, so whoever waits for it still can). Returns only if it cannot."""
    if in_own_namespace() or not unshare_works():
        return
    os.environ[NAMESPACE_ENV] = namespace_id()
    os.execvp("unshare", ["unshare", "--net", "--", *argv])


def bring_loopback_up() -> None:
    """A new namespace starts with `lo` down; nodes and clients need it."""
    assert in_own_namespace(), "only a namespace of our own is changed"
    run_command("ip", "link", "set", "lo", "up")


class Network:
    """Partitions between node addresses, with iptables in this namespace.

    `Network.open(node_count)` brings `lo` up, checks iptables works and
    installs the per-node SNAT rules; it raises NetworkUnavailable when it
    cannot, and the caller then runs without network faults (and says so).
    """

    def __init__(self, node_count: int):
        self.addresses = [node_address(k) for k in range(node_count)]
        self.cut_links: set[tuple[int, int]] = set()

    @classmethod
    def open(cls, node_count: int) -> Network:
        if not in_own_namespace():
            raise NetworkUnavailable("not in a network namespace of its own (`unshare --net` is not permitted here)")
        if shutil.which("iptables") is None:
            raise NetworkUnavailable("iptables is not installed (apt-get install -y iptables)")
        bring_loopback_up()
        network = cls(node_count)
        run_command("iptables", "-F", "INPUT")
        run_command("iptables", "-t", "nat", "-F", "POSTROUTING")
        for index, address in enumerate(network.addresses):
            run_command("iptables", "-t", "nat", "-A", "POSTROUTING", "-m", "owner",
                        "--gid-owner", str(node_group_id(index)), "-j", "SNAT", "--to-source", address)
        return network

    def drop(self, source: int, target: int) -> None:
        """Drops every packet from node `source` to node `target` (one way)."""
        assert source != target
        if (source, target) in self.cut_links:
            return
        run_command("iptables", "-A", "INPUT", "-s", self.addresses[source], "-d", self.addresses[target],
                    "-j", "DROP")
        self.cut_links.add((source, target))

    def cut(self, first: int, second: int) -> None:
        """Cuts the link between two nodes in both directions."""
        self.drop(first, second)
        self.drop(second, first)

    def isolate_groups(self, groups: list[list[int]]) -> None:
        """Cuts every link between nodes of different groups."""
        for index, group in enumerate(groups):
            for other in groups[index + 1:]:
                for first in group:
                    for second in other:
                        self.cut(first, second)

    def heal(self) -> None:
        """Removes every partition rule (the SNAT rules stay)."""
        run_command("iptables", "-F", "INPUT")
        self.cut_links.clear()
