"""Tests that need something of the machine beyond `pip install -e '.[dev]'`
(a Debian package, root, a kernel feature) skip with one line saying what
to install: "needs fuse3 (apt-get install -y fuse3): why".

`.ci/run` installs all of it and sets TANDEMKV_REQUIRE_SYSTEM_TESTS=1;
tests/conftest.py then reports every skip as a failure, so CI cannot pass
with a part of the suite silently left out."""

from __future__ import annotations

import os

import pytest

REQUIRE_ENV = "TANDEMKV_REQUIRE_SYSTEM_TESTS"
FUSE3 = "fuse3 (apt-get install -y fuse3)"
FUSE_MOUNT = "a FUSE mount (/dev/fuse, and root or fuse3's fusermount3)"
NETWORK_FAULTS = "iptables and a network namespace (apt-get install -y iptables iproute2; run as root)"


def system_tests_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def skip_needing(what: str, detail: str = "") -> None:
    """Skips the calling test with "needs <what>: <detail's last line>"."""
    lines = [line.strip() for line in detail.strip().splitlines() if line.strip()]
    pytest.skip(f"needs {what}" + (f": {lines[-1][:200]}" if lines else ""))


def libfuse_missing() -> str | None:
    """Why the lossyfs daemon cannot load libfuse here (mfusepy's own
    lookup, run in this process), or None."""
    try:
        import mfusepy  # noqa: F401  (loads libfuse with ctypes at import)
    except OSError as error:
        return f"mfusepy: {error}"
    return None


def skip_unless_fuse_works() -> None:
    """Skips when libfuse or /dev/fuse is missing; a refused mount is
    checked where the mount is made (`MountNotPermitted`)."""
    from tests.faults.power_mounts import fuse_unavailable_reason

    missing = libfuse_missing()
    if missing:
        skip_needing(FUSE3, missing)
    reason = fuse_unavailable_reason()
    if reason:
        skip_needing(FUSE_MOUNT, reason)
