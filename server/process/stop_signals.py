"""Stop signals for a process's main thread: SIGTERM and SIGINT as a flag it
waits on, plus optional actions for other signals (SIGUSR1: log stacks).

Why not `threading.Event.set()` in the handler: a Python signal handler runs
in the main thread between two bytecodes, possibly while that same thread is
inside `Event.wait()` holding the Event's lock, and `set()` then waits for
that lock forever (seen as a node that ignored SIGTERM). Here the handler
only sets attributes; the waiter sleeps in `select()` on a pipe that
`signal.set_wakeup_fd` writes a byte to whenever a signal arrives, so it
wakes at once without taking any lock.

Both stop signals are installed whatever the process inherited: a process
started in the background by a non-interactive shell inherits SIGINT
ignored, and would otherwise never stop on it.

`on_repeat`, if set, runs inside the handler when a stop signal arrives
after the first (e.g. to exit at once while a slow clean-up runs); it must
only do what is safe there: `os.write` and `os._exit`.
"""

from __future__ import annotations

import os
import select
import signal
from typing import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Installs the handlers; call from the main thread, before `wait`."""

    def __init__(self, actions: dict[int, Callable[[], None]] | None = None):
        self.requested = False
        self.count = 0  # stop signals received
        self.signum = 0  # the last one
        self.on_repeat: Callable[[int], None] | None = None
        self._actions = dict(actions or {})
        self._pending: list[int] = []
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_stop)
        for signum in self._actions:
            signal.signal(signum, self._on_action)

    def _on_stop(self, signum, frame) -> None:
        self.requested = True
        self.count += 1
        self.signum = signum
        if self.count > 1 and self.on_repeat is not None:
            self.on_repeat(signum)

    def _on_action(self, signum, frame) -> None:
        self._pending.append(signum)  # run by `wait`, outside the handler

    def wait(self, timeout_s: float) -> bool:
        """Waits up to `timeout_s` for a stop signal, running the actions of
        other signals that arrive meanwhile; returns whether stop was asked."""
        if not self.requested:
            select.select([self._read_fd], [], [], timeout_s)
            try:
                os.read(self._read_fd, 512)
            except BlockingIOError:
                pass
        while self._pending:
            self._actions[self._pending.pop(0)]()
        return self.requested
