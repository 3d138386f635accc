"""lossyfs: a FUSE filesystem that loses what was not synced when its
process dies, so SIGKILL of the daemon is a power cut.

    python -m tests.faults.lossyfs BACKING MOUNTPOINT

It passes through to the BACKING directory, which plays the disk: after a
cut, what BACKING holds is what the machine finds when it comes back. The
model (what survives a cut):

- File contents and sizes (write, truncate, open with O_TRUNC) are held in
  the daemon's memory, per file, and reach BACKING only when that file is
  fsynced or fdatasynced, or written through a handle opened O_SYNC or
  O_DSYNC. Reads see the held changes over BACKING's bytes.
- Namespace operations (create, mkdir, unlink, rmdir, rename) are applied to
  BACKING at once but recorded first in an undo journal
  (`BACKING/.lossyfs/journal`; removed files wait in `.lossyfs/trash/`).
  An fsync or fsyncdir of anything on the mount commits all of them, in
  order, as one metadata journal does on ext4 or XFS; the next mount rolls
  back whatever was not committed.
- A cut by SIGKILL loses every held change. A torn cut (a command on
  stdin, see `_serve_commands`) first writes back a random part of them, as
  a disk's writeback may have done before the power went: each held page
  with a given probability, in no order, and the oldest few uncommitted
  namespace operations. Both are outcomes a real disk allows; torn ones
  also leave files that were never synced as a mix of old and new pages
  (an LMDB environment opened without sync, for example).
- Not modelled: attributes (mode, owner, times; passed straight through),
  torn writes within one page, a stricter per-directory rule where only
  fsync of a directory makes its entries durable, hard links, symlinks and
  special files (refused).

The daemon serves requests on one thread (libfuse's `-s`); a lock around
every request lets the command thread cut between two of them. It mounts
with `auto_unmount`, and with `--die-with-parent` it is killed when its
parent exits, so a crashed harness leaves no daemon and no mount behind.
Reading `MOUNTPOINT/.lossyfs-stats` (not listed) returns JSON counters:
what is held unsynced right now and what was synced.

A fresh mount also starts with an empty kernel page cache for these files,
which is why the harness unmounts and mounts again after a cut.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import random
import shutil
import signal
import stat
import sys
import threading
import time
from pathlib import Path

import mfusepy

PAGE_BYTES = 4096
INTERNAL_NAME = ".lossyfs"  # inside BACKING: the undo journal and trash
STATS_NAME = ".lossyfs-stats"  # at the mount's root: virtual, read-only
RESERVED_PATHS = ("/" + INTERNAL_NAME, "/" + STATS_NAME)
SYNC_FLAGS = os.O_SYNC | os.O_DSYNC
PR_SET_PDEATHSIG = 1
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def _error(code: int) -> mfusepy.FuseOSError:
    return mfusepy.FuseOSError(code)


class FileData:
    """One BACKING file's unsynced changes: pages written since the last
    sync and the file's size as the mount sees it.

    Invariants: BACKING's bytes at or past `valid` count as zeros (the file
    was cut shorter since the last sync); in every held page, bytes at or
    past `size` are zeros."""

    def __init__(self, fd: int):
        self.fd = fd
        self.synced_size = os.fstat(fd).st_size
        self.size = self.synced_size
        self.valid = self.synced_size
        self.pages: dict[int, bytearray] = {}
        self.handles = 0

    @property
    def dirty(self) -> bool:
        return bool(self.pages) or self.size != self.synced_size or self.valid != self.synced_size

    def _backing_bytes(self, offset: int, length: int) -> bytes:
        length = min(length, self.valid - offset)
        return os.pread(self.fd, length, offset) if length > 0 else b""

    def _page(self, number: int) -> bytearray:
        page = self.pages.get(number)
        if page is None:
            page = bytearray(PAGE_BYTES)
            held = self._backing_bytes(number * PAGE_BYTES, PAGE_BYTES)
            page[:len(held)] = held
            self.pages[number] = page
        return page

    def read(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        out = bytearray(end - offset)
        held = self._backing_bytes(offset, end - offset)
        out[:len(held)] = held
        for number in range(offset // PAGE_BYTES, (end - 1) // PAGE_BYTES + 1):
            page = self.pages.get(number)
            if page is not None:
                start = max(offset, number * PAGE_BYTES)
                stop = min(end, (number + 1) * PAGE_BYTES)
                out[start - offset:stop - offset] = page[start - number * PAGE_BYTES:stop - number * PAGE_BYTES]
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        position = 0
        while position < len(data):
            number, within = divmod(offset + position, PAGE_BYTES)
            chunk = min(PAGE_BYTES - within, len(data) - position)
            self._page(number)[within:within + chunk] = data[position:position + chunk]
            position += chunk
        self.size = max(self.size, offset + len(data))

    def truncate(self, length: int) -> None:
        if length < self.size:
            for number in [n for n in self.pages if n * PAGE_BYTES >= length]:
                del self.pages[number]
            number, within = divmod(length, PAGE_BYTES)
            if within:
                self._page(number)[within:] = bytes(PAGE_BYTES - within)
            self.valid = min(self.valid, length)
        self.size = length

    def sync(self) -> int:
        """Writes every held change to BACKING; returns the bytes written."""
        if self.valid < self.synced_size:
            os.ftruncate(self.fd, self.valid)
        written = 0
        for number in sorted(self.pages):
            page = self.pages[number]
            length = min(PAGE_BYTES, self.size - number * PAGE_BYTES)
            written += os.pwrite(self.fd, page[:length], number * PAGE_BYTES)
        if os.fstat(self.fd).st_size != self.size:
            os.ftruncate(self.fd, self.size)
        self.pages.clear()
        self.synced_size = self.valid = self.size
        return written

    def write_back_some(self, rng: random.Random, keep: float) -> tuple[int, int]:
        """At a torn cut: each held page, a pending cut-short and the new
        size each reach BACKING with probability `keep`, in no particular
        order; returns (pages kept, pages lost). The daemon dies right after."""
        if self.valid < self.synced_size and rng.random() < keep:
            os.ftruncate(self.fd, self.valid)
        kept = 0
        for number in rng.sample(sorted(self.pages), len(self.pages)):
            length = min(PAGE_BYTES, self.size - number * PAGE_BYTES)
            if rng.random() < keep:
                os.pwrite(self.fd, self.pages[number][:length], number * PAGE_BYTES)
                kept += 1
        if rng.random() < keep:
            os.ftruncate(self.fd, self.size)
        return kept, len(self.pages) - kept


class UndoJournal:
    """Namespace operations not committed yet, each recorded (one JSON line)
    before it is applied to BACKING, so that a daemon killed between the two
    still rolls back correctly. Every undo step checks what is there, so an
    interrupted rollback can run again."""

    def __init__(self, backing: Path):
        self.backing = backing
        self.trash = backing / INTERNAL_NAME / "trash"
        self.trash.mkdir(parents=True, exist_ok=True)
        self.path = backing / INTERNAL_NAME / "journal"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.pending = 0
        self._slots = 0

    def on_disk(self, mount_path: str) -> str:
        return str(self.backing) + mount_path

    # -- recording ---------------------------------------------------------
    def mark(self) -> int:
        return os.lseek(self.fd, 0, os.SEEK_END)

    def apply(self, entry: dict, action) -> None:
        """Records `entry`, then runs `action`; forgets the record if the
        action fails."""
        mark = self.mark()
        os.write(self.fd, json.dumps(entry).encode() + b"\n")
        try:
            action()
        except OSError:
            os.ftruncate(self.fd, mark)
            raise
        self.pending += 1

    def remove(self, mount_path: str) -> None:
        """unlink or rmdir: moves the entry into the trash, where a rollback
        finds it."""
        self._slots += 1
        slot = str(self.trash / str(self._slots))
        self.apply({"op": "trash", "path": mount_path, "slot": slot},
                   lambda: os.rename(self.on_disk(mount_path), slot))

    def commit(self) -> int:
        """Makes every recorded operation durable; returns how many."""
        committed, self.pending = self.pending, 0
        if committed:
            os.ftruncate(self.fd, 0)
            _empty(self.trash)
        return committed

    def commit_first(self, count: int) -> None:
        """At a torn cut: the oldest `count` operations became durable; the
        rest stay recorded for the rollback at the next mount."""
        entries = self._entries_after(0)
        os.ftruncate(self.fd, 0)
        for entry in entries[count:]:
            os.write(self.fd, json.dumps(entry).encode() + b"\n")

    # -- rollback --------------------------------------------------------
    def _entries_after(self, mark: int) -> list[dict]:
        os.lseek(self.fd, mark, os.SEEK_SET)
        lines = b""
        while chunk := os.read(self.fd, 1 << 20):
            lines += chunk
        # A daemon killed inside a write may leave a partial last line; its
        # operation never ran.
        return [json.loads(line) for line in lines.split(b"\n") if line.endswith(b"}")]

    def undo_to(self, mark: int) -> int:
        """Undoes the operations recorded after `mark`, newest first;
        returns how many. `undo_to(0)` at mount is the power-cut rollback."""
        entries = self._entries_after(mark)
        for entry in reversed(entries):
            self._undo(entry)
        os.ftruncate(self.fd, mark)
        self.pending = max(0, self.pending - len(entries))
        if mark == 0:
            _empty(self.trash)
        return len(entries)

    def _undo(self, entry: dict) -> None:
        kind = entry["op"]
        if kind == "create":
            path = self.on_disk(entry["path"])
            if os.path.lexists(path):
                os.unlink(path)
        elif kind == "mkdir":
            path = self.on_disk(entry["path"])
            if os.path.isdir(path):
                os.rmdir(path)
        elif kind == "trash":
            if os.path.lexists(entry["slot"]):
                os.rename(entry["slot"], self.on_disk(entry["path"]))
        elif kind == "rename":
            old, new = self.on_disk(entry["old"]), self.on_disk(entry["new"])
            if os.path.lexists(new) and not os.path.lexists(old):
                os.rename(new, old)
        else:
            raise ValueError(f"unknown journal entry {entry!r}")


def _empty(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


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
            if os.path.lexists(target):
                self.journal.remove(new)
            self.journal.apply({"op": "rename", "old": old, "new": new},
                               lambda: os.rename(source, target))
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


class _FUSE(mfusepy.FUSE):
    """mfusepy with the open file passed on: for an open file the kernel
    sends truncate (ftruncate), chmod, chown and utimens with a file handle
    and, under nullpath_ok, no path; mfusepy's libfuse 3 wrappers drop the
    handle. Also refuses renameat2's flags, which mfusepy would ignore."""

    def _wrapper(self, func, *args, **kwargs):
        with self.operations.request_lock:  # a torn cut waits for the request in progress
            return super()._wrapper(func, *args, **kwargs)

    def _decode(self, path: bytes | None) -> str | None:
        return None if path is None else path.decode(self.encoding, self.errors)

    def truncate_fuse_3(self, path, length, fip):
        return self.operations.truncate(self._decode(path), length, fip.contents if fip else None)

    def chmod_fuse_3(self, path, mode, fip):
        return self.operations.chmod(self._decode(path), mode, fip.contents if fip else None)

    def chown_fuse_3(self, path, uid, gid, fip):
        uid = -1 if mfusepy.c_uid_t(uid + 1).value == 0 else uid
        gid = -1 if mfusepy.c_gid_t(gid + 1).value == 0 else gid
        return self.operations.chown(self._decode(path), uid, gid, fip.contents if fip else None)

    def utimens_fuse_3(self, path, buf, fip):
        times = None
        if buf:
            times = tuple(_timespec_ns(ts) for ts in (buf.contents.actime, buf.contents.modtime))
        return self.operations.utimens(self._decode(path), times, fip.contents if fip else None)

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        if flags:
            return -errno.EINVAL
        return super().rename_fuse_3(old, new, flags)


def _timespec_ns(ts) -> int | None:
    """Nanoseconds, or None for UTIME_OMIT (keep the current time)."""
    if ts.tv_nsec == UTIME_NOW:
        return time.time_ns()
    if ts.tv_nsec == UTIME_OMIT:
        return None
    return ts.tv_sec * 10**9 + ts.tv_nsec


def _die_with_parent() -> None:
    """SIGKILL this daemon when the process (thread) that started it exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:
        sys.exit("lossyfs: the parent process is already gone")


def _serve_commands(fs: LossyFS, commands) -> None:
    """Reads commands, one JSON object a line, until end of input:
    {"cut": {"seed": N, "keep": P, "report": PATH}} writes back part of what
    is held (see `LossyFS.torn_cut`), writes a JSON report to PATH and
    SIGKILLs the daemon."""
    for line in commands:
        cut = json.loads(line)["cut"]
        with fs.request_lock:
            report = fs.torn_cut(random.Random(cut["seed"]), float(cut["keep"]))
            temporary = cut["report"] + ".tmp"
            with open(temporary, "w") as out:
                json.dump(report, out)
            os.rename(temporary, cut["report"])
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.lossyfs", description=__doc__.split("\n\n")[0])
    parser.add_argument("backing", type=Path, help="the directory that plays the disk")
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument("--die-with-parent", action="store_true",
                        help="exit (SIGKILL) when the process that started the daemon exits")
    parser.add_argument("--commands-on-stdin", action="store_true",
                        help="read torn-cut commands on stdin (see _serve_commands)")
    args = parser.parse_args(argv)
    if args.die_with_parent:
        _die_with_parent()
    os.umask(0)  # the kernel applied the caller's umask already
    backing = args.backing.resolve()
    journal = UndoJournal(backing)
    rolled_back = journal.undo_to(0)
    os.close(journal.fd)
    print(f"lossyfs: {backing} on {args.mountpoint}; rolled back {rolled_back} uncommitted "
          "namespace operations", flush=True)
    fs = LossyFS(backing, rolled_back)
    if args.commands_on_stdin:
        threading.Thread(target=_serve_commands, args=(fs, sys.stdin), daemon=True).start()
    _FUSE(fs, str(args.mountpoint), raw_fi=True, foreground=True,
          nothreads=True, fsname="lossyfs", subtype="lossyfs", auto_unmount=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
