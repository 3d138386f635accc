"""fsync helpers: making a file's bytes, or a rename or unlink inside a
directory, durable."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsyncs a file, or a directory (which makes the names in it durable)."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
