"""Tells a process crash from a machine crash, so the state environment can
skip fsync safely.

The state environment commits without fsync: the Raft log is what makes an
acknowledged write durable, and the log can rebuild the state. After a
process crash (kill -9, OOM) the kernel still holds every page the process
wrote, so the state is intact. After a machine crash or power loss, unsynced
LMDB pages may be missing or torn, so the state must be rebuilt.

While the node runs, a marker file records the kernel's boot id. If the
marker is present at start-up with another boot id, the machine went down
under the running node.
"""

from __future__ import annotations

import os
from pathlib import Path

from tandemkv.server.storage.disk import fsync_path, open_private

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
# Tests simulate a power loss by starting a node with another boot id.
BOOT_ID_OVERRIDE_ENV = "TANDEMKV_BOOT_ID"
MARKER_NAME = "running.marker"


def current_boot_id() -> str:
    override = os.environ.get(BOOT_ID_OVERRIDE_ENV)
    if override:
        return override
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        # No boot id on this platform: every unclean stop counts as a
        # machine crash (safe, and slower to restart).
        return ""


def machine_crashed_since_last_run(data_dir: Path) -> bool:
    """True if the node was running when the machine last went down."""
    marker = data_dir / MARKER_NAME
    if not marker.exists():
        return False
    recorded = marker.read_text().strip()
    return not recorded or recorded != current_boot_id()


def mark_running(data_dir: Path) -> None:
    marker = data_dir / MARKER_NAME
    with os.fdopen(open_private(marker), "w") as out:
        out.write(current_boot_id())
        out.flush()
        os.fsync(out.fileno())
    fsync_path(data_dir)


def mark_stopped(data_dir: Path) -> None:
    (data_dir / MARKER_NAME).unlink(missing_ok=True)
    fsync_path(data_dir)

