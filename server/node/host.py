"""`StateHost`: the strong plane's state as the Raft replica sees it (the
`ReplicaHost` of server/raft/contract.py). Its methods run on the Raft tick
thread: they open an apply batch, apply each committed entry through the
pure state machine, commit the batch and wake whoever waits on applied
state; and they write and install snapshots. The node builds one in
`start()` and is itself never on the tick thread's path."""

from __future__ import annotations

import threading

from tandemkv.server.storage import snapshot
from tandemkv.server.storage.state_store import StateStore
from tandemkv.server.strong.state_machine import apply_entry


class StateHost:
    def __init__(self, state: StateStore, applied: threading.Condition):
        """`applied` is notified after every batch commits (the node's
        waiters and watches wait on it)."""
        self._state = state
        self._applied = applied

    def begin(self) -> None:
        self._state.begin_batch()

    def apply(self, index: int, command: bytes) -> bytes | None:
        return apply_entry(self._state.batch_view(), index, command)

    def commit(self) -> None:
        self._state.commit_batch()
        with self._applied:
            self._applied.notify_all()

    def write_snapshot(self, path: str, last_entry: tuple, prev_entry: tuple,
                       members: list[str]) -> None:
        snapshot.write_snapshot(path, self._state, last_entry, prev_entry, members)

    def read_snapshot(self, path: str) -> tuple[tuple, tuple, list[str]]:
        installed = snapshot.read_snapshot(path, self._state)
        # An installed snapshot moves the applied state as a batch does.
        with self._applied:
            self._applied.notify_all()
        return installed
