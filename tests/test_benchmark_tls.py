"""`python -m benchmarks.suite --tls` measures TandemKV over mTLS beside
plaintext: at its smallest (one operation in flight, one one-second run)
the raw put and the SDK's get are measured on both clusters without
errors, and suite.md holds the table of what TLS costs. So does
`python -m benchmarks.tls_cost`, which alternates runs between the two.

Method: the suite as a subprocess in its own session (killed whole if it
overruns); the test reads the suite.json and suite.md it writes. Speed is
not asserted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SUITE_TIMEOUT_S = 240.0
WORKLOADS = ("put", "sdk-get")


def test_the_suite_measures_tandemkv_over_mtls_beside_plaintext_and_reports_the_cost(tmp_path):
    argv = [sys.executable, "-m", "benchmarks.suite", "--systems", "tandemkv", "--tls",
            "--workloads", ",".join(WORKLOADS), "--concurrency", "1", "--repeats", "1", "--seconds", "1",
            "--warmup", "0", "--out", str(tmp_path)]
    process = subprocess.Popen(argv, cwd=REPO_ROOT, start_new_session=True, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=SUITE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"the suite ran over {SUITE_TIMEOUT_S} s:\n{output[-4000:]}") from None
    assert process.returncode == 0, output[-4000:]
    document = json.loads((tmp_path / "suite.json").read_text())
    assert document["skipped"] == [], document["skipped"]
    for system in ("tandemkv", "tandemkv-tls"):
        points = [p for p in document["points"] if p["system"] == system]
        assert sorted(p["workload"] for p in points) == sorted(WORKLOADS), output[-4000:]
        assert all(p["errors"] == 0 and p["ops_per_s"] > 0 for p in points), points
    report = (tmp_path / "suite.md").read_text()
    assert "### The cost of TLS" in report
    assert all(f"| {name} | 1 |" in report for name in WORKLOADS), report


def test_the_paired_tls_cost_benchmark_measures_both_clusters_and_writes_its_table(tmp_path):
    argv = [sys.executable, "-m", "benchmarks.tls_cost", "--workloads", ",".join(WORKLOADS), "--concurrency", "1",
            "--pairs", "1", "--seconds", "0.5", "--warmup", "0", "--out", str(tmp_path)]
    process = subprocess.Popen(argv, cwd=REPO_ROOT, start_new_session=True, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=SUITE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"tls_cost ran over {SUITE_TIMEOUT_S} s:\n{output[-4000:]}") from None
    assert process.returncode == 0, output[-4000:]
    rows = json.loads((tmp_path / "tls_cost.json").read_text())["rows"]
    assert sorted(row["workload"] for row in rows) == sorted(WORKLOADS), output[-4000:]
    for row in rows:
        assert row["errors"] == 0 and row["plaintext_ops_per_s"] > 0 and row["mtls_ops_per_s"] > 0, row
    assert "| mTLS / plaintext (pairs' min–max) |" in (tmp_path / "tls_cost.md").read_text()
