"""The benchmark suite starts and measures: `python -m benchmarks.suite` at
its smallest point of each kind (one operation in flight, one one-second
run): the raw put, the SDK's put and get, and the many-clients points (two
load-generator processes), against TandemKV and, when Debian's `etcd`
binary is on PATH and the bench extra's `aetcd` is installed, against etcd
in the same run, so a change that breaks
the harness fails here instead of when someone next benchmarks.

Method: the suite runs as a subprocess in its own session (killed whole,
its load-generator processes included, if it overruns) and the test reads
the suite.json it writes. Speed is not asserted; only that every point was
measured without errors, and that nothing was skipped but what the suite
must skip (etcd has no SDK workloads; etcd itself only when its binary or
its client library is absent, which the suite must say)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SUITE_TIMEOUT_S = 180.0
PROCESSES = 2
TANDEM_POINTS = {("put", "suite", 0), ("sdk-put", "suite", 0), ("sdk-get", "suite", 0),
                 ("sdk-put", "processes", PROCESSES), ("sdk-get", "processes", PROCESSES)}
ETCD_POINTS = {("put", "suite", 0), ("put", "processes", PROCESSES), ("get", "processes", PROCESSES)}
# What etcd is rightly not measured on: TandemKV's SDK workloads (etcd's raw figure stands beside them).
ETCD_SDK_SKIP = "TandemKV's SDK workload"


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("results")
    argv = [sys.executable, "-m", "benchmarks.suite", "--systems", "tandemkv,etcd",
            "--workloads", "put,sdk-put,sdk-get", "--concurrency", "1", "--repeats", "1", "--seconds", "1",
            "--warmup", "0", "--processes", str(PROCESSES), "--process-concurrency", "1", "--out", str(out)]
    process = subprocess.Popen(argv, cwd=REPO_ROOT, start_new_session=True, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=SUITE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"the suite ran over {SUITE_TIMEOUT_S} s:\n{output[-4000:]}") from None
    assert process.returncode == 0, output[-4000:]
    assert (out / "suite.md").exists(), output[-4000:]
    return json.loads((out / "suite.json").read_text()), output[-4000:]


def _measured(document: dict, system: str) -> set[tuple[str, str, int]]:
    return {(p["workload"], p["series"], p["parameter"]) for p in document["points"] if p["system"] == system}


def _assert_measured_cleanly(document: dict, system: str) -> None:
    for point in document["points"]:
        if point["system"] == system:
            assert point["concurrency"] == 1, point
            assert point["errors"] == 0 and point["ops_per_s"] > 0, point


def test_the_suite_measures_raw_sdk_and_many_client_points_of_tandemkv(suite_run):
    document, output = suite_run
    tandem_skips = [s for s in document["skipped"] if s["system"] == "tandemkv"]
    assert tandem_skips == [], f"TandemKV points were skipped: {tandem_skips}\n{output}"
    assert _measured(document, "tandemkv") == TANDEM_POINTS, output
    _assert_measured_cleanly(document, "tandemkv")


def test_the_suite_measures_etcd_beside_it_unless_the_etcd_binary_is_absent(suite_run):
    document, output = suite_run
    etcd_skips = [s for s in document["skipped"] if s["system"] == "etcd"]
    if shutil.which("etcd") is None:
        # Not a skip of this test: the suite must say etcd is absent, and measure nothing of it.
        assert [s["workload"] for s in etcd_skips] == ["all"] and "no `etcd` binary" in etcd_skips[0]["reason"], \
            f"etcd is absent here, and the suite should have said so: {etcd_skips}"
        assert _measured(document, "etcd") == set(), document["points"]
        return
    if importlib.util.find_spec("aetcd") is None:
        # The etcd client library is the bench extra's, not the test command's:
        # the suite must name what is missing, and measure nothing of etcd.
        assert [s["workload"] for s in etcd_skips] == ["all"] and "aetcd" in etcd_skips[0]["reason"], \
            f"aetcd is absent here, and the suite should have said so: {etcd_skips}"
        assert _measured(document, "etcd") == set(), document["points"]
        return
    unexpected = [s for s in etcd_skips if ETCD_SDK_SKIP not in s["reason"]]
    assert not unexpected, f"the etcd binary is installed, but etcd points were not measured (install the " \
                           f"bench extra, pip install -e '.[bench]', if aetcd is missing): {unexpected}\n{output}"
    assert sorted(s["workload"] for s in etcd_skips) == ["sdk-get", "sdk-put"], etcd_skips
    assert _measured(document, "etcd") == ETCD_POINTS, output
    _assert_measured_cleanly(document, "etcd")
