"""The load generator: drives one asynchronous operation from N workers in
one asyncio event loop, closed-loop or open-loop, and records latency in an
HdrHistogram. It knows nothing of TandemKV or etcd: an operation is any
`async def op(worker: int) -> None` that raises on failure.

Closed loop: each of N workers sends its next operation as soon as the last
one completes; latency is completion minus send time.

Open loop: operations are due at a fixed target rate (intended send times
start + k / rate). N workers, the most that may be in flight, take due times
in order; a worker that picks up a due time late still measures latency from
the intended send time, so time spent queued behind a slow server counts
(no coordinated omission).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Awaitable, Callable

from hdrh.histogram import HdrHistogram

Operation = Callable[[int], Awaitable[None]]

LATENCY_US_MIN = 1
LATENCY_US_MAX = 120 * 1_000_000
LATENCY_SIGNIFICANT_DIGITS = 3
# Each worker stops after this many operations in one run, whatever the clock says.
OPS_PER_WORKER_MAX = 10_000_000
# Seconds a run waits, after its end, for operations still in flight; then
# they are cancelled and counted as abandoned (a compare-and-swap loop on a
# hot key can otherwise run on for tens of seconds).
DRAIN_S_MAX = 2.0
# Errors kept verbatim per run (the rest are only counted).
ERROR_SAMPLES_MAX = 5


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LATENCY_US_MIN, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)


@dataclasses.dataclass
class RunResult:
    """One measured run: completed operations, elapsed seconds, latencies."""

    operations: int
    elapsed_s: float
    histogram: HdrHistogram
    errors: int = 0
    error_samples: list[str] = dataclasses.field(default_factory=list)
    abandoned: int = 0

    @property
    def ops_per_s(self) -> float:
        return self.operations / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, percentile: float) -> float:
        if self.histogram.get_total_count() == 0:
            return float("nan")
        return self.histogram.get_value_at_percentile(percentile) / 1000.0


class _Recorder:
    """Shared by the workers of one run."""

    def __init__(self) -> None:
        self.histogram = new_histogram()
        self.operations = 0
        self.errors = 0
        self.error_samples: list[str] = []

    def success(self, latency_s: float) -> None:
        self.operations += 1
        self.histogram.record_value(max(LATENCY_US_MIN, min(LATENCY_US_MAX, int(latency_s * 1e6))))

    def failure(self, error: BaseException) -> None:
        self.errors += 1
        if len(self.error_samples) < ERROR_SAMPLES_MAX:
            self.error_samples.append(f"{type(error).__name__}: {str(error)[:200]}")


async def _timed(op: Operation, worker: int, since_s: float, recorder: _Recorder) -> None:
    try:
        await op(worker)
    except asyncio.CancelledError:
        raise
    except Exception as error:  # an operation's failure is data, not a crash
        recorder.failure(error)
        return
    recorder.success(time.perf_counter() - since_s)


async def _closed_worker(op: Operation, worker: int, stop_s: float, recorder: _Recorder) -> None:
    for _ in range(OPS_PER_WORKER_MAX):
        started_s = time.perf_counter()
        if started_s >= stop_s:
            return
        await _timed(op, worker, started_s, recorder)


class _Schedule:
    """Intended send times start + k * interval, handed out in order."""

    def __init__(self, start_s: float, rate_per_s: float):
        assert rate_per_s > 0, "an open-loop run needs a positive target rate"
        self.start_s = start_s
        self.interval_s = 1.0 / rate_per_s
        self.next_index = 0

    def take(self) -> float:
        intended_s = self.start_s + self.next_index * self.interval_s
        self.next_index += 1
        return intended_s


async def _open_worker(op: Operation, worker: int, stop_s: float, schedule: _Schedule,
                       recorder: _Recorder) -> None:
    for _ in range(OPS_PER_WORKER_MAX):
        intended_s = schedule.take()
        if intended_s >= stop_s:
            return
        delay_s = intended_s - time.perf_counter()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        await _timed(op, worker, intended_s, recorder)


async def _until_drained(workers: list, began_s: float, seconds: float, recorder: _Recorder) -> RunResult:
    """Waits for the workers, cancelling those still busy DRAIN_S_MAX after the end."""
    tasks = [asyncio.ensure_future(worker) for worker in workers]
    _, busy = await asyncio.wait(tasks, timeout=seconds + DRAIN_S_MAX)
    for task in busy:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return RunResult(recorder.operations, time.perf_counter() - began_s, recorder.histogram,
                     recorder.errors, recorder.error_samples, abandoned=len(busy))


async def run_closed(op: Operation, concurrency: int, seconds: float) -> RunResult:
    """N workers back to back for `seconds`."""
    recorder = _Recorder()
    began_s = time.perf_counter()
    stop_s = began_s + seconds
    workers = [_closed_worker(op, w, stop_s, recorder) for w in range(concurrency)]
    return await _until_drained(workers, began_s, seconds, recorder)


async def run_open(op: Operation, concurrency: int, seconds: float, rate_per_s: float) -> RunResult:
    """Operations due at `rate_per_s`, at most `concurrency` in flight;
    latency from each operation's intended send time."""
    recorder = _Recorder()
    began_s = time.perf_counter()
    stop_s = began_s + seconds
    schedule = _Schedule(began_s, rate_per_s)
    workers = [_open_worker(op, w, stop_s, schedule, recorder) for w in range(concurrency)]
    return await _until_drained(workers, began_s, seconds, recorder)


async def run(op: Operation, concurrency: int, seconds: float, mode: str,
              rate_per_s: float | None) -> RunResult:
    if mode == "open":
        assert rate_per_s, "--mode open needs --rate"
        return await run_open(op, concurrency, seconds, rate_per_s)
    return await run_closed(op, concurrency, seconds)
