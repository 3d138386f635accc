"""The lossyfs mounts of the power-loss experiment: whether FUSE is
available here, and `LossyMount`, one lossyfs daemon (a child process) over
a backing directory, with its power cut (plain SIGKILL or torn), unmount
and fresh mount.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FUSE_DEVICE = Path("/dev/fuse")
POLL_S = 0.05
MOUNT_TIMEOUT_S = 15.0
REAP_TIMEOUT_S = 15.0


def fuse_unavailable_reason() -> str | None:
    """Why no lossyfs mount can be made here, or None. Only a missing
    /dev/fuse counts; a failed mount is checked by `LossyMount.mount`."""
    if not FUSE_DEVICE.exists():
        return f"{FUSE_DEVICE} is absent: this kernel or container offers no FUSE"
    return None


class MountNotPermitted(RuntimeError):
    """The kernel refused the mount (no privilege for FUSE here)."""


def _mounted(mountpoint: Path) -> bool:
    target = str(mountpoint)
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            field = line.split(" ")[4]
            if re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field) == target:
                return True
    return False


class LossyMount:
    """One lossyfs daemon over `backing`, mounted at `mountpoint`."""

    def __init__(self, backing: Path, mountpoint: Path, log_path: Path):
        self.backing = Path(backing).resolve()
        self.mountpoint = Path(mountpoint).resolve()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)

    def mount(self) -> None:
        assert self.process is None and not _mounted(self.mountpoint), f"{self.mountpoint} is mounted"
        # Started from the caller's thread: --die-with-parent follows that thread.
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.lossyfs", "--die-with-parent", "--commands-on-stdin",
                 str(self.backing), str(self.mountpoint)],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while not _mounted(self.mountpoint):
            if self.process.poll() is not None:
                self._mount_failed()
            if time.monotonic() > deadline:
                self.kill()
                self.cut()
                raise AssertionError(f"lossyfs did not mount {self.mountpoint} within {MOUNT_TIMEOUT_S} s; "
                                     f"log: {self.log_path}")
            time.sleep(POLL_S)

    def _mount_failed(self) -> None:
        self.process = None
        log = self.log_path.read_text(errors="replace")[-2000:]
        if "Operation not permitted" in log or "Permission denied" in log:
            raise MountNotPermitted(f"mounting FUSE is not permitted here: {log.strip()}")
        raise AssertionError(f"lossyfs exited before mounting {self.mountpoint}:\n{log}")

    def stats(self) -> dict:
        return json.loads((self.mountpoint / ".lossyfs-stats").read_bytes())

    def start_cut(self, keep: float, seed: int) -> None:
        """The power cut: SIGKILL the daemon (keep 0: every unsynced change
        lost), or ask it to write back each unsynced page with probability
        `keep` first (a torn cut; it then kills itself). Finish with `cut`."""
        self.report_path.unlink(missing_ok=True)
        if self.process is None or self.process.poll() is not None:
            return
        if keep == 0:
            self.process.send_signal(signal.SIGKILL)
            return
        command = {"cut": {"seed": seed, "keep": keep, "report": str(self.report_path)}}
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        self.process.stdin.flush()

    def power_cycle(self, keep: float = 0.0, seed: int = 0) -> dict | None:
        """Cut (see start_cut), unmount, mount afresh; returns the cut's report."""
        self.start_cut(keep, seed)
        self.cut()
        report = self.cut_report()
        self.mount()
        return report

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)

    @property
    def report_path(self) -> Path:
        return self.log_path.with_suffix(".cut.json")

    def cut_report(self) -> dict | None:
        """The last torn cut's report (None after a plain SIGKILL)."""
        return json.loads(self.report_path.read_text()) if self.report_path.exists() else None

    def cut(self) -> None:
        """Waits for the daemon to die (SIGKILL if it was not cut) and takes
        the mount down."""
        if self.process is not None:
            try:
                self.process.wait(timeout=REAP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=REAP_TIMEOUT_S)
                raise AssertionError(f"lossyfs on {self.mountpoint} did not finish its cut; "
                                     f"log: {self.log_path}") from None
            finally:
                self.process.stdin.close()
                self.process = None
        # auto_unmount usually beats us to it; then fusermount3 just fails.
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while _mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.mountpoint} is still mounted after {MOUNT_TIMEOUT_S} s")
            time.sleep(POLL_S)
