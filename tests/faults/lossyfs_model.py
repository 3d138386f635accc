"""lossyfs's in-memory model, with no FUSE in it: what one file holds
unsynced (`FileData`: pages written since the last sync, the size the mount
sees) and the undo journal of uncommitted namespace operations
(`UndoJournal`), both over the BACKING directory that plays the disk.
lossyfs.py describes what survives a cut; lossyfs_operations.py serves
FUSE requests on top of these two.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

PAGE_BYTES = 4096
INTERNAL_NAME = ".lossyfs"  # inside BACKING: the undo journal and trash


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

    def rename(self, old: str, new: str, replaces: bool) -> None:
        """rename(2), as one operation: when it `replaces` an entry, that
        entry goes to the trash in the same record, so no cut (a torn one
        commits whole records) can leave `new` gone and `old` not moved."""
        slot = None
        if replaces:
            self._slots += 1
            slot = str(self.trash / str(self._slots))
        source, target = self.on_disk(old), self.on_disk(new)

        def move() -> None:
            if slot is not None:
                os.rename(target, slot)
            try:
                os.rename(source, target)
            except OSError:
                if slot is not None:
                    os.rename(slot, target)
                raise

        self.apply({"op": "rename", "old": old, "new": new, "slot": slot}, move)

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
            slot = entry.get("slot")
            if slot and os.path.lexists(slot) and not os.path.lexists(new):
                os.rename(slot, new)
        else:
            raise ValueError(f"unknown journal entry {entry!r}")


def _empty(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
