"""CRDT tables through a partition, with real processes: one node is cut
off by iptables in a private network namespace, both sides take writes
(the cut-off node without a Raft quorum), and after the heal every node
reads the same values within five gossip intervals.

Method: runs tests/support/crdt_partition.py as a subprocess (it re-starts
itself under `unshare --net`) and asserts on the JSON line it prints;
skipped, naming what to install, where no network namespace or no
iptables is at hand (a failure under .ci/run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.crdt_partition import EXIT_SKIPPED
from tests.support.system_needs import NETWORK_FAULTS, skip_needing

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 120.0


def test_every_node_converges_within_five_gossip_intervals_after_a_partition_heals(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.crdt_partition", "--out", str(tmp_path)], cwd=REPO_ROOT,
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"the partition scenario ran over {RUN_TIMEOUT_S} s:\n{output[-4000:]}") from None
    if process.returncode == EXIT_SKIPPED:
        last_line = (output.strip().splitlines() or [""])[-1]
        skip_needing(NETWORK_FAULTS, json.loads(last_line).get("skipped", "") if last_line.startswith("{") else output)
    summary = json.loads(output.strip().splitlines()[-1])
    assert process.returncode == 0 and summary["ok"], f"{summary}; logs in {tmp_path}"
    assert summary["minority_lost_quorum"], "the cut-off node kept a quorum: the cut did not hold"
    assert summary["diverged_during_partition"], "both sides read the same during the cut"
    assert summary["converged_s"] <= summary["bound_s"]
