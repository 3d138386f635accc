"""Many clients: one workload driven by N load-generator processes at once,
each with its own channel (and, for TandemKV's `sdk-*` workloads, its own
`AsyncClient`) and its own operations in flight; the suite sums their
rates and merges their latency histograms into one point.

The suite's own load generator is one asyncio process, so on its own it
measures what one client can push; several processes show what a node
gives many independent clients, whose calls never coalesce across
processes (`python -m benchmarks.suite --processes 4 --process-concurrency 64`).

Parent and children speak in lines. A child (`python -m
benchmarks.many_clients --system S --endpoint E --workload W
--concurrency C`) builds its workload, runs its `prepare` and prints
`{"ready": true}` (or `{"error": ...}`); then each `run <seconds>` line on
its stdin is one run of the load generator, answered by one JSON line (the
run's counts and its HdrHistogram, encoded); `quit` or the end of stdin
ends it. The parent sends every child the same `run` line at once, so the
runs overlap; their total rate is the sum of operations over the longest
elapsed time (no overlap is counted twice).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from hdrh.histogram import HdrHistogram

from benchmarks import loadgen
from benchmarks.loadgen import RunResult

# The workloads measured with many processes: TandemKV through its SDK
# (one pipelining AsyncClient per process), etcd over its raw stubs.
WORKLOADS = {"tandemkv": ("sdk-put", "sdk-get"), "etcd": ("put", "get")}
# Seconds a child has to start (imports, channel, preload) and say ready.
READY_S_MAX = 60.0
# Seconds past a run's own length (and the load generator's drain) a child
# has to answer with its result.
RESULT_MARGIN_S = 15.0
# Seconds a child has to exit after `quit` before it is killed.
EXIT_S_MAX = 10.0
# The longest line a child may print (one run's result with its histogram).
RESULT_LINE_BYTES_MAX = 1 << 20
PROCESSES_MAX = 64


class ProcessGroup:
    """N child load generators of one workload at one concurrency each.
    `start()` spawns them and waits until each is ready; `run()` is a
    suite driver (`Workload.driver`); leaving the `async with` block ends
    every child (quit, then kill)."""

    def __init__(self, system: str, endpoint: str, workload: str, processes: int):
        assert 1 <= processes <= PROCESSES_MAX, f"processes must be 1..{PROCESSES_MAX}"
        self.system, self.endpoint, self.workload, self.processes = system, endpoint, workload, processes
        self.children: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> ProcessGroup:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self, concurrency: int) -> None:
        command = [sys.executable, "-m", "benchmarks.many_clients", "--system", self.system,
                   "--endpoint", self.endpoint, "--workload", self.workload, "--concurrency", str(concurrency)]
        for _ in range(self.processes):
            self.children.append(await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                limit=RESULT_LINE_BYTES_MAX))
        answers = await asyncio.gather(*(self._answer(child, READY_S_MAX) for child in self.children))
        failed = [answer["error"] for answer in answers if not answer.get("ready")]
        if failed:
            raise RuntimeError(f"{len(failed)} of {self.processes} load generators could not start: {failed[0]}")

    async def run(self, concurrency: int, seconds: float, mode: str, rate: float | None) -> RunResult:
        """One run on every child at once; their sum."""
        share = f" {rate / self.processes}" if mode == "open" and rate else ""
        try:
            for child in self.children:
                child.stdin.write(f"run {seconds} {mode}{share}\n".encode())
            await asyncio.gather(*(child.stdin.drain() for child in self.children))
        except ConnectionError as error:  # a child exited: the point fails, the suite goes on
            raise RuntimeError(f"a load generator exited before the run: {error}") from None
        limit_s = seconds + loadgen.DRAIN_S_MAX + RESULT_MARGIN_S
        answers = await asyncio.gather(*(self._answer(child, limit_s) for child in self.children))
        failed = [answer["error"] for answer in answers if "error" in answer]
        if failed:
            raise RuntimeError(f"{len(failed)} of {self.processes} load generators failed: {failed[0]}")
        return merge([from_record(answer) for answer in answers])

    async def stop(self) -> None:
        for child in self.children:
            if child.returncode is None and not child.stdin.is_closing():
                child.stdin.write(b"quit\n")
                child.stdin.close()
        for child in self.children:
            try:
                await asyncio.wait_for(child.wait(), EXIT_S_MAX)
            except asyncio.TimeoutError:
                child.kill()
                await child.wait()
        self.children = []

    @staticmethod
    async def _answer(child: asyncio.subprocess.Process, timeout_s: float) -> dict:
        try:
            line = await asyncio.wait_for(child.stdout.readline(), timeout_s)
        except asyncio.TimeoutError:
            return {"error": f"no answer within {timeout_s:.0f} s"}
        if not line:
            return {"error": f"the load generator exited (code {await child.wait()})"}
        return json.loads(line)


def merge(results: list[RunResult]) -> RunResult:
    """The runs of all processes as one: operations, errors and latencies
    summed over the longest elapsed time."""
    histogram = loadgen.new_histogram()
    for result in results:
        histogram.add(result.histogram)
    samples = [sample for result in results for sample in result.error_samples][:loadgen.ERROR_SAMPLES_MAX]
    return RunResult(sum(r.operations for r in results), max(r.elapsed_s for r in results), histogram,
                     sum(r.errors for r in results), samples, sum(r.abandoned for r in results))


def to_record(result: RunResult) -> dict:
    return {"operations": result.operations, "elapsed_s": result.elapsed_s, "errors": result.errors,
            "error_samples": result.error_samples, "abandoned": result.abandoned,
            "histogram": result.histogram.encode().decode("ascii")}


def from_record(record: dict) -> RunResult:
    return RunResult(record["operations"], record["elapsed_s"], HdrHistogram.decode(record["histogram"]),
                     record["errors"], record["error_samples"], record["abandoned"])


# -- the child ------------------------------------------------------------
# The child's answers go to its real stdout; anything else it prints goes to stderr.
_answers = sys.stdout


def _say(answer: dict) -> None:
    _answers.write(json.dumps(answer) + "\n")
    _answers.flush()


async def serve(args: argparse.Namespace) -> None:
    import grpc.aio

    from benchmarks.suite import system_parts
    from benchmarks.workload import Options

    loop = asyncio.get_running_loop()
    async with grpc.aio.insecure_channel(args.endpoint) as channel:
        builder = system_parts(args.system)[1](channel, Options())
        try:
            built = await builder.build(args.workload)
            if isinstance(built, str):
                raise RuntimeError(built)
            if built.prepare is not None:
                await built.prepare(args.concurrency)
        except Exception as error:  # noqa: BLE001 - reported to the parent, which fails the point
            _say({"error": f"{type(error).__name__}: {error}"[:500]})
            return
        _say({"ready": True})
        try:
            while (line := (await loop.run_in_executor(None, sys.stdin.readline)).split()) and line[0] == "run":
                rate = float(line[3]) if len(line) > 3 else None
                result = await loadgen.run(built.op, args.concurrency, float(line[1]), line[2], rate)
                _say(to_record(result))
        finally:
            sdk = getattr(builder, "sdk", None)
            if sdk is not None:
                await sdk.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.many_clients", description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=sorted(WORKLOADS), required=True)
    parser.add_argument("--endpoint", required=True, help="host:port of the leader")
    parser.add_argument("--workload", required=True)
    parser.add_argument("--concurrency", type=int, required=True, help="operations in flight in this process")
    args = parser.parse_args(argv)
    global _answers
    _answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # a stray print must not break the answers
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
