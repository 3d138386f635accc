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
    everything in it so that only the owner has access."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tightened = tighten_tree(path)
    if tightened:
        log.warning("%s: took group and other access away from %d path(s); "
                    "others could read them (written by an older version?)",
                    path, tightened)
    return path


def tighten_tree(root: Path) -> int:
    """Takes the group's and others' access away from `root` and everything
    under it (what the node wrote becomes 0700 and 0600; the owner's bits
    of anything else stay as they were); returns how many paths changed.
    Symbolic links are neither changed nor followed."""
    changed = _tighten(root)
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            changed += _tighten(Path(parent, name))
    return changed


def _tighten(path: Path) -> int:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o077:
        return 0
    os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700)
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
