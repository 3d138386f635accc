"""Hooks for tests that must reach under the `Replica` façade. Named here so
that no test outside server/raft/ names pysyncobj or its attributes (see
tests/test_raft_facade.py); nothing in the running server calls them."""

from __future__ import annotations

from tandemkv.server.raft.replica import Replica


def log_first_index(replica: Replica) -> int:
    """The index of the first entry still in the replica's log (it rises
    when a snapshot lets the log be compacted)."""
    return replica._member._raft_log.first_index()


def cut_off(replica: Replica) -> None:
    """Cuts the replica off from its peers from now on, both ways: nothing
    it sends arrives, nothing they send reaches it (a partition inside one
    process; clients in the same process still reach its node)."""
    transport = replica._member._transport()
    transport.send = lambda peer, message: False
    transport._onMessageReceivedCallback = lambda peer, message: None


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
