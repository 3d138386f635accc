"""Membership changes under faults: members added and removed while the
linearizability workloads run and the shared nemesis kills, pauses and
partitions nodes.

Method: one seeded run of tests/faults/membership_runner.py as a
subprocess (it re-starts itself in a network namespace of its own) for
FAULT_DURATION_S seconds with a change every MEMBER_INTERVAL_S (an
addition first, a removal of the leader second, made past the duration if
the machine is slow): a fresh node joins with --join, or a member is
removed, never below three; then heal, final reads of every key, and the
checks. The run's summary must show linearizable histories, no
acknowledged increment or add lost, additions and removals that
committed, and every member listing the same set at the end. The seed is
printed and in every assertion message; TANDEMKV_FAULTS_SEED=N replays
it, TANDEMKV_FAULTS_OUT=DIR keeps the run's files.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fault_run import fault_run_summary

FAULT_DURATION_S = 30.0
MEMBER_INTERVAL_S = 5.0
# The run's own bound: start-up, faults, the changes still owed after them
# (membership_runner.OVERTIME_S_MAX at most), settle, final reads.
RUN_TIMEOUT_S = FAULT_DURATION_S + 90.0 + 90.0
# Operations the run must check at the least (about two thousand in practice).
OPERATIONS_MIN = 500


@pytest.fixture(scope="module")
def membership_run(tmp_path_factory) -> dict[str, Any]:
    return fault_run_summary("tests.faults.membership_runner",
                             ["--duration", str(FAULT_DURATION_S), "--member-interval", str(MEMBER_INTERVAL_S),
                              "--nemesis", "all"], tmp_path_factory, "members", RUN_TIMEOUT_S)


def test_histories_stay_linearizable_while_members_come_and_go(membership_run):
    context = membership_run["_context"]
    assert membership_run["errors"] == [], f"{context}: {membership_run['errors']}"
    assert membership_run["linearizability"] == "linearizable", \
        f"{context}:\n" + "\n".join(membership_run["linearizability_violations"]) + \
        f"\nundecided keys: {membership_run['linearizability_undecided']}"
    assert membership_run["operations"] >= OPERATIONS_MIN, f"{context}: only {membership_run['operations']} operations"


def test_no_acknowledged_write_is_lost_across_membership_changes(membership_run):
    context = membership_run["_context"]
    assert membership_run["counter_violations"] == [], f"{context}: {membership_run['counter_violations']}"
    assert membership_run["set_violations"] == [], f"{context}: {membership_run['set_violations']}"
    assert membership_run["final_keys"] > 0, f"{context}: no key was read back"


def test_members_were_added_and_removed_and_all_agree_on_the_final_set(membership_run):
    context = membership_run["_context"]
    changes = membership_run["membership_changes"]
    added = [c for c in changes if c["kind"] == "member-add" and "added and caught up" in c["note"]]
    removed = [c for c in changes if c["kind"] == "member-remove" and "committed" in c["note"]]
    assert added and removed, f"{context}: changes {changes}"
    final = membership_run["members_final"]
    assert len(final) >= 3 and all(names == sorted(final) for names in final.values()), f"{context}: {final}"
