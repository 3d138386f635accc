"""PNG plots of the suite's points (matplotlib, no display needed):
throughput vs concurrency and latency percentiles vs concurrency, one panel
per workload and one line per system; and the cost-growth series."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)

PANEL_COLUMNS = 4
PANEL_INCHES = 3.2
STYLES = {"tandemkv": "tab:blue", "etcd": "tab:orange"}
PERCENTILE_LINES = (("p50_ms", "-"), ("p99_ms", "--"), ("p999_ms", ":"))


def _grid(count: int):
    """A figure with `count` visible panels (spare cells of the grid hidden)."""
    rows = max(1, math.ceil(count / PANEL_COLUMNS))
    columns = min(PANEL_COLUMNS, max(1, count))
    figure, axes = plt.subplots(rows, columns, figsize=(PANEL_INCHES * columns, PANEL_INCHES * rows), squeeze=False)
    flat = [axis for row in axes for axis in row]
    for spare in flat[count:]:
        spare.set_visible(False)
    return figure, flat


def _by_workload(points: list[dict], series: str) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for point in points:
        if point["series"] == series:
            grouped.setdefault(point["workload"], []).append(point)
    return grouped


def _lines(axis, rows: list[dict], x_key: str, y_key: str, style: str, label_suffix: str = "") -> None:
    for system in sorted({r["system"] for r in rows}):
        mine = sorted((r for r in rows if r["system"] == system), key=lambda r: r[x_key])
        axis.plot([r[x_key] for r in mine], [r[y_key] for r in mine], style, marker="o",
                  color=STYLES.get(system), label=system + label_suffix)


def throughput(points: list[dict], path: Path) -> Path | None:
    grouped = _by_workload(points, "suite")
    if not grouped:
        return None
    figure, axes = _grid(len(grouped))
    for axis, (name, rows) in zip(axes, grouped.items()):
        _lines(axis, rows, "concurrency", "ops_per_s", "-")
        axis.set(title=name, xscale="log", yscale="log", xlabel="in flight", ylabel=rows[0]["unit"])
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def latency(points: list[dict], path: Path) -> Path | None:
    grouped = _by_workload(points, "suite")
    if not grouped:
        return None
    figure, axes = _grid(len(grouped))
    for axis, (name, rows) in zip(axes, grouped.items()):
        for key, style in PERCENTILE_LINES:
            _lines(axis, rows, "concurrency", key, style, " " + key.removesuffix("_ms"))
        axis.set(title=name, xscale="log", yscale="log", xlabel="in flight", ylabel="latency ms")
        axis.legend(fontsize="x-small")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def growth(points: list[dict], path: Path) -> Path | None:
    panels = sorted({(p["series"], p["workload"]) for p in points if p["series"] not in ("suite", "processes")})
    if not panels:
        return None
    figure, axes = _grid(len(panels))
    for axis, (series, name) in zip(axes, panels):
        rows = [p for p in points if p["series"] == series and p["workload"] == name]
        _lines(axis, rows, "parameter", "ops_per_s", "-")
        axis.set(title=f"{name} vs {series}", xscale="linear" if series == "nodes" else "log", yscale="log",
                 xlabel=series, ylabel="ops/s")
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
