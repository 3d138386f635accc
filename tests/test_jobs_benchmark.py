"""benchmarks/jobs_throughput.py's pure parts: how N workers are laid out
in processes for each system (the fairness the RESULTS table states), and
the table it prints. The benchmark itself needs redis-server, RQ and arq,
which the suite does not install; it is run by hand (benchmarks/RESULTS.md)."""

from __future__ import annotations

from benchmarks.jobs_throughput import SLOTS_PER_PROCESS_MAX, layout, markdown


def test_every_system_gets_exactly_n_handler_slots():
    for workers in (1, 8, 17, 64):
        for system in ("tandemkv", "arq", "rq"):
            slots = layout(system, workers)
            assert sum(slots) == workers, (system, workers, slots)
            assert system == "rq" or max(slots) <= SLOTS_PER_PROCESS_MAX
    assert layout("tandemkv", 64) == [16, 16, 16, 16]
    assert layout("arq", 17) == [9, 8]
    assert layout("rq", 64) == [64]  # one pool forking 64 single-job workers


def test_the_table_shows_each_point_and_each_error():
    rows = [{"system": "tandemkv", "redis": "-", "workers": 8, "processes": 1, "jobs": 10, "enqueue_s": 0.5,
             "jobs_per_s": 1234.5, "p50_ms": 10.0, "p99_ms": 1500.0},
            {"system": "arq", "redis": "everysec", "workers": 64, "processes": 4, "jobs": 10,
             "error": "the warm-up did not complete"}]
    table = markdown(rows).splitlines()
    assert table[2] == "| tandemkv | - | 8 (1) | 1,234 | 10 / 1,500 | 0.5 |"
    assert "error: the warm-up did not complete" in table[3]
