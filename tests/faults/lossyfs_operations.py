"""lossyfs's filesystem operations (`LossyFS`, an mfusepy `Operations`):
a pass-through to BACKING that keeps file contents and sizes in
`FileData` until a sync, journals namespace operations in `UndoJournal`
(see lossyfs_model.py), serves the virtual stats file, and performs a
torn cut. lossyfs.py mounts it and documents what survives a cut.
"""

from __future__ import annotations

import errno
import json
import os
import random
import stat
import threading
from pathlib import Path

import mfusepy

from .lossyfs_model import INTERNAL_NAME, PAGE_BYTES, FileData, UndoJournal

STATS_NAME = ".lossyfs-stats"  # at the mount's root: virtual, read-only
RESERVED_PATHS = ("/" + INTERNAL_NAME, "/" + STATS_NAME)
SYNC_FLAGS = os.O_SYNC | os.O_DSYNC


def _error(code: int) -> mfusepy.FuseOSError:
    return mfusepy.FuseOSError(code)


class Handle:
    """An open file: its FileData (None for the stats file) and open flags."""

    def __init__(self, data: FileData | None, flags: int, content: bytes = b""):
        self.data = data
        self.flags = flags
        self.content = content


class LossyFS(mfusepy.Operations):
    use_ns = True
    flag_nopath = True  # with flag_nullpath_ok: handle ops may get no path
    flag_nullpath_ok = True

    def __init__(self, backing: Path, rolled_back: int = 0):
        self.backing = backing
        self.request_lock = threading.Lock()  # not "lock": that name is a FUSE operation
        self.journal = UndoJournal(backing)
        self.files: dict[tuple[int, int], FileData] = {}
        self.handles: dict[int, Handle] = {}
        self.directories: dict[int, str] = {}  # open directory handle -> path
        self._next_handle = 0
        self.counters = {"rolled_back_at_mount": rolled_back, "syncs": 0, "bytes_synced": 0,
                         "bytes_written": 0, "namespace_ops_committed": 0}

    def init_with_config(self, conn_info, config) -> None:
        if config is not None:
            config.hard_remove = 1  # no .fuse_hidden files: the daemon keeps its own fds

    # -- helpers -----------------------------------------------------------
    def _path(self, path: str) -> str:
        if path in RESERVED_PATHS or path.startswith(RESERVED_PATHS[0] + "/"):
            raise _error(errno.EPERM)
        return self.journal.on_disk(path)

    def _file_for_fd(self, fd: int) -> FileData:
        """The FileData of the file `fd` (a fresh fd of ours) names; takes
        over `fd` or closes it if the file is already tracked."""
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino)
        data = self.files.get(key)
        if data is None:
            data = self.files[key] = FileData(fd)
        else:
            os.close(fd)
        return data

    def _new_handle(self, fi, handle: Handle) -> int:
        self._next_handle += 1
        self.handles[self._next_handle] = handle
        fi.fh = self._next_handle
        if handle.data is None:
            fi.direct_io = 1  # the stats file's size is not known in advance
        else:
            handle.data.handles += 1
        return 0

    def _handle(self, fi) -> Handle:
        return self.handles[fi.fh]

    def _forget_if_idle(self, data: FileData) -> None:
        """Drops a file nobody has open, once it has nothing held or no name
        left in BACKING (its held changes can never be synced)."""
        if data.handles or (data.dirty and os.fstat(data.fd).st_nlink):
            return
        info = os.fstat(data.fd)
        self.files.pop((info.st_dev, info.st_ino), None)
        os.close(data.fd)

    def _sync(self, data: FileData | None) -> None:
        self.counters["namespace_ops_committed"] += self.journal.commit()
        self.counters["syncs"] += 1
        if data is not None:
            self.counters["bytes_synced"] += data.sync()
        for idle in [d for d in self.files.values() if not d.handles]:
            self._forget_if_idle(idle)

    def stats(self) -> dict:
        dirty = [d for d in self.files.values() if d.dirty]
        return {**self.counters,
                "unsynced_files": len(dirty),
                "unsynced_bytes": sum(len(d.pages) for d in dirty) * PAGE_BYTES,
                "uncommitted_namespace_ops": self.journal.pending}

    def torn_cut(self, rng: random.Random, keep: float) -> dict:
        """What a power cut leaves when the disk wrote back part of what was
        not synced: each held page with probability `keep`, and a random
        prefix of the uncommitted namespace operations (none if keep is 0)."""
        pending = self.journal.pending
        survive = rng.randint(0, pending) if keep > 0 else 0
        self.journal.commit_first(survive)
        kept = lost = files_with_losses = 0
        for data in self.files.values():
            data_kept, data_lost = data.write_back_some(rng, keep)
            kept, lost = kept + data_kept, lost + data_lost
            files_with_losses += bool(data_lost)
        return {"keep_probability": keep, "pages_kept": kept, "pages_lost": lost,
                "bytes_lost": lost * PAGE_BYTES, "files_with_losses": files_with_losses,
                "namespace_ops_kept": survive, "namespace_ops_lost": pending - survive}

    # -- attributes and directories ---------------------------------------
    def getattr(self, path, fh=None):
        if path == "/" + STATS_NAME:
            return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": 0}
        handle = None if fh is None else self._handle(fh)
        if handle is not None and handle.data is None:
            return self.getattr("/" + STATS_NAME)
        if handle is not None:
            data = handle.data
            info = os.fstat(data.fd)
        else:
            info = os.lstat(self._path(path))
            data = self.files.get((info.st_dev, info.st_ino))
        attrs = {key: getattr(info, key) for key in (
            "st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime_ns", "st_mtime_ns",
            "st_ctime_ns")}
        for key in ("st_atime", "st_mtime", "st_ctime"):
            attrs[key] = attrs.pop(key + "_ns")
        if data is not None:
            attrs["st_size"] = data.size
        return attrs

    def access(self, path, amode):
        if path != "/" + STATS_NAME and not os.path.lexists(self._path(path)):
            raise _error(errno.ENOENT)
        return 0

    def _target(self, path: str | None, fh) -> str | int:
        """What an attribute change applies to: the open file's fd, or the path."""
        handle = None if fh is None else self._handle(fh)
        if handle is not None and handle.data is not None:
            return handle.data.fd
        if path is None:
            raise _error(errno.EBADF)
        return self._path(path)

    def chmod(self, path, mode, fh=None):
        os.chmod(self._target(path, fh), stat.S_IMODE(mode))
        return 0

    def chown(self, path, uid, gid, fh=None):
        os.chown(self._target(path, fh), uid, gid)
        return 0

    def utimens(self, path, times=None, fh=None):
        target = self._target(path, fh)
        if times is None:
            os.utime(target)
        else:
            current = os.stat(target)
            os.utime(target, ns=(current.st_atime_ns if times[0] is None else times[0],
                                 current.st_mtime_ns if times[1] is None else times[1]))
        return 0

    def statfs(self, path):
        info = os.statvfs(self.backing)
        return {key: getattr(info, key) for key in (
            "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree",
            "f_favail", "f_flag", "f_namemax")}

    def opendir(self, path):
        if not os.path.isdir(self._path(path)):
            raise _error(errno.ENOTDIR)
        self._next_handle += 1
        self.directories[self._next_handle] = path  # readdir gets no path
        return self._next_handle

    def readdir(self, path, fh):
        path = self.directories[fh]
        names = os.listdir(self._path(path))
        if path == "/":
            names = [n for n in names if n != INTERNAL_NAME]
        return [".", "..", *names]

    def releasedir(self, path, fh):
        self.directories.pop(fh, None)
        return 0

    def fsyncdir(self, path, datasync, fh):
        self._sync(None)
        return 0

    # -- namespace (journaled) -------------------------------------------
    def mkdir(self, path, mode):
        target = self._path(path)
        if os.path.lexists(target):
            raise _error(errno.EEXIST)
        self.journal.apply({"op": "mkdir", "path": path}, lambda: os.mkdir(target, mode))
        return 0

    def unlink(self, path):
        if os.path.isdir(self._path(path)):
            raise _error(errno.EISDIR)
        self.journal.remove(path)
        return 0

    def rmdir(self, path):
        target = self._path(path)
        if not os.path.isdir(target) or os.path.islink(target):
            raise _error(errno.ENOTDIR)
        if os.listdir(target):
            raise _error(errno.ENOTEMPTY)
        self.journal.remove(path)
        return 0

    def rename(self, old, new):
        source, target = self._path(old), self._path(new)
        source_info = os.lstat(source)
        mark = self.journal.mark()
        if os.path.lexists(target):
            target_info = os.lstat(target)
            if (source_info.st_dev, source_info.st_ino) == (target_info.st_dev, target_info.st_ino):
                return 0  # POSIX: renaming a file onto itself does nothing
            _check_replaceable(source_info, target, target_info)
        if stat.S_ISDIR(source_info.st_mode) and new.startswith(old + "/"):
            raise _error(errno.EINVAL)
        try:
            self.journal.rename(old, new, replaces=os.path.lexists(target))
        except OSError:
            self.journal.undo_to(mark)
            raise
        return 0

    def link(self, target, source):
        raise _error(errno.EPERM)

    def symlink(self, target, source):
        raise _error(errno.EPERM)

    def mknod(self, path, mode, dev):
        raise _error(errno.EPERM)

    # -- files -------------------------------------------------------------
    def create(self, path, mode, fi):
        target = self._path(path)
        if os.path.lexists(target):
            raise _error(errno.EEXIST)
        opened = []
        self.journal.apply({"op": "create", "path": path}, lambda: opened.append(
            os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL, stat.S_IMODE(mode))))
        return self._new_handle(fi, Handle(self._file_for_fd(opened[0]), fi.flags))

    def open(self, path, fi):
        if path == "/" + STATS_NAME:
            content = json.dumps(self.stats(), sort_keys=True).encode() + b"\n"
            return self._new_handle(fi, Handle(None, fi.flags, content))
        target = self._path(path)
        if os.path.isdir(target):
            raise _error(errno.EISDIR)
        data = self._file_for_fd(os.open(target, os.O_RDWR | os.O_CLOEXEC))
        if fi.flags & os.O_TRUNC:
            data.truncate(0)
        return self._new_handle(fi, Handle(data, fi.flags))

    def read(self, path, size, offset, fi):
        handle = self._handle(fi)
        if handle.data is None:
            return handle.content[offset:offset + size]
        return handle.data.read(offset, size)

    def write(self, path, data, offset, fi):
        handle = self._handle(fi)
        if handle.data is None:
            raise _error(errno.EBADF)
        handle.data.write(offset, data)
        self.counters["bytes_written"] += len(data)
        if handle.flags & SYNC_FLAGS:
            self._sync(handle.data)
        return len(data)

    def truncate(self, path, length, fh=None):
        if fh is not None and self._handle(fh).data is not None:
            self._handle(fh).data.truncate(length)
            return 0
        target = self._path(path)
        if os.path.isdir(target):
            raise _error(errno.EISDIR)
        data = self._file_for_fd(os.open(target, os.O_RDWR))
        data.truncate(length)
        self._forget_if_idle(data)
        return 0

    def flush(self, path, fi):
        return 0

    def fsync(self, path, datasync, fi):
        self._sync(self._handle(fi).data)
        return 0

    def release(self, path, fi):
        handle = self.handles.pop(fi.fh)
        if handle.data is not None:
            handle.data.handles -= 1
            self._forget_if_idle(handle.data)
        return 0


def _check_replaceable(source_info: os.stat_result, target: str, target_info: os.stat_result) -> None:
    """The errors rename(2) gives before replacing `target`."""
    source_is_dir = stat.S_ISDIR(source_info.st_mode)
    target_is_dir = stat.S_ISDIR(target_info.st_mode)
    if source_is_dir and not target_is_dir:
        raise _error(errno.ENOTDIR)
    if target_is_dir and not source_is_dir:
        raise _error(errno.EISDIR)
    if target_is_dir and os.listdir(target):
        raise _error(errno.ENOTEMPTY)

