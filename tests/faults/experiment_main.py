"""The part of a fault runner's `main()` every runner shares, once: from
parsed arguments to an exit status.

In order: `--check FILE` re-checks a saved history and exits (where the
runner has it); an `--out` directory that holds an earlier run's cluster
is refused (nodes started on its data would begin from its state, and the
checks would count its writes as never attempted); SIGTERM unwinds like
Ctrl-C; the runner re-starts itself in a network namespace of its own
(`network.enter_own_namespace`); the banner; the experiment. An error of
the harness (the experiment could not run) writes a `summary.json` with
the replay command and, for a runner with a nemesis, what the nemesis did
before the harness gave up; a failed check keeps the history where the
runner asks for it; the summary is written whole and printed without its
fault list.

Each runner passes what differs: its module (to re-start itself), its
banner, how to build its experiment, its replay command, and its re-check
and history keeping if it has them. Exit status: 0 every check passed;
1 a check failed; 2 the experiment could not run.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Protocol

from .network import enter_own_namespace

EXIT_OK, EXIT_CHECK_FAILED, EXIT_HARNESS_ERROR = 0, 1, 2
# What an experiment raises when it could not run (a node never started, no
# leader, a bad argument, a file it could not write): exit 2, not a traceback.
HARNESS_ERRORS = (TimeoutError, AssertionError, ValueError, OSError)
# The summary key too long to print (every fault's record); summary.json has it.
UNPRINTED_KEYS = ("faults",)


class Experiment(Protocol):
    """What a runner's experiment offers: `run()` returns the summary (with
    `ok`); `nemesis`, if set, is the nemesis it started."""

    def run(self) -> dict[str, Any]: ...


def run_experiment_main(args: argparse.Namespace, argv: list[str] | None, *, module: str, banner: str,
                        experiment: Callable[[argparse.Namespace], Experiment], replay: str,
                        recheck: Callable[[Path], tuple[dict[str, Any], bool]] | None = None,
                        keep_history: Callable[[Any, dict[str, Any]], None] | None = None) -> int:
    """Runs one experiment as the module's `main()`; returns the exit status.

    `module`: the runner's module, re-run with the same arguments inside a
    namespace of its own. `experiment`: builds it from `args`. `replay`: the
    command that runs the same experiment again. `recheck`: what `--check
    FILE` prints and whether it passed. `keep_history(experiment, summary)`:
    saves the history of a run whose checks failed and notes where in the
    summary (runners that write it in every run do without)."""
    if recheck is not None and getattr(args, "check", None) is not None:
        try:
            printed, ok = recheck(args.check)
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(f"cannot re-check {args.check}: {type(error).__name__}: {error}; pass a history file a run "
                  "of this runner saved", file=sys.stderr)
            return EXIT_HARNESS_ERROR
        print(json.dumps(printed, indent=2))
        return EXIT_OK if ok else EXIT_CHECK_FAILED
    out: Path = args.out
    if (out / "cluster").exists():
        print(f"{out / 'cluster'} holds an earlier run's nodes; pass a new --out or delete that directory",
              file=sys.stderr)
        return EXIT_HARNESS_ERROR
    stop_on_sigterm()
    enter_own_namespace([sys.executable, "-m", module, *(sys.argv[1:] if argv is None else argv)])
    out.mkdir(parents=True, exist_ok=True)
    print(banner, flush=True)
    built = None
    try:
        built = experiment(args)
        summary = built.run()
    except HARNESS_ERRORS as error:
        summary = harness_error_summary(args.seed, error, replay, getattr(built, "nemesis", None))
        (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
        print(json.dumps(summary, indent=2), flush=True)
        return EXIT_HARNESS_ERROR
    if not summary["ok"] and keep_history is not None:
        keep_history(built, summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    brief = {key: value for key, value in summary.items() if key not in UNPRINTED_KEYS}
    print(json.dumps(brief, indent=2, sort_keys=True), flush=True)
    return EXIT_OK if summary["ok"] else EXIT_CHECK_FAILED


def harness_error_summary(seed: int, error: BaseException, replay: str, nemesis: Any) -> dict[str, Any]:
    """The summary of a run the harness gave up on: the error, the replay
    command and, when a nemesis had started, its errors and its record
    (what it did before the harness gave up is what a reader needs first)."""
    summary: dict[str, Any] = {"seed": seed, "ok": False, "errors": [f"{type(error).__name__}: {error}"],
                               "replay": replay}
    if nemesis is not None:
        summary["errors"] += nemesis.errors
        summary["faults"] = nemesis.summary()
    return summary


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every finally block stops its nodes."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)
