"""A reusable test harness: a real cluster of `tandemkv serve` processes
on 127.0.0.1, in a temporary directory, on free ports.

    with ServeCluster(tmp_path, nodes=3) as cluster:
        leader = cluster.wait_for_leader(timeout_s=30)
        cluster.kill(leader)            # kill -9
        cluster.restart(leader)
        cluster.stop_node("n2"); cluster.wipe("n2"); cluster.restart("n2")

Every wait polls a condition with a deadline; leaving the `with` block
stops every process the harness started (SIGTERM, then SIGKILL).

`map_size_bytes=64 << 20` gives every node that LMDB map (and so a space
quota of SPACE_QUOTA_PERCENT_OF_MAP of it).

`limits={"WATCH_HISTORY_REVISIONS_MAX": 200}` starts every node with those
`tandemkv.limits` changed (tests only: the same on every node, set before
the node starts, so apply stays deterministic).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tandemkv.client import NO_RETRY, Client
from tandemkv.server.process import settings
from tandemkv.server.node.config import Member, NodeConfig
from tests.support.ports import free_ports

POLL_S = 0.1
STOP_TIMEOUT_S = 15.0


class ServeCluster:
    def __init__(self, root: Path, nodes: int = 3, limits: dict[str, int] | None = None,
                 map_size_bytes: int | None = None):
        self.root = Path(root)
        self.limits = dict(limits or {})
        ports = free_ports(2 * nodes)
        self.members = [Member(f"n{k + 1}", f"127.0.0.1:{ports[2 * k]}", f"127.0.0.1:{ports[2 * k + 1]}")
                        for k in range(nodes)]
        self.processes: dict[str, subprocess.Popen] = {}
        for member in self.members:
            config = NodeConfig(name=member.name, data_dir=Path(member.name), raft_address=member.raft_address,
                                client_address=member.client_address,
                                peers=tuple(m for m in self.members if m != member),
                                **({"map_size_bytes": map_size_bytes} if map_size_bytes else {}))
            self.config_path(member.name).write_text(settings.to_toml(config, None))

    # -- addresses --
    @property
    def endpoints(self) -> list[str]:
        return [m.client_address for m in self.members]

    def endpoint(self, name: str) -> str:
        return next(m.client_address for m in self.members if m.name == name)

    def config_path(self, name: str) -> Path:
        return self.root / f"{name}.toml"

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    # -- lifecycle --
    def __enter__(self) -> ServeCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def start(self) -> None:
        for member in self.members:
            self.restart(member.name)

    def restart(self, name: str) -> None:
        """Starts node `name` (again); its data is kept unless wiped."""
        assert name not in self.processes or self.processes[name].poll() is not None, f"{name} is running"
        with open(self.log_path(name), "ab") as log:
            self.processes[name] = subprocess.Popen(
                [*self._python(), "serve", "--config", str(self.config_path(name))],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def _python(self) -> list[str]:
        if not self.limits:
            return [sys.executable, "-m", "tandemkv.server.cli"]
        prelude = ("import sys, tandemkv.limits as limits\n"
                   f"for name, value in {self.limits!r}.items():\n"
                   "    assert hasattr(limits, name), name\n"
                   "    setattr(limits, name, value)\n"
                   "from tandemkv.server.cli.main import main\n"
                   "sys.exit(main(sys.argv[1:]))\n")
        return [sys.executable, "-c", prelude]

    def kill(self, name: str) -> None:
        """kill -9 node `name` and reap it."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)

    def stop_node(self, name: str) -> int:
        """SIGTERM node `name`; returns its exit code."""
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=STOP_TIMEOUT_S)

    def wipe(self, name: str) -> None:
        """Deletes a stopped node's data."""
        assert self.processes[name].poll() is not None, f"stop {name} before wiping it"
        shutil.rmtree(self.root / name, ignore_errors=True)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)

    # -- conditions --
    def wait_for_leader(self, timeout_s: float, among: list[str] | None = None) -> str:
        """The leader's name, once every running node (or every node of
        `among`) is ready and agrees on it."""
        names = among or [n for n, p in self.processes.items() if p.poll() is None]
        endpoints = [self.endpoint(n) for n in names]
        deadline = time.monotonic() + timeout_s
        with Client(endpoints, retry=NO_RETRY) as client:
            while time.monotonic() < deadline:
                nodes = client.status().nodes
                leaders = {n.leader for n in nodes if n.endpoint in endpoints}
                if len(leaders) == 1 and "" not in leaders and all(
                        n.ready and not n.error for n in nodes if n.endpoint in endpoints):
                    return leaders.pop()
                time.sleep(POLL_S)
        raise AssertionError(f"no agreed leader among {names} within {timeout_s} s; logs in {self.root}")

    def wait_for_applied(self, name: str, index: int, timeout_s: float) -> int:
        """Polls node `name` until its applied index reaches `index`."""
        deadline = time.monotonic() + timeout_s
        with Client([self.endpoint(name)], retry=NO_RETRY) as client:
            while time.monotonic() < deadline:
                # status() asks every member it learns of too, sorted by name: pick the one asked.
                node = next(n for n in client.status().nodes if n.endpoint == self.endpoint(name))
                if not node.error and node.applied_index >= index:
                    return node.applied_index
                time.sleep(POLL_S)
        raise AssertionError(f"{name} did not apply index {index} within {timeout_s} s")


def rss_bytes(pid: int) -> int:
    """Resident memory of process `pid` (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")
