"""Hooks for tests that must reach under the `Replica` façade. Named here so
that no test outside server/raft/ names pysyncobj or its attributes (see
tests/test_raft_facade.py); nothing in the running server calls them."""

from __future__ import annotations

import threading
from typing import Callable

import pysyncobj.dns_resolver
from pysyncobj.dns_resolver import globalDnsResolver
from pysyncobj.syncobj import _COMMAND_TYPE, _bchr

from tandemkv.server.raft.replica import Replica


def log_first_index(replica: Replica) -> int:
    """The index of the first entry still in the replica's log (it rises
    when a snapshot lets the log be compacted)."""
    return replica._member._raft_log.first_index()


def last_log_index(replica: Replica) -> int:
    """The index of the last entry in the replica's log (committed or not)."""
    return replica._member._raft_log.last_index()


def cut_off(replica: Replica) -> None:
    """Cuts the replica off from its peers from now on, both ways: nothing
    it sends arrives, nothing they send reaches it (a partition inside one
    process; clients in the same process still reach its node)."""
    transport = replica._member._transport()
    transport.send = lambda peer, message: False
    transport._onMessageReceivedCallback = lambda peer, message: None


def isolate(replica: Replica) -> Callable[[], None]:
    """As `cut_off`, until the returned call heals it: the connections stay
    up meanwhile, so what is sent after the heal arrives at once."""
    transport = replica._member._transport()
    receive = transport._onMessageReceivedCallback
    cut_off(replica)

    def heal() -> None:
        del transport.send  # the class's own again
        transport._onMessageReceivedCallback = receive
    return heal


def snapshot_serializer(replica: Replica):
    """The replica's snapshot serializer (pysyncobj's, with the checks of
    snapshot_transfer.py): what a leader reads the chunks it sends from."""
    return replica._member._SyncObj__serializer


def reconnect_at_once(replica: Replica) -> None:
    """Lets the replica's transport connect again without its usual wait."""
    replica._member._SyncObj__transport._lastConnectAttempt.clear()


def drop_connection(replica: Replica, peer) -> None:
    """Drops the replica's connection to `peer`, as its timeout does."""
    replica._member._SyncObj__transport._connections[peer].disconnect()


class HeldCommit:
    """The next apply batch of a replica, held on its tick thread after its
    entries were applied and before the host commits them (`hold_commit`)."""

    def __init__(self, host, release_wait_s: float):
        self._host = host
        self._release_wait_s = release_wait_s
        self.reached = threading.Event()  # set once the tick thread waits at the commit
        self._released = threading.Event()
        self.indexes: list[int] = []      # the entries applied in the held batch

    def _apply(self, index: int, command: bytes):
        if not self.reached.is_set():
            self.indexes.append(index)
        return type(self._host).apply(self._host, index, command)

    def _commit(self) -> None:
        if not self.reached.is_set() and self.indexes:
            self.reached.set()
            self._released.wait(self._release_wait_s)
        type(self._host).commit(self._host)

    def release(self) -> None:
        """Lets the batch commit; the replica's host is as before."""
        self._released.set()
        vars(self._host).pop("apply", None)
        vars(self._host).pop("commit", None)


def hold_commit(replica: Replica, release_wait_s: float) -> HeldCommit:
    """Holds the replica's next apply batch between its applies and its
    commit until `release()` (or for `release_wait_s` at most, so a test
    that fails cannot leave the tick thread stuck)."""
    host = replica._member._host
    held = HeldCommit(host, release_wait_s)
    host.apply, host.commit = held._apply, held._commit
    return held


def no_op_command() -> bytes:
    """The bytes of pysyncobj's no-op log command, which a restore writes
    as its Raft entries (server/storage/backup.py keeps its own copy, and a
    test compares the two)."""
    return _bchr(_COMMAND_TYPE.NO_OP)


def raft_host_lookup(host: str) -> str | None:
    """The address the Raft layer dials now for a peer whose address names
    `host` (pysyncobj's lookup cache, one per process; its cache times are
    set by the last replica built)."""
    return globalDnsResolver().resolve(host)


def raft_dns_clock(clock) -> Callable[[], None]:
    """Makes the Raft layer's host name cache read `clock()` (seconds) for
    its ages; returns the function that puts its own clock back."""
    previous = pysyncobj.dns_resolver.monotonicTime
    pysyncobj.dns_resolver.monotonicTime = clock
    return lambda: setattr(pysyncobj.dns_resolver, "monotonicTime", previous)
