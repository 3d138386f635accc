"""The node's files on disk: fsync helpers (making a file's bytes, or a
rename or unlink inside a directory, durable) and private modes.

Everything a node writes is its own: data directories are 0700 and files
0600, so the state, the Raft log and snapshots are not readable by other
local users. A data directory left by an older version with wider modes is
tightened when the node starts, and the node says so in its log.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def fsync_path(path: Path) -> None:
    """fsyncs a file, or a directory (which makes the names in it durable)."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dir(path: Path) -> Path:
    """Creates `path` (mode 0700), or tightens an existing one and
    everything in it: directories to 0700, files to 0600."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tightened = tighten_tree(path)
    if tightened:
        log.warning("%s: tightened %d path(s) to mode 0700 (directories) and 0600 (files); "
                    "they were readable by other users (written by an older version?)",
                    path, tightened)
    return path


def tighten_tree(root: Path) -> int:
    """chmods every directory under `root` (itself included) that others
    or the group may use to 0700 and every such file to 0600; returns how
    many it changed. Symbolic links are left alone."""
    changed = _tighten(root, DIR_MODE)
    for parent, dirs, files in os.walk(root):
        for name in dirs:
            changed += _tighten(Path(parent, name), DIR_MODE)
        for name in files:
            changed += _tighten(Path(parent, name), FILE_MODE)
    return changed


def _tighten(path: Path, mode: int) -> int:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o077:
        return 0
    os.chmod(path, mode)
    return 1


def open_private(path: Path | str, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """os.open for a file the node writes: created 0600, and an existing
    file (a leftover temporary, say) tightened to it."""
    fd = os.open(str(path), flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd
