"""Backup files on this machine, for `tandemkv snapshot status|restore`:
check one (`status`), and seed a new member's data dir from one
(`restore`). The file format and the strong plane's part are
server/storage/backup.py; the CRDT store's part is its own
(`CrdtStore.forget_replica_id`).

`restore` refuses before it writes anything: a file that is not a whole
backup (checked in full first: etcd users restored copies damaged on their
way between hosts), and a data dir that exists and is not empty. It builds
the data dir beside the target under a temporary name and renames it into
place last, so an interrupted restore leaves no half-seeded data dir that
a node could start on.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

from tandemkv.server.available.storage import CrdtStore
from tandemkv.server.node.config import Member, NodeConfig
from tandemkv.server.storage import backup
from tandemkv.server.storage.backup import BackupInfo, BackupInvalid
from tandemkv.server.storage.disk import DIR_MODE, fsync_path

__all__ = ["BackupInfo", "BackupInvalid", "Restored", "restore", "status"]


@dataclasses.dataclass(frozen=True)
class Restored:
    info: BackupInfo
    data_dir: Path
    member: Member
    peers: tuple[Member, ...]

    def serve_command(self) -> str:
        """The `tandemkv serve` line that starts the restored member."""
        words = ["tandemkv", "serve", "--name", self.member.name, "--data-dir", str(self.data_dir),
                 "--raft-address", self.member.raft_address, "--client-address", self.member.client_address]
        if self.peers:
            peers = ";".join(f"{p.name}={p.raft_address},{p.client_address}".rstrip(",") for p in self.peers)
            words += ["--peers", f"'{peers}'"]
        return " ".join(words)


def status(path: Path) -> BackupInfo:
    """What the backup at `path` holds, once checked whole (BackupInvalid
    if it is not)."""
    return backup.read_backup(path)


def restore(path: Path, data_dir: Path, member: Member | tuple[str, str, str], peers: tuple[Member, ...],
            map_size_bytes: int = NodeConfig.map_size_bytes) -> Restored:
    """Seeds `data_dir` for `member` (or its name, Raft and client
    addresses) of a new cluster whose other members are `peers`, from the
    backup at `path`. Raises BackupInvalid (the file) or ValueError (the
    arguments: a data dir in use, a member twice) before anything is
    written."""
    member = Member(*member) if isinstance(member, tuple) else member
    _check_members(member, peers)
    # The settings `serve` will check (addresses, names), checked now.
    NodeConfig(name=member.name, data_dir=Path(data_dir), raft_address=member.raft_address,
               client_address=member.client_address, peers=tuple(peers))
    info = backup.read_backup(path)
    data_dir = Path(data_dir)
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise ValueError(f"{data_dir} is not empty; restore into a new (or empty) data dir: a restored "
                         "member starts a new cluster and must not mix with what is there")
    data_dir.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restoring-", dir=data_dir.parent))
    try:
        building.chmod(DIR_MODE)
        backup.seed_member(path, info, building, [m.raft_address for m in (member, *peers)], map_size_bytes)
        if info.crdt_image_bytes:
            store = CrdtStore(building / backup.CRDT_DIR_NAME)
            try:
                store.forget_replica_id()
            finally:
                store.close()
        if data_dir.exists():
            data_dir.rmdir()  # empty, checked above
        os.replace(building, data_dir)
        fsync_path(data_dir.parent)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return Restored(info, data_dir, member, tuple(peers))


def _check_members(member: Member, peers: tuple[Member, ...]) -> None:
    everyone = (member, *peers)
    for field in ("name", "raft_address"):
        values = [getattr(m, field) for m in everyone]
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"the new cluster names {field.replace('_', ' ')} {', '.join(repeated)} more than "
                             "once; give every member its own")
