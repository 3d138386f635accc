"""Turns measured points into the suite's outputs: a JSON document, a
markdown report (suite.md) and PNG plots, plus the machine description and
the TandemKV/etcd ratios and goal checks. Knows nothing of how points were
measured beyond the `Point` record.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

from benchmarks.loadgen import RunResult

PACKAGES = ("tandemkv", "grpcio", "protobuf", "pysyncobj", "lmdb", "aetcd", "hdrhistogram", "matplotlib", "tqdm")
PERCENTILES = (("p50_ms", 50.0), ("p99_ms", 99.0), ("p999_ms", 99.9))
# Goals from the issues: (label, TandemKV workload, etcd workload, in flight, measure, TandemKV/etcd
# ratio needed, higher is better). Puts and gets are judged through the SDK (sdk-*: the pipelining
# client users run) against etcd's raw figure; the raw one-op-per-call TandemKV figure is in the
# tables beside them.
GOALS = (
    ("put through the SDK at 256 in flight >= 2x etcd", "sdk-put", "put", 256, "ops_per_s", 2.0, True),
    ("linearizable get through the SDK at 256 in flight >= 2x etcd", "sdk-get", "get", 256, "ops_per_s",
     2.0, True),
    ("hot-key increments at 256 in flight >= 100x etcd's CAS loop", "incr-hot", "incr-hot", 256, "ops_per_s",
     100.0, True),
    ("single-client put p50 through the SDK within 1.5x etcd's", "sdk-put", "put", 1, "p50_ms", 1.5, False),
)
# The reference figures for etcd on this kind of machine (shared/notes/baselines.md).
ETCD_REFERENCE = {("put", 256): 6100.0, ("get", 256): 8458.0, ("cas-hot", 256): 17.0, ("incr-hot", 256): 17.0,
                  ("put", 1): 878.0, ("get", 1): 1527.0, ("cas-own", 256): 2980.0}


@dataclasses.dataclass
class Point:
    """One measured configuration: the median of its repeated runs and the spread."""

    system: str
    workload: str
    concurrency: int
    unit: str
    runs: list[dict]
    series: str = "suite"
    parameter: int = 0

    @property
    def median(self) -> dict:
        ordered = sorted(self.runs, key=lambda run: run["ops_per_s"])
        return ordered[len(ordered) // 2]

    def summary(self) -> dict:
        rates = [run["ops_per_s"] for run in self.runs]
        p99s = [run["p99_ms"] for run in self.runs]
        return {**{k: v for k, v in dataclasses.asdict(self).items() if k != "runs"},
                "ops_per_s": self.median["ops_per_s"], "ops_per_s_min": min(rates), "ops_per_s_max": max(rates),
                "p50_ms": self.median["p50_ms"], "p99_ms": self.median["p99_ms"],
                "p999_ms": self.median["p999_ms"], "p99_ms_min": min(p99s), "p99_ms_max": max(p99s),
                "errors": sum(run["errors"] for run in self.runs),
                "abandoned": sum(run.get("abandoned", 0) for run in self.runs), "runs": self.runs}


def run_record(result: RunResult) -> dict:
    record = {"ops_per_s": result.ops_per_s, "operations": result.operations, "elapsed_s": result.elapsed_s,
              "errors": result.errors, "error_samples": result.error_samples, "abandoned": result.abandoned}
    record.update({name: result.percentile_ms(p) for name, p in PERCENTILES})
    return record


def machine_info(etcd: str | None) -> dict:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "packages": versions, "etcd": etcd or "absent", "load_average_start": os.getloadavg(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def ratios(summaries: list[dict]) -> dict[str, dict[int, float]]:
    """TandemKV ops/s over etcd ops/s per workload and concurrency (suite series only)."""
    by_key = {(s["system"], s["workload"], s["concurrency"]): s for s in summaries if s["series"] == "suite"}
    table: dict[str, dict[int, float]] = {}
    for (system, name, concurrency), tandem in by_key.items():
        etcd = by_key.get(("etcd", name, concurrency))
        if system == "tandemkv" and etcd and etcd["ops_per_s"] > 0:
            table.setdefault(name, {})[concurrency] = tandem["ops_per_s"] / etcd["ops_per_s"]
    return table


def tls_costs(summaries: list[dict]) -> list[dict]:
    """Per workload and concurrency measured both ways (suite --tls): the
    plaintext and mTLS figures and what TLS costs (throughput lost, p50 added)."""
    by_key = {(s["system"], s["workload"], s["concurrency"]): s for s in summaries if s["series"] == "suite"}
    rows = []
    for (system, name, concurrency), tls in by_key.items():
        plain = by_key.get(("tandemkv", name, concurrency))
        if system != "tandemkv-tls" or not plain or not plain["ops_per_s"]:
            continue
        rows.append({"workload": name, "concurrency": concurrency, "plain_ops_per_s": plain["ops_per_s"],
                     "tls_ops_per_s": tls["ops_per_s"], "throughput_ratio": tls["ops_per_s"] / plain["ops_per_s"],
                     "plain_p50_ms": plain["p50_ms"], "tls_p50_ms": tls["p50_ms"],
                     "plain_p99_ms": plain["p99_ms"], "tls_p99_ms": tls["p99_ms"]})
    return rows


def goals(summaries: list[dict]) -> list[dict]:
    by_key = {(s["system"], s["workload"], s["concurrency"]): s for s in summaries if s["series"] == "suite"}
    checks = []
    for label, name, etcd_name, concurrency, measure, needed, higher in GOALS:
        tandem, etcd = by_key.get(("tandemkv", name, concurrency)), by_key.get(("etcd", etcd_name, concurrency))
        if not tandem or not etcd or not etcd[measure]:
            checks.append({"goal": label, "status": "not measured"})
            continue
        ratio = tandem[measure] / etcd[measure]
        met = ratio >= needed if higher else ratio <= needed
        checks.append({"goal": label, "tandemkv": tandem[measure], "etcd": etcd[measure], "ratio": ratio,
                       "needed": needed, "met": met,
                       "shortfall": None if met else (needed / ratio if higher else ratio / needed)})
    return checks


def write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def read_json(path: Path) -> dict:
    """A suite.json document, with ratio keys (JSON strings) back to ints."""
    document = json.loads(path.read_text())
    document["ratios"] = {name: {int(c): r for c, r in row.items()} for name, row in document.get("ratios", {}).items()}
    return document
