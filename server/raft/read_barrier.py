"""Coalesced read barriers, the basis of linearizable reads.

A read never trusts this node's idea of who leads (a cut-off leader keeps
believing it leads). Instead it waits until a no-op command, submitted after
the read began, has been committed and applied on this node: every write
acknowledged before the read began has a lower index, so local state then
holds it.

At most one barrier is in flight. Reads that arrive while one is in flight
wait for the next one, because a barrier only covers reads that began
before it was submitted; so N concurrent reads cost about two log entries.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Callable

# A barrier that has not resolved after this long is given up on (pysyncobj
# may never call back); the reads waiting on it fail and the next starts.
BARRIER_STALE_S = 5.0

Submit = Callable[[], concurrent.futures.Future]


class ReadBarrier:
    def __init__(self, submit: Submit, clock: Callable[[], float] = time.monotonic):
        """`submit()` proposes a no-op and returns a future of (result,
        outcome), as Replica.submit does."""
        self._submit = submit
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight: concurrent.futures.Future | None = None
        self._in_flight_since = 0.0
        self._next: concurrent.futures.Future | None = None

    def join(self) -> concurrent.futures.Future:
        """A future that resolves to the (result, outcome) of the first
        barrier submitted after this call."""
        with self._lock:
            if self._next is None:
                self._next = concurrent.futures.Future()
            group = self._next
            stale = self._clock() - self._in_flight_since > BARRIER_STALE_S
            if self._in_flight is not None and stale:
                self._abandon_locked()
            launched = self._launch_locked() if self._in_flight is None else None
        self._watch(launched)
        return group

    def _launch_locked(self):
        group, self._next = self._next, None
        self._in_flight = group
        self._in_flight_since = self._clock()
        return group, self._submit()

    def _watch(self, launched) -> None:
        """Attaches the completion callback outside the lock: a submit that
        fails at once (no leader) runs it right here, and it takes the lock."""
        if launched is not None:
            group, inner = launched
            inner.add_done_callback(lambda done: self._finish(group, done))

    def _abandon_locked(self) -> None:
        group, self._in_flight = self._in_flight, None
        _settle(group, (None, None))

    def _finish(self, group: concurrent.futures.Future, inner: concurrent.futures.Future) -> None:
        launched = None
        with self._lock:
            if self._in_flight is group:
                self._in_flight = None
                if self._next is not None:
                    launched = self._launch_locked()
        _settle(group, inner.result())
        self._watch(launched)


def _settle(future: concurrent.futures.Future, outcome) -> None:
    try:
        future.set_result(outcome)
    except concurrent.futures.InvalidStateError:
        pass
