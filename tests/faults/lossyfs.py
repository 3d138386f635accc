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

Modules: lossyfs_model.py (the in-memory model: `FileData`, `UndoJournal`),
lossyfs_operations.py (the FUSE operations, `LossyFS`), and this one (the
mfusepy mount, the command thread, `main`).
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import mfusepy

from .lossyfs_model import UndoJournal
from .lossyfs_operations import LossyFS

PR_SET_PDEATHSIG = 1
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


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
