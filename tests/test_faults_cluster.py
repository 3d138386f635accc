"""The short fault tier: real 3-node clusters under partitions, kill -9 and
SIGSTOP pauses, with every client operation checked.

Method: each test runs the harness of tests/faults as a subprocess (it
re-starts itself in a network namespace of its own, where iptables rules
cut links between the nodes' loopback addresses) and asserts on the
summary it writes. One run of about a minute cycles through every nemesis
while all six workloads run (KV registers, counters and sets; registry
names; locks; a CRDT set), the workers sharing one pipelining client
so that their concurrent operations go as batched calls; two short
scenarios measure
failover after a leader kill and what a cut-off node answers. Every
assertion message carries the seed and the command that replays the run.
Set TANDEMKV_FAULTS_SEED to replay one seed and TANDEMKV_FAULTS_OUT to
keep the minute-long run's logs and history in a directory of your own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.faults.nemesis import ALL_KINDS, PROCESS_KINDS
from tests.support.fault_run import assert_every_kind_injected, fault_run_summary, run_harness
from tests.support.system_needs import NETWORK_FAULTS, skip_needing

FAULT_DURATION_S = 60.0
# The run's own bound: start-up, faults, settle, final reads and the check.
RUN_TIMEOUT_S = FAULT_DURATION_S + 120.0
SCENARIO_TIMEOUT_S = 120.0
# Operations the minute of faults must check at the least (a few thousand
# in practice; far fewer means the clients were stuck, which is a failure).
OPERATIONS_MIN = 2_000
FAILOVER_WRITE_S_MAX = 5.0
WORKLOADS = ("register", "counter", "set", "registry", "lock", "crdt")
# Acknowledged operations each workload must have at the least in the
# minute (hundreds in practice): a workload that never got through would
# leave its checks with nothing to check.
WORKLOAD_OK_MIN = 100
# Operations the workers' shared client sent inside batched calls at the
# least (hundreds in practice: fifteen threads share it).
BATCHED_OPS_MIN = 100


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory) -> dict[str, Any]:
    """One minute of every nemesis against every workload; its summary."""
    return fault_run_summary("tests.faults.runner", ["--duration", str(FAULT_DURATION_S), "--nemesis", "all",
                                                     "--workload", ",".join(WORKLOADS)],
                             tmp_path_factory, "faults", RUN_TIMEOUT_S)


def test_histories_under_partitions_kills_and_pauses_are_linearizable(fault_run):
    context = fault_run["_context"]
    assert fault_run["errors"] == [], f"{context}: {fault_run['errors']}"
    assert fault_run["linearizability"] == "linearizable", \
        f"{context}:\n" + "\n".join(fault_run["linearizability_violations"]) + \
        f"\nundecided keys: {fault_run['linearizability_undecided']}"
    assert fault_run["operations"] >= OPERATIONS_MIN, f"{context}: only {fault_run['operations']} operations"


def test_every_workload_got_through_and_claims_saw_contention(fault_run):
    context = fault_run["_context"]
    by_workload = fault_run["operations_by_workload"]
    thin = {kind: by_workload.get(kind, {}).get("ok", 0) for kind in WORKLOADS
            if by_workload.get(kind, {}).get("ok", 0) < WORKLOAD_OK_MIN}
    assert not thin, f"{context}: too few acknowledged operations: {thin}; all: {by_workload}"
    for kind in ("registry", "lock"):
        answers = fault_run["claim_answers"][kind]
        # Refusals and releases are what make mutual exclusion checkable.
        assert answers.get("claim granted", 0) > 0 and answers.get("claim taken", 0) > 0, f"{context}: {answers}"
        assert answers.get("release done", 0) > 0, f"{context}: {kind} {answers}"


def test_the_workers_operations_went_through_the_pipeline_in_batched_calls(fault_run):
    context = fault_run["_context"]
    pipeline = fault_run["pipeline"]
    # Batches of more than one operation happened, and carried a real share of the run.
    assert pipeline["batches"] > 0 and pipeline["batched_ops"] >= 2 * pipeline["batches"], f"{context}: {pipeline}"
    assert pipeline["batched_ops"] >= BATCHED_OPS_MIN, f"{context}: {pipeline}"


def test_tokens_order_and_crdt_replicas_converge(fault_run):
    context = fault_run["_context"]
    assert fault_run["token_violations"] == [], f"{context}: {fault_run['token_violations']}"
    assert fault_run["crdt_violations"] == [], f"{context}: {fault_run['crdt_violations']}"
    assert fault_run["crdt_final"] and "NOT" not in fault_run["crdt_final"][0], f"{context}: {fault_run['crdt_final']}"


def test_every_nemesis_kind_was_injected(fault_run):
    assert_every_kind_injected(fault_run, ALL_KINDS, PROCESS_KINDS)


def test_no_acknowledged_add_is_lost_and_no_value_appears_from_nowhere(fault_run):
    context = fault_run["_context"]
    assert fault_run["set_violations"] == [], f"{context}: {fault_run['set_violations']}"
    assert fault_run["counter_violations"] == [], f"{context}: {fault_run['counter_violations']}"
    assert fault_run["final_keys"] > 0, f"{context}: no key was read back"


def run_scenario(name: str, tmp_path: Path, extra: list[str]) -> dict[str, Any]:
    done = run_harness("tests.faults.scenarios", [name, "--out", str(tmp_path), *extra], SCENARIO_TIMEOUT_S)
    result_path = tmp_path / f"{name}.json"
    assert done.returncode == 0 and result_path.exists(), f"scenario {name} failed:\n{done.stdout[-4000:]}"
    return json.loads(result_path.read_text())


def test_after_the_leader_is_killed_a_new_leader_accepts_a_write_within_5_s(tmp_path):
    result = run_scenario("leader-kill", tmp_path, ["--rounds", "3"])
    context = f"leader-kill (no seed: the kills follow the leader); results in {tmp_path}"
    assert len(result["rounds"]) == 3, f"{context}: {result}"
    for round_ in result["rounds"]:
        assert round_["write_after_kill_s"] is not None, f"{context}: no write succeeded: {round_}"
        assert round_["write_after_kill_s"] <= FAILOVER_WRITE_S_MAX, f"{context}: too slow: {round_}"
        assert round_["new_leader"] not in (None, round_["old_leader"]), f"{context}: {round_}"


def test_a_cut_off_node_fails_requests_within_their_deadline_and_never_serves_stale_reads(tmp_path):
    result = run_scenario("minority", tmp_path, [])
    context = f"minority scenario (no seed: the cuts follow the roles); results in {tmp_path}"
    if "UNAVAILABLE" in result["network"]:
        skip_needing(NETWORK_FAULTS, result["network"])
    assert result["linearizability"] == "linearizable", f"{context}:\n{result['explanation']}"
    assert [case["role"] for case in result["cases"]] == ["follower", "leader"], f"{context}: {result}"
    for case in result["cases"]:
        assert case["requests"] > 0, f"{context}: nothing sent to the cut-off node: {case}"
        assert case["stale"] == [], f"{context}: stale reads from the cut-off {case['role']}: {case['stale']}"
        assert case["succeeded"] == 0, f"{context}: the cut-off {case['role']} answered with success: {case}"
        assert case["late"] == [], f"{context}: requests outlived their deadline: {case['late']}"
        assert case["majority_writes_acked"] > 0, f"{context}: the majority never wrote: {case}"


def test_the_runner_refuses_an_out_dir_holding_an_earlier_runs_nodes(tmp_path, capsys):
    from tests.faults import runner

    (tmp_path / "cluster" / "n1").mkdir(parents=True)
    assert runner.main(["--duration", "5", "--out", str(tmp_path)]) == runner.EXIT_HARNESS_ERROR
    assert "earlier run" in capsys.readouterr().err
    assert not (tmp_path / "summary.json").exists(), "nothing ran"
