"""How the CLI's long-running commands end on SIGINT (Ctrl-C) or SIGTERM:
the holders (`lease keepalive`, `registry register`, `elect`), `lock NAME
-- COMMAND` and the watches.

Both signals are installed explicitly, whatever the process inherited. A
process started in the background by a non-interactive shell (`cmd &` in
a script, a test suite run in the background) inherits SIGINT *ignored*;
Python then never raises KeyboardInterrupt, and a holder that relied on
it outlived every Ctrl-C and `kill -INT` (exit only by SIGKILL, the name
held until its lease expired).

Two phases:
- acquiring (granting, registering, campaigning, waiting for a lock):
  `interruptible()` makes both signals raise `Interrupted` (a
  KeyboardInterrupt) in the main thread, which cuts a blocking call short;
  the `with` blocks give back whatever was acquired.
- holding: `StopSignals` (stop_signals.py) turns them into a flag and a
  byte on a wakeup pipe; the main thread waits on the pipe, then releases
  in order with no exception raised into the release. A second signal
  meanwhile exits at once: what is left is freed when its lease expires.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from tandemkv.server.cli.client import EXIT_OK, EXIT_UNAVAILABLE
from tandemkv.server.process.stop_signals import STOP_SIGNALS, StopSignals

# While holding, the main thread looks at the lease this often (a stop
# signal wakes it at once): a lost lease is noticed within this.
HOLD_CHECK_S = 0.5
# Exit code of a process ended by signal N, as shells report it.
SIGNAL_EXIT_BASE = 128


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived while acquiring; `signum` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


def interruptible() -> None:
    """Makes SIGINT and SIGTERM raise `Interrupted` in the main thread."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_interrupted)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    return SIGNAL_EXIT_BASE + getattr(interrupt, "signum", signal.SIGINT)


def emit(args, data: Any, text: str) -> None:
    print(json.dumps(data) if getattr(args, "output", "text") == "json" else text, flush=True)


def _exit_now(what: str):
    """`on_repeat` for a release in progress: leave at once, saying so."""
    def leave(signum: int) -> None:
        os.write(2, f"tandemkv: stopping at once; {what} is released when its lease expires\n".encode())
        os._exit(SIGNAL_EXIT_BASE + signum)
    return leave


def announce_and_hold(args, data: Any, text: str, lost, what: str) -> int:
    """Prints that the hold began, then waits for SIGINT or SIGTERM (exit 0
    once the caller released) or for `lost` (exit 3). The stop signals are
    turned into a flag before the line is printed: whoever reacts to the
    line may signal at once."""
    stop = StopSignals()
    stop.on_repeat = _exit_now(what)
    emit(args, data, text)
    while not stop.wait(HOLD_CHECK_S):
        if lost.is_set():
            print(f"tandemkv: lost the lease of {what} (renewals failed); the hold has ended",
                  file=sys.stderr, flush=True)
            return EXIT_UNAVAILABLE
    return EXIT_OK


def run_holding(argv: list[str], env: dict[str, str], what: str, lost) -> int:
    """Runs `argv` to its end and returns its exit code (128+N if signal N
    ended it). A stop signal is passed on to it and the wait goes on: the
    caller holds `what` until the command has ended, never less. If `lost`
    is set meanwhile, says so on stderr once (the command goes on: whether
    it may is for it to decide, e.g. by its fencing token)."""
    stop = StopSignals({signal.SIGCHLD: lambda: None})  # a child's exit wakes the wait
    child = subprocess.Popen(argv, env=env)
    forwarded = 0
    warned = False
    while child.poll() is None:
        if stop.count > forwarded:
            forwarded = stop.count
            child.send_signal(stop.signum)
        if lost.is_set() and not warned:
            warned = True
            print(f"tandemkv: lost the lease of {what} (renewals failed): the command now runs "
                  "without it", file=sys.stderr, flush=True)
        stop.wait(HOLD_CHECK_S)
    stop.on_repeat = _exit_now(what)  # a further signal during the release
    code = child.returncode
    return SIGNAL_EXIT_BASE - code if code < 0 else code
