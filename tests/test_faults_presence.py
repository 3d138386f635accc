"""Presence under faults, the CI tier: three real nodes, presence clients on
every one of them tracking, updating and untracking under leases, some
crashing, while the seeded nemesis kills, pauses, stops cleanly (SIGTERM)
and partitions.

Goal (issue 15): no entry outlives its bound (a crashed client's lease, a
killed node's down bound, a cleanly stopped node's exit, an untrack's
removal), and after the heal every
node lists the same entries, which are the model's (the entries of the
sessions still held). tests/faults/presence_check.py says how each bound
is computed; tests/test_faults_presence_check.py tests it.

Method: tests/faults/presence_runner.py as a subprocess (it re-starts
itself in a network namespace of its own for iptables partitions), for
PRESENCE_FAULT_DURATION_S of faults; the assertions read its summary.
Every message carries the seed and the command that replays the run;
TANDEMKV_FAULTS_SEED and TANDEMKV_FAULTS_OUT choose the seed and keep the
run's files.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.nemesis import PROCESS_KINDS
from tests.support.fault_run import assert_every_kind_injected, fault_run_summary

PRESENCE_FAULT_DURATION_S = 35.0
# One of each kind comes within the first four faults (the nemesis draws every kind once per round), and
# four faults take 20-35 s: a node killed, one paused, one stopped cleanly (SIGTERM: its goodbye), one cut
# off from the two others.
NEMESIS = ("kill", "pause", "stop", "partition-minority")
# The run's own bound: start-up, faults, the heal, convergence (at most a long lease) and the stop.
RUN_TIMEOUT_S = PRESENCE_FAULT_DURATION_S + 120.0
# Acknowledged writes (tracks, updates, untracks together) the run must have at the least
# (hundreds in practice; far fewer means the clients were stuck).
WRITES_OK_MIN = 150
# Listed entries the checker must have held against their bounds at the least (thousands in practice).
ENTRIES_CHECKED_MIN = 500


@pytest.fixture(scope="module")
def presence_run(tmp_path_factory) -> dict[str, Any]:
    return fault_run_summary("tests.faults.presence_runner", ["--duration", str(PRESENCE_FAULT_DURATION_S),
                                                              "--nemesis", ",".join(NEMESIS)],
                             tmp_path_factory, "presence-faults", RUN_TIMEOUT_S)


def test_no_presence_entry_outlives_its_bound_under_kills_pauses_and_partitions(presence_run):
    context = presence_run["_context"]
    assert presence_run["errors"] == [] and presence_run["unexpected"] == [], \
        f"{context}: {presence_run['errors']} {presence_run['unexpected']}"
    assert presence_run["bound_violations"] == 0, \
        f"{context}: {presence_run['bound_violations']} violations:\n" + "\n".join(presence_run["bound_violations_shown"])
    assert presence_run["entries_checked"] >= ENTRIES_CHECKED_MIN, f"{context}: {presence_run['entries_checked']}"


def test_after_the_heal_every_node_lists_the_model(presence_run):
    context = presence_run["_context"]
    assert presence_run["converged"], \
        f"{context}: not within {presence_run['deadline_after_heal_s']} s of the heal:\n" + \
        "\n".join(presence_run["final_differences"])
    assert presence_run["sessions_by_end"].get("held", 0) > 0 and presence_run["entries_held"] > 0, \
        f"{context}: nothing held at the end, so nothing compared: {presence_run['sessions_by_end']}"


def test_the_clients_got_through_crashed_and_met_every_nemesis(presence_run):
    context = presence_run["_context"]
    calls = presence_run["calls"]
    writes = sum(calls.get(f"{kind}_ok", 0) for kind in ("track", "update", "untrack"))
    assert writes >= WRITES_OK_MIN, f"{context}: only {writes} acknowledged writes: {calls}"
    assert calls.get("crashes", 0) > 0 and calls.get("keepalive_ok", 0) > 0, f"{context}: {calls}"
    assert_every_kind_injected(presence_run, NEMESIS, (*PROCESS_KINDS, "stop"))
