"""Pub/sub under kills, pauses and partitions: a real 3-node cluster, durable
and best-effort publishers and subscribers through the SDK, every delivery
checked.

Method: one seeded run of tests/faults/pubsub_runner.py as a subprocess (it
re-starts itself in a network namespace of its own, where iptables rules
cut links between the nodes): 40 s of faults (kill -9, SIGSTOP, and three
partition kinds, each once at the least) while durable publishers append
numbered messages to two topics and best-effort publishers, one per node,
publish to two more, and bursts go to a subscriber that stalls (so its
node drops the oldest and it gets Lagged notices); subscribers on every
node read them, are broken off by the faults, move between nodes every few
seconds, and resume (durable: from their offset, half of the time from a
few offsets back, to replay). After the heal they catch up, and each node
replays the durable topics from offset 0. The checks are tests/faults/pubsub_check.py's (unit-tested in
tests/test_faults_pubsub_check.py); the test asserts on the summary.

The seed is printed and in every assertion message, with the command that
replays the run. TANDEMKV_FAULTS_SEED=N replays a seed; TANDEMKV_FAULTS_OUT=DIR
keeps the run's logs, summary and history.json (re-check it with
`python -m tests.faults.pubsub_runner --check DIR/history.json`).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.nemesis import PROCESS_KINDS
from tests.support.fault_run import assert_every_kind_injected, fault_run_summary

FAULT_DURATION_S = 40.0
# Every kind comes once in each round of the schedule; five kinds of at most
# ~8 s a cycle (fault, quiet, a leader lookup) all fit in the 40 s.
NEMESIS_KINDS = ("kill", "pause", "partition-minority", "partition-bridge", "partition-ring")
# The run's own bound: start-up, the faults, the catch-up and the replays
# (55 to 70 s measured on 2 shared cores under heavy load).
RUN_TIMEOUT_S = 88.0
# Acknowledged publishes each mode must have at the least (thousands in
# practice): a workload that never got through would leave nothing to check.
ACKNOWLEDGED_MIN = 300
# Durable subscriber resumes at the least (dozens in practice: each
# subscriber moves every 3-8 s, and kills break subscriptions).
RESUMES_MIN = 5
# Who reads each durable topic: a subscriber starting on each node, and each
# node's final replay.
READERS_PER_TOPIC = 6


@pytest.fixture(scope="module")
def pubsub_run(tmp_path_factory) -> dict[str, Any]:
    return fault_run_summary("tests.faults.pubsub_runner", ["--duration", str(FAULT_DURATION_S),
                                                            "--nemesis", ",".join(NEMESIS_KINDS)],
                             tmp_path_factory, "faults-pubsub", RUN_TIMEOUT_S)


def test_no_acknowledged_durable_message_is_lost_reordered_repeated_or_replayed_differently(pubsub_run):
    context = pubsub_run["_context"]
    assert pubsub_run["errors"] == [], f"{context}: {pubsub_run['errors']}"
    durable = pubsub_run["durable"]
    assert durable["ok"], f"{context}:\n" + "\n".join(durable["violations"]) + f"\n{durable['counts']}"
    counts = durable["counts"]
    assert counts["acknowledged"] >= ACKNOWLEDGED_MIN, f"{context}: {counts}"
    # Every subscriber and every node's replay read every acknowledged message
    # (one inside a retention gap would count instead: none at these volumes).
    assert counts["acknowledged_read"] + counts.get("acknowledged_in_retention_gap", 0) == \
        counts["acknowledged"] * READERS_PER_TOPIC, f"{context}: {counts}"
    assert counts["resumes"] >= RESUMES_MIN and counts["replays"] >= 1, f"{context}: {counts}"


def test_best_effort_order_holds_and_every_loss_is_explained_and_counted(pubsub_run):
    context = pubsub_run["_context"]
    best_effort = pubsub_run["best_effort"]
    counts = best_effort["counts"]
    print(f"{context}: best-effort counts {counts}, delivery delay {best_effort.get('delivery_delay_s')}")
    assert best_effort["ok"], f"{context}:\n" + "\n".join(best_effort["violations"]) + f"\n{counts}"
    assert counts["acknowledged"] >= ACKNOWLEDGED_MIN, f"{context}: {counts}"
    assert counts["delivered"] >= counts["expected"] // 2, f"{context}: most messages never arrived: {counts}"
    lost = sum(value for name, value in counts.items() if name.startswith("lost:"))
    assert lost == counts.get("lost", 0), f"{context}: losses not all counted by cause: {counts}"


def test_every_fault_kind_asked_for_was_injected(pubsub_run):
    assert_every_kind_injected(pubsub_run, NEMESIS_KINDS, PROCESS_KINDS)
