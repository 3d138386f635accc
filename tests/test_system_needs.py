"""A test that needs a system package skips with one line naming what to
install, and under TANDEMKV_REQUIRE_SYSTEM_TESTS=1 (.ci/run) that skip is
a failure, so CI cannot pass with tests left out.

Method: a tiny test file runs in a pytest subprocess with this suite's
conftest as a plugin; FUSE_LIBRARY_NAME names a library that does not
exist, so mfusepy cannot find libfuse whether or not fuse3 is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTEST_TIMEOUT_S = 120.0
NEEDS_FUSE = """
from tests.support.system_needs import skip_unless_fuse_works


def test_needs_fuse():
    skip_unless_fuse_works()


def test_needs_nothing():
    assert True
"""


def run_tiny_suite(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_tiny.py").write_text(NEEDS_FUSE)
    env = {k: v for k, v in os.environ.items() if k != "TANDEMKV_REQUIRE_SYSTEM_TESTS"}
    env["FUSE_LIBRARY_NAME"] = "tandemkv-no-such-fuse-library"
    if require is not None:
        env["TANDEMKV_REQUIRE_SYSTEM_TESTS"] = require
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
            "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_tiny.py")]
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=PYTEST_TIMEOUT_S)


def test_a_missing_system_package_skips_with_one_line_naming_what_to_install(tmp_path):
    done = run_tiny_suite(tmp_path, require=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout, done.stdout
    lines = [line for line in done.stdout.splitlines() if "needs fuse3" in line]
    assert lines == ["1 skipped: needs fuse3 (apt-get install -y fuse3): mfusepy: Unable to find libfuse"], \
        done.stdout


def test_with_system_tests_required_the_skip_is_a_failure(tmp_path):
    done = run_tiny_suite(tmp_path, require="1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout, done.stdout
    assert "skipped, but TANDEMKV_REQUIRE_SYSTEM_TESTS=1 requires every test to run: needs fuse3" in done.stdout


def test_require_0_means_not_required(tmp_path):
    done = run_tiny_suite(tmp_path, require="0")
    assert done.returncode == 0 and "1 passed, 1 skipped" in done.stdout, done.stdout + done.stderr


def _ci_tail_running(command: str) -> subprocess.CompletedProcess:
    """.ci/run from its `export TANDEMKV_REQUIRE_SYSTEM_TESTS=1` on, with the
    README's test command (its last line) replaced by `command`."""
    lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    start = lines.index("export TANDEMKV_REQUIRE_SYSTEM_TESTS=1")
    assert lines[-1] == "pip install -e '.[dev]' && python -m pytest -q"
    script = "\n".join(["set -euo pipefail", *lines[start:-1], command, ""])
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=PYTEST_TIMEOUT_S)


def test_ci_run_requires_every_test_and_fails_when_pytest_collects_nothing():
    collected_nothing = _ci_tail_running("(exit 5)")
    assert collected_nothing.returncode == 5
    assert "pytest collected no tests (exit 5)" in collected_nothing.stderr
    passed = _ci_tail_running('[ "$TANDEMKV_REQUIRE_SYSTEM_TESTS" = 1 ]')
    assert passed.returncode == 0 and passed.stderr == "", passed.stderr
    failed = _ci_tail_running("(exit 1)")
    assert failed.returncode == 1 and failed.stderr == ""
