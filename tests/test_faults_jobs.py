"""The job queue under kills, pauses and partitions: a real 3-node cluster,
worker processes killed with -9 or paused past their lease, every job's
executions checked against what the queue ends with.

Method: one seeded run of tests/faults/jobs_runner.py as a subprocess (it
re-starts itself in a network namespace of its own, where iptables rules
cut links between the nodes): producers enqueue JOBS jobs through the SDK
over FAULT_DURATION_S of node faults (SIGSTOP, a minority cut off, each
once at the least; every node is killed -9 at the restart below) while
three worker processes run them, one of them killed -9 (and restarted)
or paused past its lease every few seconds;
each job's handler records its execution, fsync'd, before acting, and some
jobs fail on purpose (once, or max_attempts times). Then the workers are
killed, a last batch is enqueued, every node is killed at once and
started again, and new workers finish the queue. The checks are
tests/faults/jobs_check.py's (unit-tested in
tests/test_faults_jobs_check.py): none lost, each completed once in effect
by its last claim, dead only after max_attempts real failures, the restart
carried unfinished jobs and finished them. The test asserts on the summary.

The seed is printed and in every assertion message, with the command that
replays the run. TANDEMKV_FAULTS_SEED=N replays a seed; TANDEMKV_FAULTS_OUT=DIR
keeps the run's logs, summary and history.json (re-check it with
`python -m tests.faults.jobs_runner --check DIR/history.json`).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.nemesis import PROCESS_KINDS
from tests.support.fault_run import assert_every_kind_injected, fault_run_summary

JOBS = 200
FAULT_DURATION_S = 16.0
# Every kind comes once in each round of the schedule; two kinds of at
# most ~7 s a cycle (fault, quiet, a leader lookup) fit in the 16 s. Node
# kills come at the full restart (all three at once).
NEMESIS_KINDS = ("pause", "partition-minority")
# The run's own bound: start-up, the faults, the full restart, the drain
# (55 s measured with 400 jobs over 20 s of faults on 2 idle cores; 83 s
# with 400 over 24 s at a load average of 45; at 65 start-up alone took
# 27 s and the bound was passed).
RUN_TIMEOUT_S = 88.0
# Executions superseded by a later claim of their job (their worker was
# killed or paused mid-job): a run where no worker fault met a job would
# prove little (a dozen or more in practice).
SUPERSEDED_MIN = 1


@pytest.fixture(scope="module")
def jobs_run(tmp_path_factory) -> dict[str, Any]:
    return fault_run_summary("tests.faults.jobs_runner", ["--jobs", str(JOBS), "--duration", str(FAULT_DURATION_S),
                                                          "--nemesis", ",".join(NEMESIS_KINDS)],
                             tmp_path_factory, "faults-jobs", RUN_TIMEOUT_S)


def test_every_job_finished_once_in_effect_none_lost_none_dead_early(jobs_run):
    context = jobs_run["_context"]
    assert jobs_run["errors"] == [], f"{context}: {jobs_run['errors']}"
    check = jobs_run["check"]
    counts = check["counts"]
    print(f"{context}: {counts}")
    assert check["ok"], f"{context}:\n" + "\n".join(check["violations"]) + f"\n{counts}"
    assert counts.get("final:completed", 0) + counts.get("final:dead", 0) >= counts["enqueue:ok"], \
        f"{context}: {counts}"
    assert counts["enqueue:ok"] >= JOBS // 2, f"{context}: most enqueues never got through: {counts}"
    assert counts.get("final:dead", 0) >= 1 and counts["failures"] > counts["final:dead"], f"{context}: {counts}"
    assert counts.get("superseded_executions", 0) >= SUPERSEDED_MIN, f"{context}: {counts}"
    # The workers' settlements were recorded (the completed-twice and completion-undone rules read them).
    assert counts.get("settlement:ok", 0) >= counts.get("final:completed", 0) // 2, f"{context}: {counts}"


def test_the_queue_survived_a_full_cluster_restart(jobs_run):
    context = jobs_run["_context"]
    counts = jobs_run["check"]["counts"]
    assert counts.get("unfinished_at_restart", 0) >= 1, f"{context}: {counts}"
    assert all(starts >= 2 for starts in jobs_run["node_starts"].values()), f"{context}: {jobs_run['node_starts']}"


def test_workers_and_nodes_met_every_fault_kind_asked_for(jobs_run):
    context = jobs_run["_context"]
    assert jobs_run["worker_kills"] + jobs_run["worker_pauses"] >= 3, f"{context}: few worker faults"
    assert_every_kind_injected(jobs_run, NEMESIS_KINDS, tuple(k for k in NEMESIS_KINDS if k in PROCESS_KINDS))
