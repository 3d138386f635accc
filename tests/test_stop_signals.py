"""`StopSignals` in a child process (signals would disturb pytest's own):
a stop signal wakes a long wait at once, another signal's action runs in
the waiting thread and the wait goes on."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

WAKE_S_MAX = 5.0
CHILD = textwrap.dedent("""
    import signal, sys
    from tandemkv.server.process.stop_signals import StopSignals
    stop = StopSignals({signal.SIGUSR1: lambda: print("usr1", flush=True)})
    print("ready", flush=True)
    while not stop.wait(60.0):
        print("woke", flush=True)
    print("stopped", flush=True)
""")


def _read_line(child: subprocess.Popen) -> str:
    return child.stdout.readline().strip()


def test_a_stop_signal_ends_a_long_wait_at_once_and_usr1_runs_its_action():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert _read_line(child) == "ready"
        child.send_signal(signal.SIGUSR1)
        assert _read_line(child) == "usr1"
        assert _read_line(child) == "woke"  # not a stop: the wait goes on
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        assert _read_line(child) == "stopped"
        assert child.wait(timeout=WAKE_S_MAX) == 0
        assert time.monotonic() - sent < WAKE_S_MAX, "the 60 s wait was not cut short"
    finally:
        child.kill()
        child.wait()
