"""Clusters the suite starts and stops: TandemKV (`tandemkv serve` processes)
and etcd (Debian's `etcd` binary), each with N members on 127.0.0.1
ephemeral ports, in a temporary directory that is removed afterwards.

Both are context managers; leaving the block stops every process started
(SIGTERM, then SIGKILL), also when starting failed half way. Neither knows
about workloads.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ETCD_BINARY = "etcd"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.2
NODES_MAX = 9


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out on 127.0.0.1, all free at the time of the call."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def etcd_version() -> str | None:
    """`etcd --version`'s first line, or None when etcd is not installed."""
    if shutil.which(ETCD_BINARY) is None:
        return None
    output = subprocess.run([ETCD_BINARY, "--version"], capture_output=True, text=True, timeout=10)
    return output.stdout.splitlines()[0] if output.stdout else "etcd (unknown version)"


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each process, SIGKILL any still running after STOP_TIMEOUT_S."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


class _Uninterrupted:
    """The stop flag `LocalCluster.wait_for_leader` polls (a `StopSignals`
    in the CLI). The suite installs no signal handlers of its own there:
    Ctrl-C unwinds it as KeyboardInterrupt, which stops every cluster."""

    requested = False

    def wait(self, timeout_s: float) -> bool:
        time.sleep(timeout_s)  # the poll interval between two status calls
        return False


class TandemCluster:
    """N `tandemkv serve` processes; `leader_endpoint` and `leader_pid` once
    started. `tls=True`: the client ports speak mTLS as `tandemkv up --tls`
    sets them up (a local CA, client certificates required); `client_tls`
    is then the SDK's TLSConfig and `channel()` a TLS channel."""

    system = "tandemkv"

    def __init__(self, nodes: int = 3, tls: bool = False):
        assert 1 <= nodes <= NODES_MAX, f"nodes must be 1..{NODES_MAX}"
        self.nodes = nodes
        self.tls = tls
        self.client_tls = None
        self.root = Path(tempfile.mkdtemp(prefix="tkv-suite-"))
        self.cluster = None
        self.leader_endpoint = ""
        self.leader_pid = 0

    def __enter__(self) -> TandemCluster:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self.cluster is not None:
                self.cluster.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _start(self) -> None:
        from tandemkv.server.process.local_cluster import LocalCluster

        paths = self._write_configs()
        if self.tls:
            from tandemkv.client import TLSConfig
            from tandemkv.server.process import local_tls

            local_tls.enable(self.root, paths)
            self.client_tls = TLSConfig(**local_tls.client_files(self.root, paths))
        self.cluster = LocalCluster(self.root, paths)
        self.cluster.start()
        leader = self.cluster.wait_for_leader(START_TIMEOUT_S, _Uninterrupted())
        self.leader_endpoint = self.cluster.configs[leader].client_address
        self.leader_pid = self.cluster.processes[leader].pid

    def channel(self):
        """A grpc.aio channel to the leader (TLS when the cluster speaks it)."""
        import grpc.aio

        if self.client_tls is None:
            return grpc.aio.insecure_channel(self.leader_endpoint)
        return grpc.aio.secure_channel(self.leader_endpoint, self.client_tls.channel_credentials())

    def _write_configs(self) -> list[Path]:
        from tandemkv.server.process import settings
        from tandemkv.server.node.config import Member, NodeConfig

        ports = free_ports(2 * self.nodes)
        members = [Member(f"n{k + 1}", f"127.0.0.1:{ports[2 * k]}", f"127.0.0.1:{ports[2 * k + 1]}")
                   for k in range(self.nodes)]
        paths = []
        for member in members:
            config = NodeConfig(name=member.name, data_dir=Path(member.name),
                                raft_address=member.raft_address, client_address=member.client_address,
                                peers=tuple(m for m in members if m != member))
            path = self.root / f"{member.name}.toml"
            path.write_text(settings.to_toml(config, None))
            paths.append(path)
        return paths


class EtcdCluster:
    """N etcd members (fsync on, default settings); `leader_endpoint` once started."""

    system = "etcd"

    def __init__(self, nodes: int = 3):
        assert 1 <= nodes <= NODES_MAX, f"nodes must be 1..{NODES_MAX}"
        self.nodes = nodes
        self.root = Path(tempfile.mkdtemp(prefix="etcd-suite-"))
        self.processes: list[subprocess.Popen] = []
        self.client_urls: list[str] = []
        self.leader_endpoint = ""
        self.leader_pid = 0

    def __enter__(self) -> EtcdCluster:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            stop_processes(self.processes)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def channel(self):
        """A grpc.aio channel to the leader."""
        import grpc.aio

        return grpc.aio.insecure_channel(self.leader_endpoint)

    def _start(self) -> None:
        ports = free_ports(2 * self.nodes)
        names = [f"e{k + 1}" for k in range(self.nodes)]
        peer_urls = [f"http://127.0.0.1:{ports[2 * k]}" for k in range(self.nodes)]
        self.client_urls = [f"http://127.0.0.1:{ports[2 * k + 1]}" for k in range(self.nodes)]
        initial = ",".join(f"{n}={u}" for n, u in zip(names, peer_urls))
        for name, peer_url, client_url in zip(names, peer_urls, self.client_urls):
            self.processes.append(self._spawn(name, peer_url, client_url, initial))
        self.leader_endpoint, index = self._wait_for_leader()
        self.leader_pid = self.processes[index].pid

    def _spawn(self, name: str, peer_url: str, client_url: str, initial: str) -> subprocess.Popen:
        command = [ETCD_BINARY, "--name", name, "--data-dir", str(self.root / name),
                   "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                   "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                   "--initial-cluster", initial, "--initial-cluster-state", "new",
                   "--initial-cluster-token", "suite", "--log-level", "error", "--logger", "zap"]
        with open(self.root / f"{name}.log", "ab") as log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)

    def _wait_for_leader(self) -> tuple[str, int]:
        """(client host:port, index) of the leader, once every member answers."""
        import asyncio

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            found = asyncio.run(_etcd_leader([u.removeprefix("http://") for u in self.client_urls]))
            if found is not None:
                return found
            time.sleep(POLL_S)
        raise RuntimeError(f"etcd elected no leader within {START_TIMEOUT_S:.0f} s; logs in {self.root}")

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"an etcd member exited with code {process.returncode}; logs in {self.root}")


async def _etcd_leader(endpoints: list[str]) -> tuple[str, int] | None:
    import grpc.aio
    from aetcd import rpc

    member_ids = []
    leader_ids = set()
    for endpoint in endpoints:
        async with grpc.aio.insecure_channel(endpoint) as channel:
            try:
                status = await rpc.MaintenanceStub(channel).Status(rpc.StatusRequest(), timeout=1.0)
            except grpc.RpcError:
                return None
        member_ids.append(status.header.member_id)
        leader_ids.add(status.leader)
    if len(leader_ids) != 1 or 0 in leader_ids or leader_ids & set(member_ids) == set():
        return None
    index = member_ids.index(leader_ids.pop())
    return endpoints[index], index
