"""The benchmark suite starts and measures: `python -m benchmarks.suite` at
its smallest (TandemKV alone, one workload, one operation in flight, one
one-second run) so a change that breaks it fails here instead of when
someone next benchmarks.

Method: the suite runs as a subprocess in its own session (killed whole
if it overruns) and the test reads the suite.json it writes. Speed is not
asserted; only that the point was measured without errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SUITE_TIMEOUT_S = 180.0


def test_the_suite_starts_a_tandemkv_cluster_and_measures_one_point(tmp_path):
    out = tmp_path / "results"
    argv = [sys.executable, "-m", "benchmarks.suite", "--systems", "tandemkv", "--workloads", "put",
            "--concurrency", "1", "--repeats", "1", "--seconds", "1", "--warmup", "0", "--out", str(out)]
    process = subprocess.Popen(argv, cwd=REPO_ROOT, start_new_session=True, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=SUITE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"the suite ran over {SUITE_TIMEOUT_S} s:\n{output[-4000:]}") from None
    assert process.returncode == 0, output[-4000:]
    document = json.loads((out / "suite.json").read_text())
    assert document["skipped"] == [], document["skipped"]
    [point] = document["points"]
    assert (point["system"], point["workload"], point["concurrency"]) == ("tandemkv", "put", 1), point
    assert point["errors"] == 0 and point["ops_per_s"] > 0, point
    assert (out / "suite.md").exists()
