"""A fault harness run for a CI test: one of tests/faults' runners as a
subprocess with a seed, its `summary.json` read, and the assertions every
fault test makes of it.

`fault_run_summary` fails the test (with the seed, the replay command and the
output's tail) when the runner wrote no summary or exits other than 0 (every
check passed) or 1 (a check failed: the test's own assertions say which),
and warns when the network faults were off. Its summary has a `_context`
for every assertion message: the seed, the replay command, where the
results are. `assert_every_kind_injected` is the check that closes each
test of the faults themselves: every kind asked for came, and the test
skips (saying what to install) when partitions could not be made.

TANDEMKV_FAULTS_SEED=N replays a seed; TANDEMKV_FAULTS_OUT=DIR keeps a run's
files in a directory of your own.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

import pytest

from tests.support.system_needs import NETWORK_FAULTS, skip_needing

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SEED_ENV = "TANDEMKV_FAULTS_SEED"
OUT_ENV = "TANDEMKV_FAULTS_OUT"
# How much of a failed run's output an assertion message carries (its end).
OUTPUT_TAIL_CHARS = 4000
# The runners' exit statuses a test reads the summary of (2: the harness could not run).
CHECKED_EXITS = (0, 1)


def seed() -> int:
    """TANDEMKV_FAULTS_SEED, or a fresh random seed."""
    value = os.environ.get(SEED_ENV)
    return int(value) if value else random.SystemRandom().randrange(1 << 31)


def run_harness(module: str, args: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """Runs `python -m <module> <args>` in its own session; on timeout the
    whole group (the harness and every node it started) is killed."""
    process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO_ROOT, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"{module} {' '.join(args)} ran over {timeout_s} s:\n"
                             f"{output[-OUTPUT_TAIL_CHARS:]}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def fault_run_summary(module: str, args: Sequence[str], tmp_path_factory: pytest.TempPathFactory, out_name: str,
                      timeout_s: float) -> dict[str, Any]:
    """Runs the runner `module` with `args` plus a seed and an --out
    (TANDEMKV_FAULTS_OUT, or a fresh temporary directory named after
    `out_name`) within `timeout_s`; its summary, with `_context` added."""
    chosen = os.environ.get(OUT_ENV)
    out = Path(chosen) if chosen else tmp_path_factory.mktemp(out_name)
    run_seed = seed()
    print(f"{module}: seed {run_seed}, out {out}")
    done = run_harness(module, [*args, "--seed", str(run_seed), "--out", str(out)], timeout_s)
    summary_path = out / "summary.json"
    assert summary_path.exists(), f"seed {run_seed}: no summary; output:\n{done.stdout[-OUTPUT_TAIL_CHARS:]}"
    summary = json.loads(summary_path.read_text())
    summary["_context"] = f"seed {run_seed}; replay: {summary.get('replay')}; results in {out}"
    assert done.returncode in CHECKED_EXITS, f"{summary['_context']}: harness error {summary.get('errors')}\n" \
                                             f"{done.stdout[-OUTPUT_TAIL_CHARS:]}"
    if not partitions_tested(summary):
        warnings.warn(f"partitions not tested: {summary['network']}")
    return summary


def partitions_tested(summary: dict[str, Any]) -> bool:
    """Whether the run could make network faults (the runner says DISABLED where not)."""
    return "DISABLED" not in summary["network"]


def assert_every_kind_injected(summary: dict[str, Any], expected: Sequence[str],
                               expected_without_partitions: Sequence[str]) -> None:
    """Every fault kind expected came at least once (those without
    partitions where none could be made, and then the test skips, saying
    what it needs)."""
    tested = partitions_tested(summary)
    injected = summary["faults_by_kind"]
    missing = [kind for kind in (expected if tested else expected_without_partitions) if not injected.get(kind)]
    assert not missing, f"{summary['_context']}: never injected {missing}; injected {injected}"
    if not tested:
        skip_needing(NETWORK_FAULTS, f"partitions were not injected: {summary['network']}")
