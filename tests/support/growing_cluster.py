"""`GrowingCluster`: a `ServeCluster` of `tandemkv serve` processes that can
take new members at runtime (`prepare(name)` then `start_joining(name)`,
which runs `serve --join` against a running member), with snapshots taken
every SNAPSHOT_ENTRIES entries so a joining node catches up from one.

    with GrowingCluster(tmp_path, nodes=3) as cluster:
        cluster.wait_for_leader(timeout_s=60)
        cluster.prepare("n4"); cluster.start_joining("n4", through="n1")
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from pathlib import Path

from tandemkv.client import NO_RETRY, Client
from tandemkv.errors import TandemKVError
from tandemkv.server.node.config import Member, NodeConfig, RaftTimings
from tandemkv.server.process import settings
from tests.support.cluster import POLL_S, ServeCluster
from tests.support.ports import free_ports

# Entries after which a node snapshots its state and compacts its log.
SNAPSHOT_ENTRIES = 200


class GrowingCluster(ServeCluster):
    def __init__(self, root: Path, nodes: int = 3):
        super().__init__(root, nodes)
        for member in self.members:
            self._write_config(member, peers=tuple(m for m in self.members if m != member))

    def _write_config(self, member: Member, peers: tuple[Member, ...], join: str = "") -> None:
        config = NodeConfig(name=member.name, data_dir=Path(member.name), raft_address=member.raft_address,
                            client_address=member.client_address, peers=peers,
                            timings=dataclasses.replace(RaftTimings(), snapshot_entries_min=SNAPSHOT_ENTRIES))
        text = settings.to_toml(config, None)
        if join:
            text = f'join = "{join}"\n' + text
        self.config_path(member.name).write_text(text)

    def prepare(self, name: str, through: str = "") -> Member:
        """A new member `name` on free ports whose config joins through
        member `through` (any running member when empty); not started."""
        raft_port, client_port = free_ports(2)
        member = Member(name, f"127.0.0.1:{raft_port}", f"127.0.0.1:{client_port}")
        self.members.append(member)
        running = [m for m in self.members if m.name in self.running()]
        via = next(m for m in running if not through or m.name == through)
        self._write_config(member, peers=(), join=via.client_address)
        return member

    def running(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is None]

    def forget(self, name: str) -> None:
        """Drops a removed member from the endpoints the harness uses."""
        self.members[:] = [m for m in self.members if m.name != name]

    def serve_until_exit(self, name: str, timeout_s: float) -> subprocess.CompletedProcess:
        """Runs `serve` for `name` and waits for it to exit by itself."""
        return subprocess.run([*self._python(), "serve", "--config", str(self.config_path(name))],
                              capture_output=True, text=True, timeout=timeout_s)

    def wait_for_members(self, names: list[str], expected: list[str], timeout_s: float) -> None:
        """Until every node of `names` lists exactly the members `expected`."""
        deadline = time.monotonic() + timeout_s
        seen: dict[str, list[str]] = {}
        while time.monotonic() < deadline:
            for name in names:
                try:
                    with Client([self.endpoint(name)], retry=NO_RETRY) as client:
                        seen[name] = client.members.list().names
                except TandemKVError as error:
                    seen[name] = [f"error: {error.message}"]
            if all(seen.get(name) == sorted(expected) for name in names):
                return
            time.sleep(POLL_S)
        raise AssertionError(f"members never became {sorted(expected)} on {names}: {seen}; logs in {self.root}")

    def wait_caught_up(self, name: str, timeout_s: float) -> None:
        """Until node `name` has applied what the leader had committed when asked."""
        leader = self.wait_for_leader(timeout_s)
        with Client([self.endpoint(leader)], retry=NO_RETRY) as client:
            commit = next(n.commit_index for n in client.status().nodes if n.name == leader)
        self.wait_for_applied(name, commit, timeout_s)
