"""Samples a process with py-spy while a workload runs, and summarises the
raw (collapsed) stacks: the functions with the most samples on top of the
stack (self) and anywhere in it (inclusive). Only samples of the thread
holding the GIL are taken (`--gil`), so the percentages are shares of the
one core a Python process can use, not of threads waiting. Absent py-spy,
says so."""

from __future__ import annotations

import asyncio
import collections
import re
import shutil
from pathlib import Path

PYSPY_BINARY = "py-spy"
FRAMES_SHOWN = 15
SAMPLE_RATE_PER_S = 100
LINE_NUMBER = re.compile(r":\d+\)$")
# Thread entry frames every stack shares; left out of the inclusive list.
ENTRY_FRAMES = ("Thread._bootstrap", "Thread._bootstrap_inner", "Thread.run", "_worker (futures/thread.py)",
                "_WorkItem.run")


def available() -> bool:
    return shutil.which(PYSPY_BINARY) is not None


async def record(pid: int, seconds: int, raw_path: Path) -> asyncio.subprocess.Process:
    """Starts `py-spy record` on `pid` for `seconds`; await `.wait()` on the result."""
    return await asyncio.create_subprocess_exec(
        PYSPY_BINARY, "record", "-p", str(pid), "-d", str(seconds), "-r", str(SAMPLE_RATE_PER_S),
        "-f", "raw", "-o", str(raw_path), "--nonblocking", "--gil",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


def _frame(text: str) -> str:
    """'put (/long/path/server/api/kv.py:41)' -> 'put (api/kv.py)'."""
    name, _, path = LINE_NUMBER.sub(")", text.strip()).partition(" (")
    path = "/".join(path.rstrip(")").split("/")[-2:])
    return f"{name} ({path})" if path else name


def summarise(raw_path: Path, seconds: float) -> dict:
    """{'samples', 'gil_busy_percent', 'self': [(frame, %)], 'inclusive': [(frame, %)]}
    from py-spy's raw output of a `seconds`-long recording."""
    own: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if not frame.startswith(ENTRY_FRAMES):
                inclusive[frame] += count
    scale = 100.0 / total if total else 0.0
    return {"samples": total, "gil_busy_percent": 100.0 * total / (SAMPLE_RATE_PER_S * seconds),
            "self": [(f, n * scale) for f, n in own.most_common(FRAMES_SHOWN)],
            "inclusive": [(f, n * scale) for f, n in inclusive.most_common(FRAMES_SHOWN)]}
