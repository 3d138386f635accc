"""The node slots of a cluster whose members change (see membership.py).

`MemberNodeSet` is a `NodeSet` of fixed slots (loopback addresses, ports,
group ids): the first FOUNDERS hold the founding members, the others are
free until a member is added there. A member added takes a fresh name
(`n4`, `n5`, ... never reused) in a free slot, with an empty data dir and
a config that runs `serve --join` through a running member; a member
vacated is killed and its data dir deleted, so its slot (same addresses)
can take a new member later.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
from pathlib import Path

from tandemkv.server.node.config import NodeConfig
from tandemkv.server.process import settings

from .nodes import FAULT_TIMINGS, REAP_TIMEOUT_S, NodeProcess, NodeSet

FOUNDERS = 3
# Entries after which every node snapshots and compacts its log, so a node
# added late in a long run is sent a snapshot instead of the whole history.
SNAPSHOT_ENTRIES = 1_000


class MemberNodeSet(NodeSet):
    """`slots` node slots under `root`; the first FOUNDERS are members."""

    def __init__(self, root: Path, slots: int, *, isolated: bool, separate_groups: bool):
        assert slots >= FOUNDERS
        super().__init__(root, slots, isolated=isolated, separate_groups=separate_groups)
        self.member_slots = set(range(FOUNDERS))
        self._names_used = FOUNDERS
        for node in self.nodes[FOUNDERS:]:
            # A free slot gets a name and a config when a member is added there.
            self.config_path(node.name).unlink()
            node.name = f"free-slot-{node.index}"

    def _write_config(self, node: NodeProcess, join: str = "") -> None:
        founders = self.nodes[:FOUNDERS] if len(self.nodes) >= FOUNDERS else []
        peers = () if join else tuple(other.member for other in founders if other is not node)
        config = NodeConfig(name=node.name, data_dir=self.data_root / node.name,
                            raft_address=node.member.raft_address, client_address=node.member.client_address,
                            peers=peers, map_size_bytes=256 << 20,
                            timings=dataclasses.replace(FAULT_TIMINGS, snapshot_entries_min=SNAPSHOT_ENTRIES))
        text = settings.to_toml(config, None)
        self.config_path(node.name).write_text((f'join = "{join}"\n' if join else "") + text)

    def members(self) -> list[NodeProcess]:
        return [self.nodes[slot] for slot in sorted(self.member_slots)]

    def member_endpoints(self) -> list[str]:
        return [node.member.client_address for node in self.members()]

    def free_slots(self) -> list[int]:
        return [slot for slot in range(len(self.nodes)) if slot not in self.member_slots]

    def occupy(self, slot: int, join_through: str) -> NodeProcess:
        """A fresh name in free `slot`, configured to join through `join_through`."""
        assert slot not in self.member_slots
        node = self.nodes[slot]
        assert not node.running, f"slot {slot} still runs {node.name}"
        self._names_used += 1
        node.name = f"n{self._names_used}"
        node.member = dataclasses.replace(node.member, name=node.name)
        node.process, node.starts, node.killed, node.paused = None, 0, False, False
        self._write_config(node, join=join_through)
        self.member_slots.add(slot)
        return node

    def vacate(self, name: str) -> None:
        """Kills `name` if it runs, deletes its data, frees its slot."""
        node = self.node(name)
        if node.running:
            node.process.send_signal(signal.SIGKILL)
            node.killed = True
            node.process.wait(timeout=REAP_TIMEOUT_S)
        node.killed = True  # an exit of a vacated node is never a crash
        shutil.rmtree(self.data_root / name, ignore_errors=True)
        self.member_slots.discard(node.index)
