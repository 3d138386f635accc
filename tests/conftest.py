"""Shared fixtures: a gRPC server over a fake node (no Raft); and what
becomes of skips: each distinct skip reason is printed once at the end
(e.g. "needs fuse3 (apt-get install -y fuse3): ..."), and with
TANDEMKV_REQUIRE_SYSTEM_TESTS=1 (set by .ci/run, which installs every
system package the suite uses) a skip is a failure."""

from __future__ import annotations

import collections

import grpc
import pytest

from tandemkv.server.api import build_server
from tests.support.fake_node import FakeNode
from tests.support.system_needs import REQUIRE_ENV, system_tests_required


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and system_tests_required():
        reason = _skip_reason(report).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped, but {REQUIRE_ENV}=1 requires every test to run: {reason}"


def pytest_terminal_summary(terminalreporter):
    reasons = collections.Counter(_skip_reason(report).removeprefix("Skipped: ")
                                  for report in terminalreporter.stats.get("skipped", ())
                                  if not hasattr(report, "wasxfail"))
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"{count} skipped: {reason}")


@pytest.fixture
def fake_node() -> FakeNode:
    return FakeNode()


@pytest.fixture
def fake_server(fake_node):
    """A started server on 127.0.0.1 over `fake_node`; yields its address."""
    server = build_server(fake_node, "127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop(grace_s=0)


@pytest.fixture
def channel(fake_server):
    with grpc.insecure_channel(fake_server) as channel:
        yield channel

