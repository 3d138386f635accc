"""The power-loss experiment's rig: the nodes (`PowerNodeSet`, data
directories on lossyfs mounts), a `Canary` per mount that shows what a cut
dropped, and `PowerLossRig`, which mounts, starts, cuts every node and
every disk at once, and tears everything down.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
from pathlib import Path

from tandemkv.server.process import settings
from tandemkv.server.node.config import NodeConfig
from tandemkv.server.storage.crash_marker import BOOT_ID_OVERRIDE_ENV

from .nodes import FAULT_TIMINGS, NodeSet
from .power_mounts import REAP_TIMEOUT_S, LossyMount

# Short Raft timings (elections within about a second) and frequent
# snapshots, so cuts also hit snapshot writes and log compaction.
POWER_TIMINGS = dataclasses.replace(FAULT_TIMINGS, snapshot_entries_min=300, snapshot_interval_s=3.0)
CANARY_DURABLE = b"durable canary\n"
CANARY_UNSYNCED = b"never synced\n"


class PowerNodeSet(NodeSet):
    """The faults harness's nodes on 127.0.0.1, each with its data
    directory at `data_root/<name>/data` and POWER_TIMINGS."""

    def _write_config(self, node) -> None:
        config = NodeConfig(
            name=node.name, data_dir=self.data_root / node.name / "data", raft_address=node.member.raft_address,
            client_address=node.member.client_address,
            peers=tuple(other.member for other in self.nodes if other is not node),
            timings=POWER_TIMINGS, map_size_bytes=256 << 20,
        )
        self.config_path(node.name).write_text(settings.to_toml(config, None))


class Canary:
    """Files on one mount that show what a cut dropped."""

    def __init__(self, mountpoint: Path):
        self.durable = mountpoint / "canary"
        self.fresh = mountpoint / "canary-unsynced"

    def plant(self) -> None:
        """After every mount: the durable file with its known content, the
        fresh one absent, all synced."""
        with open(self.durable, "wb") as out:
            out.write(CANARY_DURABLE)
            out.flush()
            os.fsync(out.fileno())
        self.fresh.unlink(missing_ok=True)
        _fsync_directory(self.durable.parent)

    def dirty(self, round_number: int) -> None:
        """Just before a cut: changes that no sync covers."""
        with open(self.durable, "r+b") as out:
            out.write(f"unsynced overwrite before cut {round_number}\n".encode())
        self.fresh.write_bytes(CANARY_UNSYNCED)

    def dropped(self) -> bool:
        """After a cut that kept nothing unsynced: were both changes lost?
        The new file's name may survive (any fsync on the mount, a node's
        for one, commits namespace operations), but not its content. (After
        a torn cut either may be kept, in part: its page without its new
        size or the other way round.)"""
        fresh = self.fresh.read_bytes() if self.fresh.exists() else b""
        return self.durable.read_bytes() == CANARY_DURABLE and fresh == b""


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PowerLossRig:
    """Mounts, nodes and canaries under `root`; `close()` stops every
    process and takes every mount down, whatever state it is in."""

    def __init__(self, root: Path, node_count: int = 3):
        self.root = Path(root)
        disks = self.root / "disks"
        self.nodes = PowerNodeSet(self.root / "cluster", node_count, isolated=False, separate_groups=False,
                                  data_root=disks)
        self.mounts = {node.name: LossyMount(self.root / "backing" / node.name, disks / node.name,
                                             self.root / f"lossyfs-{node.name}.log")
                       for node in self.nodes.nodes}
        self.canaries = {name: Canary(mount.mountpoint) for name, mount in self.mounts.items()}

    @property
    def endpoints(self) -> list[str]:
        return self.nodes.endpoints

    def mount_all(self) -> None:
        for mount in self.mounts.values():
            mount.mount()

    def start_nodes(self, boot_id: str) -> None:
        """Starts every node as after a boot with id `boot_id`."""
        for node in self.nodes.nodes:
            self.nodes.start(node.name, env={BOOT_ID_OVERRIDE_ENV: boot_id})

    def power_cut(self, keep: dict[str, float], rng: random.Random) -> dict[str, dict | None]:
        """Every node and every disk at once (nodes first, so none sees its
        disk fail), then reap and unmount. Returns each torn cut's report."""
        live = [n.process for n in self.nodes.nodes if n.process is not None and n.process.poll() is None]
        for process in live:
            process.send_signal(signal.SIGKILL)
        for node in self.nodes.nodes:
            node.killed = True
        for name, mount in self.mounts.items():
            mount.start_cut(keep[name], rng.randrange(1 << 31))
        for process in live:
            process.wait(timeout=REAP_TIMEOUT_S)
        for mount in self.mounts.values():
            mount.cut()
        return {name: mount.cut_report() for name, mount in self.mounts.items()}

    def close(self) -> None:
        try:
            self.nodes.stop_all()
        finally:
            for mount in self.mounts.values():
                mount.kill()
                mount.cut()

    def crash_recoveries(self) -> dict[str, int]:
        """How often each node's log says it rebuilt after a machine crash."""
        return {node.name: self.nodes.log_path(node.name).read_text(errors="replace").count(
            "machine crash detected") for node in self.nodes.nodes}


