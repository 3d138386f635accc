"""The pub/sub fan-out benchmark starts and measures: `python -m
benchmarks.pubsub_fanout` at its smallest point (3 subscribers over the 3
nodes, 1 publisher, half a second) against TandemKV and, when Debian's
`redis-server` is on PATH and redis-py is installed, against Redis in the
same run, so a change that breaks the harness (or best-effort delivery on
a quiet cluster) fails here instead of when someone next benchmarks. One
publish at a time (`--in-flight 1`): a pipelined publisher may outrun the
subscribers, which is then a `Lagged` count, not a fault.

Speed is not asserted; only that each system's point was measured, that
messages were delivered, and that every message published while the
subscribers were open reached every one of them (nothing lagged, nothing
missing: a quiet cluster and three idle subscribers have no reason to
lose one)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 120.0


def test_the_fanout_benchmark_delivers_every_message_to_every_subscriber(tmp_path):
    redis_there = shutil.which("redis-server") is not None and importlib.util.find_spec("redis") is not None
    systems = ["tandemkv"] + (["redis"] if redis_there else [])
    argv = [sys.executable, "-m", "benchmarks.pubsub_fanout", "--subscribers", "3", "--publishers", "1",
            "--seconds", "0.5", "--in-flight", "1", "--systems", ",".join(systems), "--out", str(tmp_path)]
    process = subprocess.Popen(argv, cwd=REPO_ROOT, start_new_session=True, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"the benchmark ran over {RUN_TIMEOUT_S} s:\n{output[-4000:]}") from None
    assert process.returncode == 0, output[-4000:]
    rows = json.loads((tmp_path / "pubsub_fanout.json").read_text())
    assert [row["system"] for row in rows] == systems, output[-4000:]
    for row in rows:
        assert "error" not in row, row
        assert row["published"] > 0 and row["delivered_per_s"] > 0, row
        assert (row["lagged"], row["not_delivered"], row["publish_errors"]) == (0, 0, 0), row
        assert row["subscriptions_ended"] == 0, row
    assert "| 3 | 1 | tandemkv |" in (tmp_path / "pubsub_fanout.md").read_text()
