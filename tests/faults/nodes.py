"""The cluster under test: `tandemkv serve` processes the runner starts,
kills, pauses and restarts.

Each node listens on its own loopback address (see `network.py`) for both
Raft and gRPC, with short Raft timings so faults resolve in about a second.
Processes are started directly (no shell), so the pid recorded is the
server's own; with network faults on, each runs with the group id the SNAT
rules know it by. `stop_all()` resumes paused nodes and SIGKILLs every
process this object started; it is safe to call more than once.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from tandemkv.server.process import settings
from tandemkv.server.node.config import Member, NodeConfig, RaftTimings
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc

from tests.support.ports import free_ports

from .network import node_address, node_group_id

RAFT_PORT = 7001
CLIENT_PORT = 7002
# Short timings: elections within ~1 s, a cut-off leader steps down in 1.5 s.
FAULT_TIMINGS = RaftTimings(
    election_timeout_min_s=0.5,
    election_timeout_max_s=1.0,
    leader_fallback_timeout_s=1.5,
    connection_timeout_s=1.5,
    connection_retry_s=0.3,
)
POLL_S = 0.1
# Seconds a killed process may take to be reaped.
REAP_TIMEOUT_S = 10.0
# How long one status probe waits for one node.
STATUS_PROBE_TIMEOUT_S = 1.0


@dataclasses.dataclass
class NodeProcess:
    name: str
    index: int
    member: Member
    process: subprocess.Popen | None = None
    paused: bool = False
    starts: int = 0
    # Set by `kill`; an exit without it is the node's own doing (a crash).
    killed: bool = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class NodeSet:
    """Three (or `node_count`) nodes under `root`, data in `root/<name>/`."""

    def __init__(self, root: Path, node_count: int = 3, *, isolated: bool, separate_groups: bool,
                 data_root: Path | None = None):
        """`isolated`: in a namespace of our own, each node on its own
        loopback address and fixed ports; otherwise all on 127.0.0.1 on
        free ports. `separate_groups`: run node k with group id
        `node_group_id(k)` (what the SNAT rules match)."""
        assert isolated or not separate_groups
        self.root = Path(root)
        self.data_root = Path(data_root) if data_root else self.root
        self.separate_groups = separate_groups
        ports = None if isolated else free_ports(2 * node_count)
        self.nodes = [self._describe(index, ports) for index in range(node_count)]
        # Faulthandler: a crashing node writes every thread's stack to its log.
        self.extra_env: dict[str, str] = {"PYTHONFAULTHANDLER": "1"}
        self.root.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            self._write_config(node)

    @staticmethod
    def _describe(index: int, ports: list[int] | None) -> NodeProcess:
        name = f"n{index + 1}"
        if ports is None:
            address = node_address(index)
            member = Member(name, f"{address}:{RAFT_PORT}", f"{address}:{CLIENT_PORT}")
        else:
            member = Member(name, f"127.0.0.1:{ports[2 * index]}", f"127.0.0.1:{ports[2 * index + 1]}")
        return NodeProcess(name, index, member)

    def _write_config(self, node: NodeProcess) -> None:
        config = NodeConfig(
            name=node.name, data_dir=self.data_root / node.name, raft_address=node.member.raft_address,
            client_address=node.member.client_address,
            peers=tuple(other.member for other in self.nodes if other is not node),
            timings=FAULT_TIMINGS, map_size_bytes=256 << 20,
        )
        self.config_path(node.name).write_text(settings.to_toml(config, None))

    # -- lookup -----------------------------------------------------------
    def config_path(self, name: str) -> Path:
        return self.root / f"{name}.toml"

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def node(self, name: str) -> NodeProcess:
        return next(node for node in self.nodes if node.name == name)

    @property
    def endpoints(self) -> list[str]:
        return [node.member.client_address for node in self.nodes]

    def name_of_endpoint(self, endpoint: str) -> str | None:
        return next((n.name for n in self.nodes if n.member.client_address == endpoint), None)

    # -- lifecycle --------------------------------------------------------
    def start(self, name: str, env: dict[str, str] | None = None) -> int:
        """Starts node `name`; returns the server's pid."""
        node = self.node(name)
        assert not node.running, f"{name} is already running"
        environment = {**os.environ, **self.extra_env, **(env or {})}
        # The group id is set by setpriv, which then execs the server in its
        # place (same pid). Popen(group=...) would force a real fork() of this
        # process, whose gRPC client threads make grpc's fork handlers run in
        # the child before exec, where they crashed it (SIGSEGV, no output).
        group = (["setpriv", f"--regid={node_group_id(node.index)}", "--clear-groups", "--"]
                 if self.separate_groups else [])
        with open(self.log_path(name), "ab") as log:
            node.process = subprocess.Popen(
                [*group, sys.executable, "-m", "tandemkv.server.cli", "serve", "--config",
                 str(self.config_path(name))],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment,
            )
        node.paused = False
        node.killed = False
        node.starts += 1
        return node.process.pid

    def start_all(self) -> None:
        for node in self.nodes:
            self.start(node.name)

    def kill(self, name: str) -> None:
        """kill -9 and reap."""
        node = self.node(name)
        assert node.process is not None
        node.killed = True
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=REAP_TIMEOUT_S)
        node.paused = False

    def pause(self, name: str) -> None:
        node = self.node(name)
        assert node.running
        node.process.send_signal(signal.SIGSTOP)
        node.paused = True

    def resume(self, name: str) -> None:
        node = self.node(name)
        if node.running and node.paused:
            node.process.send_signal(signal.SIGCONT)
        node.paused = False

    def stop_all(self) -> None:
        """Resumes and SIGKILLs every node process still alive, and reaps it."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            node.killed = True
            node.process.send_signal(signal.SIGCONT)
            node.process.send_signal(signal.SIGKILL)
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=REAP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    pass

    def crashed(self) -> list[tuple[str, int]]:
        """(name, exit code) of every node that exited without being
        killed by this object (a negative code is the signal number)."""
        exits = []
        for node in self.nodes:
            code = None if node.process is None else node.process.poll()
            if code is not None and not node.killed:
                exits.append((node.name, code))
        return exits

    def pids(self) -> dict[str, int]:
        return {node.name: node.process.pid for node in self.nodes if node.process is not None}

    # -- conditions -------------------------------------------------------
    def leader(self, among: list[str] | None = None) -> str | None:
        """The leader every answering node of `among` (default: all running,
        unpaused nodes) agrees on, or None."""
        names = among or [n.name for n in self.nodes if n.running and not n.paused]
        endpoints = [self.node(name).member.client_address for name in names]
        views = [_probe(endpoint) for endpoint in endpoints]
        leaders = {view for view in views if view is not None}
        if len(views) and len(leaders) == 1 and None not in views:
            return leaders.pop() or None
        return None

    def wait_for_leader(self, timeout_s: float, among: list[str] | None = None) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            leader = self.leader(among)
            if leader:
                return leader
            time.sleep(POLL_S)
        described = self.describe()  # before the stacks become every log's last lines
        unsignalled = self.dump_stacks()
        stacks = (f"; not signalled for stacks (no SIGUSR1 handler yet): {', '.join(unsignalled)}"
                  if unsignalled else "")
        raise TimeoutError(f"no agreed leader within {timeout_s} s ({described}){stacks}; logs in {self.root}")

    def dump_stacks(self) -> list[str]:
        """Every running node whose SIGUSR1 handler is installed writes its
        threads' stacks to its log (`tandemkv serve` installs it once its
        settings are read, before it starts the node), for a post-mortem;
        returns the running, unpaused nodes not signalled. One still
        starting has no handler yet, and the signal's default action would
        end it."""
        unsignalled = []
        for node in self.nodes:
            if not node.running or node.paused:
                continue
            if catches_signal(node.process.pid, signal.SIGUSR1):
                node.process.send_signal(signal.SIGUSR1)
            else:
                unsignalled.append(node.name)
        return unsignalled

    def describe(self) -> str:
        """Each node's state in a line: running or its exit code, what it
        reports as leader, and its log's last line (for failure messages
        that outlive the run's files)."""
        parts = []
        for node in self.nodes:
            if node.process is None:
                state = "never started"
            elif node.process.poll() is not None:
                state = f"exited {node.process.returncode}"
            else:
                state = _status_line(node.member.client_address)
            parts.append(f"{node.name}: {state}, log: {_last_line(self.log_path(node.name))!r}")
        return "; ".join(parts)


def catches_signal(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler of its own for `signum` (the
    kernel's SigCgt mask in /proc/<pid>/status); False when it cannot be
    read (the process is gone, or this is not Linux)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            caught = next((line.split()[1] for line in status if line.startswith("SigCgt:")), None)
    except OSError:
        return False
    return caught is not None and bool(int(caught, 16) >> (signum - 1) & 1)


def _last_line(path: Path, tail_bytes: int = 400) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - tail_bytes))
            lines = log.read().decode(errors="replace").strip().splitlines()
    except OSError as error:
        return f"unreadable: {error}"
    return lines[-1] if lines else ""


def _status(endpoint: str) -> cluster_pb2.StatusResponse | grpc.RpcError:
    """What `endpoint` answers to Cluster.Status, or the error of the call."""
    with grpc.insecure_channel(endpoint) as channel:
        try:
            return cluster_pb2_grpc.ClusterStub(channel).Status(
                cluster_pb2.StatusRequest(), timeout=STATUS_PROBE_TIMEOUT_S)
        except grpc.RpcError as error:
            return error


def _status_line(endpoint: str) -> str:
    s = _status(endpoint)
    if isinstance(s, grpc.RpcError):
        return f"no answer ({s.code().name})"
    return (f"{cluster_pb2.Role.Name(s.role)} leader={s.leader or '-'} term={s.term} commit={s.commit_index} "
            f"applied={s.applied_index} ready={s.ready} quorum={s.has_quorum}")


def _probe(endpoint: str) -> str | None:
    """The leader name `endpoint` reports if it is ready with a quorum, '' if
    it knows none, None if it did not answer."""
    response = _status(endpoint)
    if isinstance(response, grpc.RpcError):
        return None
    if not response.ready or not response.has_quorum:
        return ""
    return response.leader
