"""The fault harness asks for stacks (SIGUSR1) only from nodes that handle
it: a node restarted a moment ago has no handler yet, and the signal's
default action would end it, turning a slow election into a crash.

Method: a `NodeSet` whose node processes are stand-ins (a Python process
that installs a SIGUSR1 handler and says so when signalled, one that
installs none, one never started), so which node is signalled is seen
without a cluster; `wait_for_leader` on them times out (no node answers)
and its message names the node it left alone. A real `tandemkv serve`
started by the harness shows its handler (the kernel's caught-signal
mask), so a started node is signalled."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.nodes import NodeSet, catches_signal

# Bound of each wait for a state the test brings about (polled).
WAIT_S_MAX = 60.0
POLL_S = 0.05
# How long wait_for_leader looks for a leader among stand-ins that never answer.
LEADER_TIMEOUT_S = 0.5
HANDLES_USR1 = ("import signal, sys, time\n"
                "signal.signal(signal.SIGUSR1, lambda *_: print('stacks', flush=True))\n"
                "print('ready', flush=True)\n"
                "time.sleep(120)\n")
NO_HANDLER = "import time\nprint('ready', flush=True)\ntime.sleep(120)\n"


def wait_until_caught(pid: int) -> None:
    deadline = time.monotonic() + WAIT_S_MAX
    while not catches_signal(pid, signal.SIGUSR1):
        assert time.monotonic() < deadline, f"pid {pid} installed no SIGUSR1 handler within {WAIT_S_MAX} s"
        time.sleep(POLL_S)


@pytest.fixture
def stand_ins(tmp_path: Path):
    """A NodeSet whose n1 handles SIGUSR1, n2 does not, n3 never started."""
    nodes = NodeSet(tmp_path / "cluster", isolated=False, separate_groups=False)
    n1, n2, _ = nodes.nodes
    n1.process = subprocess.Popen([sys.executable, "-c", HANDLES_USR1], stdout=subprocess.PIPE, text=True)
    n2.process = subprocess.Popen([sys.executable, "-c", NO_HANDLER], stdout=subprocess.PIPE, text=True)
    try:
        for node in (n1, n2):
            assert node.process.stdout.readline().strip() == "ready"
        yield nodes
    finally:
        nodes.stop_all()
        for node in (n1, n2):
            node.process.stdout.close()


def test_only_a_node_with_a_sigusr1_handler_is_asked_for_stacks(stand_ins):
    n1, n2, _ = stand_ins.nodes
    assert stand_ins.dump_stacks() == ["n2"]
    assert n1.process.stdout.readline().strip() == "stacks", "n1 was not signalled"
    assert n2.process.poll() is None, "n2 was signalled and ended"


def test_a_leader_timeout_names_the_nodes_left_unsignalled(stand_ins):
    with pytest.raises(TimeoutError) as raised:
        stand_ins.wait_for_leader(LEADER_TIMEOUT_S)
    assert "not signalled for stacks (no SIGUSR1 handler yet): n2" in str(raised.value)
    assert stand_ins.nodes[1].process.poll() is None, "n2 was signalled and ended"


def test_a_started_tandemkv_serve_shows_its_sigusr1_handler(tmp_path):
    nodes = NodeSet(tmp_path / "cluster", isolated=False, separate_groups=False)
    try:
        pid = nodes.start("n1")
        wait_until_caught(pid)
        assert nodes.dump_stacks() == []
        deadline = time.monotonic() + WAIT_S_MAX
        while "(SIGUSR1)" not in nodes.log_path("n1").read_text(errors="replace"):
            assert time.monotonic() < deadline, "n1 logged no stacks after SIGUSR1"
            time.sleep(POLL_S)
        assert nodes.node("n1").running
    finally:
        nodes.stop_all()
