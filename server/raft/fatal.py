"""Stopping this node when it cannot go on without diverging: an entry that
could not be applied, an apply batch that could not commit, a Raft log
write that failed, a snapshot it needs that is damaged. Skipping any of
these would leave this node's state unlike the other members', so the
process exits at once with EXIT_STORAGE_FAILURE (a supervisor restarts it,
and it catches up from the others)."""

from __future__ import annotations

import logging
import os
from typing import NoReturn

log = logging.getLogger(__name__)

# Exit status when applying an entry fails (storage: map full, I/O; or an
# entry written by a newer version): skipping the entry would diverge this
# node, so it stops instead.
EXIT_STORAGE_FAILURE = 70


def crash(what: str) -> NoReturn:
    log.critical("%s; stopping this node so it cannot diverge", what, exc_info=True)
    logging.shutdown()
    os._exit(EXIT_STORAGE_FAILURE)


def log_write_failed(error: BaseException) -> None:
    log.critical("writing the raft log failed: %r", error)
    crash("writing the raft log failed")
